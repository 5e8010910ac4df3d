import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { until } from '../../testing/until.js';
import { LocalExecutor } from './local-executor.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('local executor after the process that ran the build was killed -9', () => {
  it('finds the step processes that outlived it and stops them', async () => {
    const tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-crash-'));
    const pidFile = join(tmpRoot, 'step.pid');
    // A separate Node process (running the built code: `npm test` builds first) runs a build
    // whose step sleeps, then is killed without warning.
    const script = `
      import { LocalExecutor } from ${JSON.stringify(new URL('../../../dist/executors/local/local-executor.js', import.meta.url).pathname)};
      import { runStep } from ${JSON.stringify(new URL('../../../dist/executors/lifecycle.js', import.meta.url).pathname)};
      const ex = new LocalExecutor({ tmpRoot: ${JSON.stringify(tmpRoot)} });
      const h = await ex.prepare({ buildId: 'crash-1', project: 'acme/web', branch: 'main', services: [] });
      await runStep(ex, h, { key: 's/x', stage: 's', step: 'x', commands: ['sleep 300 & echo $! > ${pidFile}', 'sleep 300'], env: {}, secrets: {}, attempt: 1 },
        { line() {} }, new AbortController().signal);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    await until(async () => (await readFile(pidFile, 'utf8').catch(() => '')).trim() !== '');
    const background = Number((await readFile(pidFile, 'utf8')).trim());
    child.kill('SIGKILL');
    await until(() => Promise.resolve(child.exitCode !== null || child.signalCode !== null));
    expect(alive(background)).toBe(true);

    const fresh = new LocalExecutor({ tmpRoot });
    const leftovers = (await fresh.listResources()).filter((r) => r.buildId === 'crash-1');
    expect(leftovers.map((r) => r.kind).sort()).toEqual(['process', 'workspace']);
    await fresh.removeResources('crash-1');
    await until(() => Promise.resolve(!alive(background)));
    expect(await fresh.listResources()).toEqual([]);
  });
});
