import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../testing/until.js';
import { RecordingSink, eventually, isAlive, within } from '../executor.case.js';
import { runStep } from '../lifecycle.js';
import type { StepSpec } from '../types.js';
import { LocalExecutor } from './local-executor.js';
import { RECORD_FILE, STEPS_DIR, readRecord, stepDirName } from './step-files.js';

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

// The teardown of a build this process ran from start to end: every step's watcher told its
// end and killed its group, yet what left the group must still be found.
describe('local executor teardown: what no step group holds any more', () => {
  let tmpRoot: string;
  let seq = 0;
  beforeAll(async () => {
    tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-leftover-'));
  });
  afterAll(async () => {
    await rm(tmpRoot, { recursive: true, force: true });
  });
  const step = (commands: string[]): StepSpec => ({
    key: 'test/x',
    stage: 'test',
    step: 'x',
    commands,
    env: {},
    secrets: {},
    attempt: 1,
  });
  const prepare = (ex: LocalExecutor) =>
    ex.prepare({ buildId: `leftover-${++seq}`, project: 'acme/web', branch: 'main', services: [] });
  const groupOf = async (pid: number): Promise<number> => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  };

  it('ends a setsid child of an ended step that still runs its script', async () => {
    const ex = new LocalExecutor({ tmpRoot, killGraceMs: 300 });
    const h = await prepare(ex);
    const commands = [
      // The child tells its pid once it runs the script again, in a session of its own.
      'if [ "${1:-}" = bg ]; then echo $$ > bg.pid; sleep 300; exit 0; fi',
      'setsid /bin/sh -e "$0" bg > /dev/null 2>&1 < /dev/null &',
      'while ! test -s bg.pid; do sleep 0.05; done',
    ];
    const exit = await runStep(ex, h, step(commands), new RecordingSink(), new AbortController().signal);
    expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
    const pid = Number((await readFile(join(h.workspace, 'bg.pid'), 'utf8')).trim());
    // It runs on after its step, in a session and group of its own: the watcher's kill of the
    // step's group did not reach it.
    expect(await isAlive(pid)).toBe(true);
    expect(await groupOf(pid)).toBe(pid);
    await ex.destroy(h);
    await eventually(10_000, `setsid child ${pid} gone`, async () => !(await isAlive(pid)));
  });

  it('ends a process that runs a build script no record names (a crash between spawn and record)', async () => {
    const ex = new LocalExecutor({ tmpRoot, killGraceMs: 300 });
    const h = await prepare(ex);
    const script = join(dirname(h.workspace), 'scripts', 'step-unrecorded.sh');
    await writeFile(script, 'sleep 300\n');
    const shell = spawn('/bin/sh', ['-e', script], { cwd: h.workspace, detached: true, stdio: 'ignore' });
    shell.unref();
    const pid = shell.pid!;
    await eventually(10_000, 'the shell runs', () => isAlive(pid));
    await ex.destroy(h);
    await eventually(10_000, `unrecorded shell ${pid} gone`, async () => !(await isAlive(pid)));
  });

  it("finds a step's group by its record alone when its watcher died before the step ended", async () => {
    const ex = new LocalExecutor({ tmpRoot, killGraceMs: 300 });
    const h = await prepare(ex);
    const start = await ex.startStep(
      h,
      step(['sleep 300 &', 'echo $! > bg.pid', 'while ! test -e go; do sleep 0.05; done']),
      new AbortController().signal,
    );
    if (!('ref' in start)) throw new Error(`no ref: ${JSON.stringify(start)}`);
    const record = await readRecord(join(dirname(h.workspace), STEPS_DIR, stepDirName('test/x', 1)));
    expect(start.ref.id.endsWith(RECORD_FILE)).toBe(true);
    const bg = Number(
      await until(async () => (await readFile(join(h.workspace, 'bg.pid'), 'utf8').catch(() => '')).trim()),
    );
    // Nobody is left to kill the group when the shell exits.
    process.kill(record!.watcher.pid, 'SIGKILL');
    await eventually(10_000, 'the watcher gone', async () => !(await isAlive(record!.watcher.pid)));
    await writeFile(join(h.workspace, 'go'), '');
    await eventually(10_000, 'the shell gone', async () => !(await isAlive(record!.pid)));
    expect(await isAlive(bg)).toBe(true);
    expect(
      await within(60_000, 'waitStep', ex.waitStep(h, start.ref, new AbortController().signal)),
    ).toMatchObject({
      kind: 'error',
      code: 'gone',
    });
    await ex.destroy(h);
    await eventually(10_000, `background child ${bg} gone`, async () => !(await isAlive(bg)));
  });
});
