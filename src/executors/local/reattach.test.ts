import { spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RecordingSink, eventually, isAlive, within } from '../executor.case.js';
import { OUTPUT_START, type BuildSpec, type StepRef, type StepSpec } from '../types.js';
import { LocalExecutor } from './local-executor.js';
import { RECORD_FILE, STEPS_DIR, stepDirName } from './step-files.js';

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});
async function tempRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-reattach-'));
  roots.push(dir);
  return dir;
}

const spec = (buildId: string): BuildSpec => ({ buildId, project: 'acme/web', branch: 'main', services: [] });
const step = (key: string, commands: string[]): StepSpec => ({
  key,
  stage: key.split('/')[0]!,
  step: key.split('/')[1]!,
  commands,
  env: {},
  secrets: {},
  attempt: 1,
});
const never = (): AbortSignal => new AbortController().signal;
const make = (tmpRoot: string): LocalExecutor => new LocalExecutor({ tmpRoot, killGraceMs: 300 });

describe('local executor: a later process re-attaches to steps an earlier one started', () => {
  it('resumes the build, finds the step, tails it from a position and waits for its exit', async () => {
    const tmpRoot = await tempRoot();
    const first = make(tmpRoot);
    const build = spec('reattach-1');
    const h1 = await first.prepare(build);
    const s = step('test/unit', [
      'echo one',
      'echo two',
      'echo oops >&2',
      'while ! test -e go; do sleep 0.05; done',
      'echo three',
      'echo late >&2',
      'echo four',
    ]);
    const start = await first.startStep(h1, s, never());
    if (!('ref' in start)) throw new Error(`no ref: ${JSON.stringify(start)}`);
    // The ref is stored as JSON by the server and comes back so.
    const stored = JSON.parse(JSON.stringify(start.ref)) as StepRef;
    const seen = new RecordingSink();
    const detach = new AbortController();
    const tail = first.tailStep(h1, start.ref, OUTPUT_START, seen, detach.signal);
    await eventually(20_000, 'two lines and the error', () => seen.has('two') && seen.has('oops'));
    detach.abort(); // the first process stops following (it "dies"); the step goes on
    await within(20_000, 'detached tail', tail);

    const second = make(tmpRoot);
    const withServices: BuildSpec = {
      ...build,
      services: [{ name: 'db', env: {}, secrets: [], commands: ['sleep 300'] }],
    };
    await expect(second.resumeBuild(withServices)).rejects.toMatchObject({
      code: 'gone',
      message: expect.stringContaining(
        'its services (db) were processes of the server that stopped',
      ) as string,
    });
    const h2 = await second.resumeBuild(build);
    expect(h2).toEqual(h1);
    expect(await second.findStep(h2, s.key, 1)).toEqual(stored);
    expect(await second.findStep(h2, s.key, 2)).toBeUndefined();
    await writeFile(join(h2.workspace, 'go'), '');
    const rest = new RecordingSink();
    const [exit] = await within(
      60_000,
      'resumed step',
      Promise.all([
        second.waitStep(h2, stored, never()),
        second.tailStep(h2, stored, { stdout: 2, stderr: 1 }, rest, never()),
      ]),
    );
    expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
    expect(rest.out()).toEqual(['three', 'four']);
    expect(rest.err()).toEqual(['late']);
    await second.releaseStep(h2, stored);
    await second.destroy(h2);
    await expect(access(h2.workspace)).rejects.toThrow();
  });

  it('reads back a step that exited 3 after the process that started it was killed -9', async () => {
    const tmpRoot = await tempRoot();
    const gate = join(tmpRoot, 'go');
    // A separate Node process (running the built code: `npm test` builds first) starts the step,
    // prints its ref and is killed without warning.
    const dist = (path: string): string =>
      JSON.stringify(new URL(`../../../dist/executors/${path}`, import.meta.url).pathname);
    const script = `
      import { LocalExecutor } from ${dist('local/local-executor.js')};
      const ex = new LocalExecutor({ tmpRoot: ${JSON.stringify(tmpRoot)} });
      const h = await ex.prepare({ buildId: 'crash-3', project: 'acme/web', branch: 'main', services: [] });
      const start = await ex.startStep(h, { key: 'test/fails', stage: 'test', step: 'fails', attempt: 1, env: {},
        secrets: { TOKEN: 's3cret' },
        commands: ['echo "token $TOKEN"', 'while ! test -e ${gate}; do sleep 0.05; done', 'echo after', 'echo why >&2', 'exit 3'] },
        new AbortController().signal);
      process.stdout.write(JSON.stringify(start) + '\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let printed = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => (printed += chunk));
    await eventually(60_000, 'the child printed the ref', () => printed.includes('\n'));
    const { ref } = JSON.parse(printed) as { ref: StepRef };
    child.kill('SIGKILL');
    await eventually(20_000, 'the child is dead', () => child.exitCode !== null || child.signalCode !== null);

    // Nobody watches when the step ends.
    await writeFile(gate, '');
    await eventually(60_000, 'the exit is recorded', () =>
      access(join(dirname(ref.id), 'exit')).then(
        () => true,
        () => false,
      ),
    );

    const fresh = make(tmpRoot);
    const h = await fresh.resumeBuild(spec('crash-3'));
    expect(await fresh.findStep(h, 'test/fails', 1)).toEqual(ref);
    const sink = new RecordingSink();
    await fresh.tailStep(h, ref, { stdout: 1, stderr: 0 }, sink, never());
    expect(sink.out()).toEqual(['after']);
    expect(sink.err()).toEqual(['why']);
    expect(await fresh.waitStep(h, ref, never())).toEqual({ kind: 'exited', exitCode: 3 });
    const all = new RecordingSink();
    await fresh.tailStep(h, ref, OUTPUT_START, all, never());
    expect(all.out()).toEqual(['token s3cret', 'after']);
    await fresh.destroy(h);
    expect((await fresh.listResources()).filter((r) => r.buildId === 'crash-3')).toEqual([]);
  });

  it('never adopts a record whose pid now belongs to another process, and never signals it', async () => {
    const tmpRoot = await tempRoot();
    const ex = make(tmpRoot);
    const h = await ex.prepare(spec('recycled-1'));
    // A live process of someone else, with a pid a record could hold after the kernel reused it.
    const other = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    const pid = other.pid!;
    try {
      const dir = join(dirname(h.workspace), STEPS_DIR, stepDirName('test/old', 1));
      await mkdir(dir);
      await writeFile(
        join(dir, RECORD_FILE),
        JSON.stringify({
          buildId: 'recycled-1',
          key: 'test/old',
          attempt: 1,
          startedAt: Date.now(),
          pid,
          pgid: pid,
          startTime: '1',
          watcher: { pid, startTime: '1' },
        }),
      );
      const ref = await ex.findStep(h, 'test/old', 1);
      expect(ref?.id).toBe(join(dir, RECORD_FILE));
      expect(await within(20_000, 'wait', ex.waitStep(h, ref!, never()))).toMatchObject({
        kind: 'error',
        code: 'gone',
      });
      await within(20_000, 'stop', ex.stopStep(h, ref!));
      const sink = new RecordingSink();
      await within(20_000, 'tail', ex.tailStep(h, ref!, OUTPUT_START, sink, never()));
      expect(sink.lines).toEqual([]);
      expect((await ex.listResources()).filter((r) => r.kind === 'process')).toEqual([]);
      await ex.destroy(h);
      expect(await isAlive(pid)).toBe(true);
    } finally {
      other.kill('SIGKILL');
      await ex.destroy(h);
    }
  });
});
