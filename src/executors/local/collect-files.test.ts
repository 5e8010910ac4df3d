import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectFilesConformance } from '../collect-files.case.js';
import { LocalExecutor } from './local-executor.js';

collectFilesConformance('local', async () => {
  const tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-collect-'));
  return {
    executor: new LocalExecutor({ tmpRoot }),
    cleanup: () => rm(tmpRoot, { recursive: true, force: true }),
  };
});
