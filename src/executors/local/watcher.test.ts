import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingSink, isAlive, within } from '../executor.case.js';
import { runStep } from '../lifecycle.js';
import type { BuildHandle, BuildSpec, StepSpec } from '../types.js';
import { LocalExecutor } from './local-executor.js';
import { LAUNCH_FILE, STEPS_DIR, stepDirName } from './step-files.js';

// One watcher process starts every step of an executor: what a step does to itself must not
// reach it, nor the other steps it watches; and one start per attempt still holds.
let tmpRoot: string;
let seq = 0;
const spec = (): BuildSpec => ({
  buildId: `watch-${++seq}`,
  project: 'acme/web',
  branch: 'main',
  services: [],
});
const step = (key: string, commands: string[], secrets: Record<string, string> = {}): StepSpec => ({
  key,
  stage: key.split('/')[0]!,
  step: key.split('/')[1]!,
  commands,
  env: {},
  secrets,
  attempt: 1,
});
const never = (): AbortSignal => new AbortController().signal;
const make = (): LocalExecutor => new LocalExecutor({ tmpRoot, killGraceMs: 300 });
/** Waits in the workspace until the test creates `go`, then ends with `code`. */
const gated = (code: number): string[] => ['while ! test -e go; do sleep 0.05; done', `exit ${code}`];
const rootOf = (h: BuildHandle): string => dirname(h.workspace);

beforeAll(async () => {
  tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-test-watcher-'));
});
afterAll(async () => {
  await rm(tmpRoot, { recursive: true, force: true });
});

