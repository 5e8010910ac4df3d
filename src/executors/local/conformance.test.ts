import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHELL_COMMANDS, executorConformance } from '../executor.case.js';
import { LocalExecutor } from './local-executor.js';

executorConformance('local', SHELL_COMMANDS, async () => {
  const tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-test-conformance-'));
  // A second instance over the same tmpRoot is what a restarted server builds.
  const make = (): LocalExecutor => new LocalExecutor({ tmpRoot, killGraceMs: 300 });
  return {
    create: make,
    reopen: make,
    hostProcesses: true,
    cleanup: () => rm(tmpRoot, { recursive: true, force: true }),
  };
});