describe('local executor: the steps watcher', () => {
  it('records the exit of a step that kills its own group, and goes on watching the others', async () => {
    const ex = make();
    const h = await ex.prepare(spec());
    const waiting = await ex.startStep(h, step('test/waits', gated(4)), never());
    if (!('ref' in waiting)) throw new Error(`no ref: ${JSON.stringify(waiting)}`);
    const sink = new RecordingSink();
    expect(
      await within(
        60_000,
        'the step that kills its group',
        runStep(ex, h, step('test/kills', ['kill -KILL 0']), sink, never()),
      ),
    ).toEqual({ kind: 'exited', exitCode: 137 });
    await writeFile(join(h.workspace, 'go'), '');
    expect(await within(60_000, 'the other step', ex.waitStep(h, waiting.ref, never()))).toEqual({
      kind: 'exited',
      exitCode: 4,
    });
    const after = new RecordingSink();
    expect(
      await within(
        60_000,
        'a later step',
        runStep(ex, h, step('test/after', ['echo after']), after, never()),
      ),
    ).toEqual({
      kind: 'exited',
      exitCode: 0,
    });
    expect(after.out()).toEqual(['after']);
    await ex.destroy(h);
  });

  it('keeps no secret on disk, and leaves no script once the step ended', async () => {
    const ex = make();
    const h = await ex.prepare(spec());
    const secret = 'sekrit-7f3a9c';
    const start = await ex.startStep(
      h,
      step('test/secret', ['test "${#TOKEN}" -eq 13', ...gated(0)], { TOKEN: secret }),
      never(),
    );
    if (!('ref' in start)) throw new Error(`no ref: ${JSON.stringify(start)}`);
    const root = rootOf(h);
    // While it runs: its script exists (its record names its group: no pid file), and no
    // file holds the secret.
    expect(await readdir(join(root, 'scripts'))).toHaveLength(1);
    expect(await readdir(join(root, 'pids')).catch(() => [])).toEqual([]);
    for (const file of await filesUnder(root)) expect(await readFile(file, 'utf8')).not.toContain(secret);
    await writeFile(join(h.workspace, 'go'), '');
    // Ended but not released (as when no server follows it): the watcher cleaned up.
    expect(await within(60_000, 'the step', ex.waitStep(h, start.ref, never()))).toEqual({
      kind: 'exited',
      exitCode: 0,
    });
    expect(await readdir(join(root, 'scripts'))).toEqual([]);
    await ex.destroy(h);
  });

  it('starts an attempt once when two processes start it at the same time', async () => {
    const first = make();
    const second = make();
    const build = spec();
    const h = await first.prepare(build);
    await second.resumeBuild(build);
    const s = step('test/once', ['echo started >> count', ...gated(0)]);
    const [a, b] = await within(
      60_000,
      'both starts',
      Promise.all([first.startStep(h, s, never()), second.startStep(h, s, never())]),
    );
    if (!('ref' in a) || !('ref' in b)) throw new Error(`no ref: ${JSON.stringify([a, b])}`);
    expect(b.ref).toEqual(a.ref);
    await writeFile(join(h.workspace, 'go'), '');
    expect(await within(60_000, 'the step', second.waitStep(h, b.ref, never()))).toEqual({
      kind: 'exited',
      exitCode: 0,
    });
    expect(await readFile(join(h.workspace, 'count'), 'utf8')).toBe('started\n');
    await first.destroy(h);
  });

  it('starts an attempt again whose launcher died before recording it, never signalling a recycled pid', async () => {
    const ex = make();
    const h = await ex.prepare(spec());
    // Someone else's live process, with the pid a dead launcher's file could name after reuse.
    const other = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    try {
      const dir = join(rootOf(h), STEPS_DIR, stepDirName('test/again', 1));
      await mkdir(dir);
      await writeFile(join(dir, LAUNCH_FILE), JSON.stringify({ pid: other.pid, startTime: '1' }));
      const sink = new RecordingSink();
      expect(
        await within(60_000, 'the step', runStep(ex, h, step('test/again', ['echo ran']), sink, never())),
      ).toEqual({
        kind: 'exited',
        exitCode: 0,
      });
      expect(sink.out()).toEqual(['ran']);
      await ex.destroy(h);
      expect(await isAlive(other.pid!)).toBe(true);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('makes a missing steps directory, but never a build root that is gone', async () => {
    const ex = make();
    const h = await ex.prepare(spec());
    await rm(join(rootOf(h), STEPS_DIR), { recursive: true });
    const sink = new RecordingSink();
    expect(
      await within(60_000, 'the step', runStep(ex, h, step('test/made', ['echo made']), sink, never())),
    ).toEqual({ kind: 'exited', exitCode: 0 });
    expect(sink.out()).toEqual(['made']);
    // Torn down under it (its files removed by another process): no root is made again.
    await rm(rootOf(h), { recursive: true });
    const start = await within(60_000, 'a start', ex.startStep(h, step('test/gone', ['true']), never()));
    expect(start).toMatchObject({ exit: { kind: 'error' } });
    await expect(readdir(rootOf(h))).rejects.toThrow(/ENOENT/);
    await ex.destroy(h);
  });

  it('leaves nothing of a released step, stray files included, before anything asks about it again', async () => {
    const ex = make();
    const h = await ex.prepare(spec());
    const steps = join(rootOf(h), STEPS_DIR);
    for (const [key, stray] of [
      ['test/plain', false],
      ['test/stray', true],
    ] as const) {
      const start = await ex.startStep(h, step(key, ['true']), never());
      if (!('ref' in start)) throw new Error(`no ref: ${JSON.stringify(start)}`);
      expect(await within(60_000, key, ex.waitStep(h, start.ref, never()))).toEqual({
        kind: 'exited',
        exitCode: 0,
      });
      // A file the watcher does not know (a temp file of one killed mid-write).
      if (stray) await writeFile(join(steps, stepDirName(key, 1), 'exit.tmp'), '');
      await ex.releaseStep(h, start.ref);
      expect(await ex.findStep(h, key, 1)).toBeUndefined();
      expect(await readdir(steps)).toEqual([]);
    }
    await ex.destroy(h);
  });
});

/** Every regular file under `dir`, the workspace excepted (the step's own files). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'workspace') out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}
