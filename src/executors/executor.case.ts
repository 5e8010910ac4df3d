/**
 * The executor conformance suite: behaviours every executor must show over the step lifecycle
 * of `types.ts` (start → tail + wait → stop → release, resumeBuild in a later process), so
 * that the same pipeline runs the same way everywhere and a restarted server finds its steps
 * again. It is written against the `Executor` interface only. Run it from each executor's
 * `conformance.test.ts`:
 *
 *   executorConformance('docker', SHELL_COMMANDS, async () => ({
 *     create: () => new DockerExecutor(…),
 *     reopen: () => new DockerExecutor(…), // a "second process" over the same engine
 *     image: 'busybox:1.36',
 *   }));
 *
 * Steps are written with a {@link StepCommands} adapter, so every case runs on executors with
 * different step languages (`sh` for local and docker, the memory executor's instructions).
 * The few cases only a shell can express (quoting, binary output, process trees, seeding from
 * a checkout) run where `commands.shell` is true. Shell commands use only `sh`, `printf`,
 * `seq`, `sleep`, `head`, `cat`, `test`, `kill`, `ln` and built-ins: a busybox image is enough.
 */
import { access, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followStep, runStep } from './lifecycle.js';
import { MAX_LINE_LENGTH } from './lines.js';
import {
  ExecutorError,
  OUTPUT_START,
  type BuildHandle,
  type BuildSpec,
  type Executor,
  type OutputPosition,
  type OutputSink,
  type OutputStream,
  type StepExit,
  type StepRef,
  type StepSpec,
} from './types.js';

/** How a case writes its steps for one executor. Every method returns one command. */
export interface StepCommands {
  /** The commands are `sh` lines: enables the cases only a shell can express. */
  readonly shell: boolean;
  /**
   * The executor delivers stderr as stdout, in the order printed (Kubernetes: the log API
   * merges the streams): the cases about two streams expect one.
   */
  readonly mergedStreams?: boolean;
  /** Prints `text` (any characters) as one stdout line. */
  echo(text: string): string;
  /** Prints `text` as one stderr line. */
  warn(text: string): string;
  /** Ends the step with `code`. */
  exit(code: number): string;
  /** A command that fails with code 1 (`false`): the step ends there. */
  fail(): string;
  /** Prints `1`..`n` on stdout, one a line, `delayMs` apart. */
  count(n: number, delayMs?: number): string;
  /** Prints the value of environment variable `name`. */
  printEnv(name: string): string;
  /** Prints the working directory. */
  pwd(): string;
  /** Adds the line `text` to workspace file `file` (created if missing). */
  append(file: string, text: string): string;
  /** Prints workspace file `file`; fails when it does not exist. */
  cat(file: string): string;
  /** Waits until workspace file `file` exists (a gate a test or another step opens). */
  awaitFile(file: string): string;
  /** Waits until killed. */
  hang(): string;
  /** From here on ignores SIGTERM: only the force after the stop's grace ends the step. */
  ignoreTerm(): string;
  /** Writes `text` to stdout as is: no newline added, `\n` and `\r` in it are bytes. */
  raw(text: string): string;
  /** Writes `n` zeros to stdout, without a newline. */
  zeros(n: number): string;
}

const shq = (text: string): string => `'${text.replaceAll("'", `'\\''`)}'`;

/** Steps as `sh` lines (local and container executors). */
export const SHELL_COMMANDS: StepCommands = {
  shell: true,
  echo: (text) => `printf '%s\\n' ${shq(text)}`,
  warn: (text) => `printf '%s\\n' ${shq(text)} >&2`,
  exit: (code) => `exit ${code}`,
  fail: () => 'false',
  count: (n, delayMs = 0) =>
    delayMs === 0
      ? `seq 1 ${n}`
      : `i=1; while test $i -le ${n}; do echo $i; if test $i -lt ${n}; then sleep ${delayMs / 1000}; fi; i=$((i+1)); done`,
  printEnv: (name) => `printf '%s\\n' "$${name}"`,
  pwd: () => 'pwd',
  append: (file, text) => `printf '%s\\n' ${shq(text)} >> ${shq(file)}`,
  cat: (file) => `cat ${shq(file)}`,
  awaitFile: (file) => `while ! test -e ${shq(file)}; do sleep 0.05; done`,
  hang: () => 'sleep 3600',
  ignoreTerm: () => "trap '' TERM",
  raw: (text) => `printf '%s' ${shq(text)}`,
  zeros: (n) => `printf '%0${n}d' 0`,
};

export interface ConformanceTarget {
  /** The executor under test; called once. */
  create(): Executor;
  /**
   * A "second process": a new executor instance over the same engine and disk, as a restarted
   * server builds it (for the memory executor, whose engine is the object: the same one).
   */
  reopen(): Executor;
  /** Default image, used as BuildSpec.image and StepSpec.image (container executors). */
  image?: string;
  /**
   * Steps run as processes of this host and handle.workspace is a host path: enables the
   * checks that read pid files from the workspace and probe pids with `kill -0`.
   */
  hostProcesses?: boolean;
  cleanup?: () => Promise<void>;
}

/** A sink that keeps every line, for assertions. */
export class RecordingSink implements OutputSink {
  readonly lines: { stream: OutputStream; text: string; continues: boolean }[] = [];

  line(stream: OutputStream, text: string, continues?: boolean): void {
    this.lines.push({ stream, text, continues: continues === true });
  }

  out(): string[] {
    return this.lines.filter((l) => l.stream === 'stdout').map((l) => l.text);
  }

  err(): string[] {
    return this.lines.filter((l) => l.stream === 'stderr').map((l) => l.text);
  }

  has(text: string): boolean {
    return this.lines.some((l) => l.text === text);
  }

  /** How many lines of each stream it got: the position to tail on from. */
  position(): OutputPosition {
    return { stdout: this.out().length, stderr: this.err().length };
  }
}

/** Rejects if `promise` has not settled after `ms`: a bound against hangs, not a timing check. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it holds; fails after `ms`. */
export async function eventually(
  ms: number,
  what: string,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: still not true after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether a host pid is a live process (a zombie waiting to be reaped counts as gone). */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true; // no procfs (macOS): trust kill -0
  }
}

const LONG = 120_000;
/** Bounded wait for a cancel: generous, far below the hang it interrupts. */
const CANCEL_BOUND = 30_000;
const never = (): AbortSignal => new AbortController().signal;
/** A ref as a later process reads it back from the database. */
const stored = (ref: StepRef): StepRef => JSON.parse(JSON.stringify(ref)) as StepRef;

export function executorConformance(
  name: string,
  commands: StepCommands,
  setup: () => Promise<ConformanceTarget>,
): void {
  const c = commands;
  // Per-test bound for slow engines; each wait inside a test has its own, tighter bound.
  describe(`executor conformance: ${name}`, { timeout: LONG + CANCEL_BOUND }, () => {
    let target: ConformanceTarget;
    let ex: Executor;
    let seq = 0;
    const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;

    beforeAll(async () => {
      target = await setup();
      ex = target.create();
    }, 600_000);

    afterAll(async () => {
      await target?.cleanup?.();
    }, 120_000);

    /** `out` on stdout and `err` on stderr; `both` (in printed order) on stdout where they are merged. */
    function expectStreams(sink: RecordingSink, out: string[], err: string[], both: string[]): void {
      if (c.mergedStreams) {
        expect(sink.out()).toEqual(both);
        expect(sink.err()).toEqual([]);
      } else {
        expect(sink.out()).toEqual(out);
        expect(sink.err()).toEqual(err);
      }
    }

    function buildSpec(extra: Partial<BuildSpec> = {}): BuildSpec {
      return {
        buildId: `conformance-${run}-${++seq}`,
        project: 'conformance/suite',
        branch: 'main',
        image: target.image,
        services: [],
        ...extra,
      };
    }

    function stepSpec(commandLines: string[], extra: Partial<StepSpec> = {}): StepSpec {
      const step = `s${++seq}`;
      return {
        key: `test/${step}`,
        stage: 'test',
        step,
        image: target.image,
        commands: commandLines,
        env: {},
        secrets: {},
        attempt: 1,
        ...extra,
      };
    }

    /** Prepares a build, runs `fn`, and always destroys the build. */
    async function withBuild<T>(fn: (h: BuildHandle, spec: BuildSpec) => Promise<T>): Promise<T> {
      const spec = buildSpec();
      const handle = await ex.prepare(spec);
      try {
        return await fn(handle, spec);
      } finally {
        await ex.destroy(handle);
      }
    }

    /** Runs a step start to end with `runStep` of lifecycle.ts. */
    async function runIn(
      h: BuildHandle,
      commandLines: string[],
      extra: Partial<StepSpec> = {},
    ): Promise<{ exit: StepExit | undefined; sink: RecordingSink }> {
      const sink = new RecordingSink();
      const exit = await within(
        LONG,
        'runStep',
        runStep(ex, h, stepSpec(commandLines, extra), sink, never()),
      );
      return { exit, sink };
    }

    /** Starts a step and returns its ref as a database gives it back. */
    async function start(executor: Executor, h: BuildHandle, spec: StepSpec): Promise<StepRef> {
      const started = await within(LONG, 'startStep', executor.startStep(h, spec, never()));
      if (!('ref' in started)) throw new Error(`the step did not start: ${JSON.stringify(started.exit)}`);
      return stored(started.ref);
    }

    /** Tails a step to the end of its output. */
    async function tail(
      executor: Executor,
      h: BuildHandle,
      ref: StepRef,
      from: OutputPosition = OUTPUT_START,
    ): Promise<RecordingSink> {
      const sink = new RecordingSink();
      await within(LONG, 'tailStep', executor.tailStep(h, ref, from, sink, never()));
      return sink;
    }

    function wait(executor: Executor, h: BuildHandle, ref: StepRef): Promise<StepExit | undefined> {
      return within(LONG, 'waitStep', executor.waitStep(h, ref, never()));
    }

    /** Tails a running step in the background until `signal` aborts or its output ends. */
    function tailLive(
      executor: Executor,
      h: BuildHandle,
      ref: StepRef,
      signal: AbortSignal = never(),
      from: OutputPosition = OUTPUT_START,
    ): { sink: RecordingSink; done: Promise<void> } {
      const sink = new RecordingSink();
      return { sink, done: executor.tailStep(h, ref, from, sink, signal) };
    }

    /** Opens the gate file a step waits for, with a step of its own. */
    async function openGate(executor: Executor, h: BuildHandle, gate: string): Promise<void> {
      const sink = new RecordingSink();
      const exit = await within(
        LONG,
        'gate step',
        runStep(executor, h, stepSpec([c.append(gate, 'open')]), sink, never()),
      );
      expect(exit, sink.lines.map((l) => l.text).join('\n')).toEqual({ kind: 'exited', exitCode: 0 });
    }

    /** Runs `commands` with runStep, aborts once the step printed `ready`. */
    async function abortAfter(
      h: BuildHandle,
      commandLines: string[],
      ready: string,
    ): Promise<StepExit | undefined> {
      const sink = new RecordingSink();
      const ctl = new AbortController();
      const running = runStep(ex, h, stepSpec(commandLines), sink, ctl.signal);
      let ended = false;
      void running.then(
        () => (ended = true),
        () => (ended = true),
      );
      await eventually(LONG, `step printed "${ready}"`, () => sink.has(ready) || ended);
      expect(ended).toBe(false);
      ctl.abort();
      return within(CANCEL_BOUND, 'aborted step', running);
    }

    async function readPid(h: BuildHandle, file: string): Promise<number> {
      const pid = Number((await readFile(join(h.workspace, file), 'utf8')).trim());
      expect(pid).toBeGreaterThan(1);
      return pid;
    }

    describe('the step lifecycle', () => {
      it('startStep returns a durable ref; tail and wait work from its JSON', async () => {
        await withBuild(async (h) => {
          const spec = stepSpec([c.echo('hello'), c.warn('oops'), c.exit(4)]);
          const ref = await start(ex, h, spec);
          expect(ref).toMatchObject({ executor: ex.name, buildId: h.buildId, key: spec.key, attempt: 1 });
          expect(typeof ref.id).toBe('string');
          expect(ref.startedAt).toBeGreaterThan(0);
          expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 4 });
          const sink = await tail(ex, h, ref);
          expectStreams(sink, ['hello'], ['oops'], ['hello', 'oops']);
        });
      });

      it('startStep is idempotent per key and attempt; findStep finds each attempt', async () => {
        await withBuild(async (h) => {
          const spec = stepSpec([c.append('starts.txt', `attempt`), c.echo('once')]);
          const first = await start(ex, h, spec);
          const again = await start(ex, h, spec);
          expect(again.id).toBe(first.id);
          expect(await wait(ex, h, first)).toEqual({ kind: 'exited', exitCode: 0 });
          const second = await start(ex, h, { ...spec, attempt: 2 });
          expect(second.id).not.toBe(first.id);
          expect(second.attempt).toBe(2);
          expect(await wait(ex, h, second)).toEqual({ kind: 'exited', exitCode: 0 });
          expect((await ex.findStep(h, spec.key, 1))?.id).toBe(first.id);
          expect((await ex.findStep(h, spec.key, 2))?.id).toBe(second.id);
          expect(await ex.findStep(h, spec.key, 3)).toBeUndefined();
          expect(await ex.findStep(h, 'test/never-started', 1)).toBeUndefined();
          // Each attempt ran exactly once.
          expect((await runIn(h, [c.cat('starts.txt')])).sink.out()).toEqual(['attempt', 'attempt']);
          expect((await tail(ex, h, first)).out()).toEqual(['once']);
        });
      });

      it.runIf(!c.mergedStreams)(
        'tails from the start and from a position: exactly the rest, per stream, none twice',
        async () => {
          await withBuild(async (h) => {
            const ref = await start(
              ex,
              h,
              stepSpec([
                c.echo('o1'),
                c.warn('e1'),
                c.echo('o2'),
                c.echo('o3'),
                c.warn('e2'),
                c.echo('o4'),
                c.warn('e3'),
                c.echo('o5'),
              ]),
            );
            expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 0 });
            const all = await tail(ex, h, ref);
            expect(all.out()).toEqual(['o1', 'o2', 'o3', 'o4', 'o5']);
            expect(all.err()).toEqual(['e1', 'e2', 'e3']);
            // Tailing twice gives the same lines.
            const again = await tail(ex, h, ref);
            expect(again.out()).toEqual(all.out());
            expect(again.err()).toEqual(all.err());
            const rest = await tail(ex, h, ref, { stdout: 2, stderr: 1 });
            expect(rest.out()).toEqual(['o3', 'o4', 'o5']);
            expect(rest.err()).toEqual(['e2', 'e3']);
            const onlyErr = await tail(ex, h, ref, { stdout: 5, stderr: 0 });
            expect(onlyErr.lines).toEqual(all.lines.filter((l) => l.stream === 'stderr'));
            expect((await tail(ex, h, ref, { stdout: 5, stderr: 3 })).lines).toEqual([]);
          });
        },
      );

      it('tails a running step live until its output ends, and from a position mid-way', async () => {
        await withBuild(async (h) => {
          const ref = await start(
            ex,
            h,
            stepSpec([c.count(3), c.awaitFile('gate'), c.echo('4'), c.echo('5')]),
          );
          const live = tailLive(ex, h, ref);
          await eventually(LONG, 'three lines tailed', () => live.sink.out().length >= 3);
          // A second reader from the middle, while the step still runs.
          const late = tailLive(ex, h, ref, never(), { stdout: 2, stderr: 0 });
          await openGate(ex, h, 'gate');
          await within(LONG, 'live tail', live.done);
          await within(LONG, 'late tail', late.done);
          expect(live.sink.out()).toEqual(['1', '2', '3', '4', '5']);
          expect(late.sink.out()).toEqual(['3', '4', '5']);
          expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 0 });
        });
      });

      it('cuts a long line into the same pieces on every tail; a position counts pieces', async () => {
        await withBuild(async (h) => {
          const ref = await start(ex, h, stepSpec([c.zeros(150_000), c.echo(''), c.echo('after')]));
          expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 0 });
          const all = await tail(ex, h, ref);
          const pieces = Math.ceil(150_000 / MAX_LINE_LENGTH);
          expect(all.out().length).toBe(pieces + 1);
          expect(all.out().slice(0, pieces).join('')).toBe('0'.repeat(150_000));
          expect(all.out().at(-1)).toBe('after');
          expect(all.lines.map((l) => l.continues)).toEqual([
            ...Array<boolean>(pieces - 1).fill(true),
            false,
            false,
          ]);
          const rest = await tail(ex, h, ref, { stdout: 1, stderr: 0 });
          expect(rest.lines).toEqual(all.lines.slice(1));
        });
      });

      it('waitStep on a running and on an ended step; the exit is kept until release', async () => {
        await withBuild(async (h, spec) => {
          const ref = await start(ex, h, stepSpec([c.echo('started'), c.awaitFile('gate'), c.exit(5)]));
          const waiting = wait(ex, h, ref);
          await openGate(ex, h, 'gate');
          expect(await waiting).toEqual({ kind: 'exited', exitCode: 5 });
          expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 5 });
          const ex2 = target.reopen();
          const h2 = await within(LONG, 'resumeBuild', ex2.resumeBuild(spec));
          expect(await wait(ex2, h2, ref)).toEqual({ kind: 'exited', exitCode: 5 });
        });
      });

      it('waitStep with an aborted signal resolves undefined and kills nothing', async () => {
        await withBuild(async (h) => {
          const ref = await start(
            ex,
            h,
            stepSpec([c.echo('started'), c.awaitFile('gate'), c.echo('finished')]),
          );
          expect(
            await within(LONG, 'aborted wait', ex.waitStep(h, ref, AbortSignal.abort())),
          ).toBeUndefined();
          const ctl = new AbortController();
          const waiting = ex.waitStep(h, ref, ctl.signal);
          ctl.abort();
          expect(await within(LONG, 'wait aborted later', waiting)).toBeUndefined();
          await openGate(ex, h, 'gate');
          expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 0 });
          expect((await tail(ex, h, ref)).out()).toEqual(['started', 'finished']);
        });
      });

      it('stopStep kills a step that ignores SIGTERM (grace, then force), idempotently; its exit and output stay', async () => {
        await withBuild(async (h) => {
          const ref = await start(
            ex,
            h,
            stepSpec([c.echo('started'), c.ignoreTerm(), c.echo('armed'), c.hang()]),
          );
          const live = tailLive(ex, h, ref);
          await eventually(LONG, 'step armed', () => live.sink.has('armed'));
          await within(CANCEL_BOUND, 'stopStep', ex.stopStep(h, ref));
          await within(CANCEL_BOUND, 'stopStep again', ex.stopStep(h, ref));
          await within(LONG, 'tail of a stopped step', live.done);
          const exit = await wait(ex, h, ref);
          expect(exit?.kind).toBe('exited');
          expect(exit?.exitCode).not.toBe(0);
          expect(await wait(ex, h, ref)).toEqual(exit);
          expect((await tail(ex, h, ref)).out()).toEqual(['started', 'armed']);
          await within(CANCEL_BOUND, 'stopStep of an ended step', ex.stopStep(h, ref));
        });
      });

      it('releaseStep is idempotent and leaves nothing of the step', async () => {
        await withBuild(async (h) => {
          const ref = await start(ex, h, stepSpec([c.echo('x')]));
          expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 0 });
          await ex.releaseStep(h, ref);
          await ex.releaseStep(h, ref);
          expect((await ex.listResources()).filter((r) => r.id === ref.id)).toEqual([]);
        });
      });
    });

    describe('a second process', () => {
      it('resumes the build, finds the step, tails on from a position and reads its exit', async () => {
        await withBuild(async (h, spec) => {
          const step = stepSpec([c.count(3), c.awaitFile('gate'), c.echo('4'), c.warn('e1'), c.exit(3)]);
          const ref = await start(ex, h, step);
          const ctl = new AbortController();
          const first = tailLive(ex, h, ref, ctl.signal);
          await eventually(LONG, 'three lines tailed', () => first.sink.out().length >= 3);
          ctl.abort();
          await within(LONG, 'aborted tail', first.done);
          const position = first.sink.position();
          expect(position).toEqual({ stdout: 3, stderr: 0 });

          // The "server" dies here; the step's ref was never stored.
          const ex2 = target.reopen();
          const h2 = await within(LONG, 'resumeBuild', ex2.resumeBuild(spec));
          expect(h2.buildId).toBe(h.buildId);
          expect(h2.workspace).toBe(h.workspace);
          const found = await ex2.findStep(h2, step.key, 1);
          // The same step; `startedAt` may be read back from the engine (its clock, its precision).
          const { startedAt: _, ...identity } = ref;
          expect(found && stored(found)).toMatchObject(identity);
          const second = tailLive(ex2, h2, found!, never(), position);
          const waiting = wait(ex2, h2, found!);
          await openGate(ex2, h2, 'gate');
          expect(await waiting).toEqual({ kind: 'exited', exitCode: 3 });
          await within(LONG, 'resumed tail', second.done);
          expectStreams(second.sink, ['4'], ['e1'], ['4', 'e1']);
          await ex2.releaseStep(h2, found!);
          await ex2.destroy(h2);
          expect((await ex2.listResources()).filter((r) => r.buildId === h.buildId)).toEqual([]);
        });
      });

      it('resumeBuild of a destroyed or unknown build rejects with code gone', async () => {
        const spec = buildSpec();
        const h = await ex.prepare(spec);
        await runIn(h, [c.echo('x')]);
        await ex.destroy(h);
        for (const build of [spec, buildSpec()]) {
          const error: unknown = await target
            .reopen()
            .resumeBuild(build)
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          expect(error).toBeInstanceOf(ExecutorError);
          expect((error as ExecutorError).code).toBe('gone');
        }
      });

      it('never adopts a foreign ref (another build, step or attempt): nothing tailed, gone, nothing killed', async () => {
        await withBuild(async (h) => {
          const other = await ex.prepare(buildSpec());
          try {
            const ref = await start(ex, h, stepSpec([c.echo('mine'), c.awaitFile('gate'), c.echo('done')]));
            const ctl = new AbortController();
            const probe = tailLive(ex, h, ref, ctl.signal);
            await eventually(LONG, 'step printed', () => probe.sink.has('mine'));
            ctl.abort();
            await within(LONG, 'aborted tail', probe.done);
            const foreign: Array<[BuildHandle, StepRef]> = [
              [other, ref],
              [h, { ...ref, attempt: 2 }],
              [h, { ...ref, key: 'test/another' }],
              [h, { ...ref, buildId: other.buildId }],
            ];
            for (const [handle, r] of foreign) {
              const sink = new RecordingSink();
              await within(
                LONG,
                'tail of a foreign ref',
                ex.tailStep(handle, r, OUTPUT_START, sink, never()),
              );
              expect(sink.lines).toEqual([]);
              expect(await wait(ex, handle, r)).toMatchObject({ kind: 'error', code: 'gone' });
              await within(CANCEL_BOUND, 'stop of a foreign ref', ex.stopStep(handle, r));
              await ex.releaseStep(handle, r);
            }
            await openGate(ex, h, 'gate');
            expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 0 });
            expect((await tail(ex, h, ref)).out()).toEqual(['mine', 'done']);
          } finally {
            await ex.destroy(other);
          }
        });
      });
    });

    describe('runStep and followStep (lifecycle.ts)', () => {
      it('runs a step start to end and tells the ref before any output is read', async () => {
        await withBuild(async (h) => {
          const sink = new RecordingSink();
          let startedRef: StepRef | undefined;
          let linesAtStart = -1;
          const exit = await within(
            LONG,
            'runStep',
            runStep(ex, h, stepSpec([c.echo('hello')]), sink, never(), {
              started: (ref) => {
                startedRef = ref;
                linesAtStart = sink.lines.length;
                return Promise.resolve();
              },
            }),
          );
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out()).toEqual(['hello']);
          expect(startedRef?.buildId).toBe(h.buildId);
          expect(linesAtStart).toBe(0);
        });
      });

      it('detach leaves the step running; a second instance follows it to its end, no line lost or twice', async () => {
        await withBuild(async (h, spec) => {
          const step = stepSpec([c.count(2), c.awaitFile('gate'), c.echo('3'), c.echo('4')]);
          const sink = new RecordingSink();
          const detach = new AbortController();
          const running = runStep(ex, h, step, sink, never(), {}, detach.signal);
          await eventually(LONG, 'two lines', () => sink.out().length >= 2);
          detach.abort();
          expect(await within(LONG, 'detached runStep', running)).toBeUndefined();

          const ex2 = target.reopen();
          const h2 = await within(LONG, 'resumeBuild', ex2.resumeBuild(spec));
          const ref = await ex2.findStep(h2, step.key, 1);
          expect(ref).toBeDefined();
          const following = followStep(ex2, h2, stored(ref!), sink.position(), sink, never());
          await openGate(ex2, h2, 'gate');
          expect(await within(LONG, 'followStep', following)).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out()).toEqual(['1', '2', '3', '4']);
        });
      });

      it('kills a running step when the signal aborts and resolves aborted', async () => {
        await withBuild(async (h) => {
          expect((await abortAfter(h, [c.echo('started'), c.hang()], 'started'))?.kind).toBe('aborted');
        });
      });

      it('kills a step that ignores SIGTERM when the signal aborts', async () => {
        await withBuild(async (h) => {
          const exit = await abortAfter(h, [c.ignoreTerm(), c.echo('armed'), c.hang()], 'armed');
          expect(exit?.kind).toBe('aborted');
        });
      });

      it('does not start a step whose signal is already aborted', async () => {
        await withBuild(async (h) => {
          const sink = new RecordingSink();
          const spec = stepSpec([c.append('ran.txt', 'first'), c.echo('ran')]);
          const exit = await within(LONG, 'runStep', runStep(ex, h, spec, sink, AbortSignal.abort()));
          expect(exit?.kind).toBe('aborted');
          expect(sink.lines).toEqual([]);
          const after = await runIn(h, [c.append('ran.txt', 'second'), c.cat('ran.txt')]);
          expect(after.sink.out()).toEqual(['second']);
        });
      });
    });

    describe('exit codes', () => {
      it('resolves exit code 0 and the output of a successful step', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, [c.echo('hello')]);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out()).toEqual(['hello']);
        });
      });

      it('resolves a non-zero exit code as a result, not a rejection', async () => {
        await withBuild(async (h) => {
          expect((await runIn(h, [c.exit(3)])).exit).toEqual({ kind: 'exited', exitCode: 3 });
        });
      });

      it('ends the step at the first failing command', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, [c.echo('one'), c.fail(), c.echo('two')]);
          expect(exit).toEqual({ kind: 'exited', exitCode: 1 });
          expect(sink.out()).toEqual(['one']);
        });
      });
    });

    describe('environment and workspace', () => {
      it('passes the step env verbatim', async () => {
        await withBuild(async (h) => {
          const env = { FOO: 'bar baz', TRICKY: `it's "$HOME" \\ ; $(not run)` };
          const { exit, sink } = await runIn(h, [c.printEnv('FOO'), c.printEnv('TRICKY')], { env });
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out()).toEqual(['bar baz', env.TRICKY]);
        });
      });

      it('gives secrets to the step environment apart from env; a secret wins over env', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(
            h,
            [c.printEnv('PLAIN'), c.printEnv('SHARED'), c.printEnv('TOKEN')],
            {
              env: { PLAIN: 'plain', SHARED: 'from env' },
              secrets: { SHARED: 'from secret', TOKEN: `t0k'en $x` },
            },
          );
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out()).toEqual(['plain', 'from secret', `t0k'en $x`]);
        });
      });

      it('runs in the workspace, shared by the steps of a build', async () => {
        await withBuild(async (h) => {
          expect(h.workspace).toBe(ex.workspacePath(h.buildId));
          const first = await runIn(h, [c.pwd(), c.append('shared.txt', 'data')]);
          expect(first.exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(first.sink.out()).toEqual([h.workspace]);
          const second = await runIn(h, [c.cat('shared.txt')]);
          expect(second.sink.out()).toEqual(['data']);
        });
      });

      it('runs two steps of a build at the same time', async () => {
        // Each step announces itself and then waits for the other: both end only if they overlap.
        const handshake = (mine: string, theirs: string): string[] => [
          c.append(`${mine}.ready`, mine),
          c.awaitFile(`${theirs}.ready`),
          c.echo(`${mine} saw ${theirs}`),
        ];
        await withBuild(async (h) => {
          const [a, b] = await Promise.all([runIn(h, handshake('a', 'b')), runIn(h, handshake('b', 'a'))]);
          expect(a.exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(b.exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(a.sink.out()).toEqual(['a saw b']);
          expect(b.sink.out()).toEqual(['b saw a']);
        });
      });

      it.runIf(c.shell)('seeds the workspace from sourceDir (files, dirs, symlinks, exec bits)', async () => {
        const src = await mkdtemp(join(tmpdir(), 'slipway-conformance-src-'));
        try {
          await writeFile(join(src, 'hello.txt'), 'hello from source\n');
          await mkdir(join(src, 'sub'));
          await writeFile(join(src, 'sub', 'nested.txt'), 'nested\n');
          await symlink('hello.txt', join(src, 'link.txt'));
          await writeFile(join(src, 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
          const h = await ex.prepare(buildSpec({ sourceDir: src }));
          try {
            const { exit, sink } = await runIn(h, [
              'cat hello.txt',
              'cat sub/nested.txt',
              'test -L link.txt',
              'cat link.txt',
              'test -x run.sh',
              './run.sh',
            ]);
            expect(sink.out()).toEqual(['hello from source', 'nested', 'hello from source', 'ran']);
            expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          } finally {
            await ex.destroy(h);
          }
        } finally {
          await rm(src, { recursive: true, force: true });
        }
      });
    });

    describe('process trees', () => {
      it.runIf(c.shell)('takes background children down with an aborted step', async () => {
        await withBuild(async (h) => {
          // Abort only once the child's pid is written: on a busy machine the first line can
          // come long before the shell gets to the next one.
          const exit = await abortAfter(
            h,
            ['sleep 300 &', 'echo $! > bg.pid', 'echo pid-written', 'sleep 300'],
            'pid-written',
          );
          expect(exit?.kind).toBe('aborted');
          if (target.hostProcesses) {
            const pid = await readPid(h, 'bg.pid');
            await eventually(10_000, `background child ${pid} gone`, async () => !(await isAlive(pid)));
          }
        });
      });

      it.runIf(c.shell)(
        'finishes a step that leaves a background child holding its output, and ends the child',
        async () => {
          await withBuild(async (h) => {
            const { exit, sink } = await runIn(h, ['sleep 300 &', 'echo $! > bg.pid', 'echo done']);
            expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
            expect(sink.out()).toEqual(['done']);
            if (target.hostProcesses) {
              const pid = await readPid(h, 'bg.pid');
              await eventually(10_000, `background child ${pid} gone`, async () => !(await isAlive(pid)));
            }
          });
        },
      );
    });

    describe('output', () => {
      it('delivers 100k lines, all, in order; a tail from near the end gets exactly the rest', async () => {
        await withBuild(async (h) => {
          const ref = await start(ex, h, stepSpec([c.count(100_000)]));
          const live = tailLive(ex, h, ref);
          expect(await wait(ex, h, ref)).toEqual({ kind: 'exited', exitCode: 0 });
          await within(LONG, 'tail', live.done);
          const out = live.sink.out();
          expect(out.length).toBe(100_000);
          const wrong = out.findIndex((text, i) => text !== String(i + 1));
          expect(wrong === -1 ? 'all in order' : `line ${wrong + 1} is ${JSON.stringify(out[wrong])}`).toBe(
            'all in order',
          );
          const rest = await tail(ex, h, ref, { stdout: 99_990, stderr: 0 });
          expect(rest.out()).toEqual(Array.from({ length: 10 }, (_, i) => String(99_991 + i)));
        });
      });

      it('splits a 200 KB line without newline at the line cap and flushes it', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, [c.zeros(200_000)]);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          const out = sink.out();
          expect(out.length).toBeGreaterThanOrEqual(Math.ceil(200_000 / MAX_LINE_LENGTH));
          expect(out.every((l) => l.length <= MAX_LINE_LENGTH)).toBe(true);
          expect(out.join('')).toBe('0'.repeat(200_000));
        });
      });

      it('keeps unicode intact', async () => {
        const text = 'héllo wörld — 日本語 한국어 🚀✨ 👩‍👩‍👧';
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, [c.echo(text), c.warn(text)]);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expectStreams(sink, [text], [text], [text, text]);
        });
      });

      it.runIf(c.shell)('keeps unicode intact where pipe reads cut through characters', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, [
            // One long write of 4-byte and 3-byte characters: reads end mid-character somewhere.
            's=\'日本語🚀\'; i=0; while test $i -lt 12; do s="$s$s"; i=$((i+1)); done; printf \'%s\\n%s\\n\' "$s" "$s"',
            'i=0; while test $i -lt 3000; do echo "行 🚀 $i"; i=$((i+1)); done',
          ]);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          const out = sink.out();
          const big = '日本語🚀'.repeat(4096);
          expect(out.slice(0, 2)).toEqual([big, big]);
          expect(out.slice(2)).toEqual(Array.from({ length: 3000 }, (_, i) => `行 🚀 ${i}`));
        });
      });

      it.runIf(c.shell)('survives binary garbage and the step still exits 0', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, ['head -c 100000 /dev/urandom', 'echo', 'echo done']);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out().at(-1)).toBe('done');
          expect(sink.lines.every((l) => l.text.length <= MAX_LINE_LENGTH)).toBe(true);
        });
      });

      it.runIf(!c.mergedStreams)('marks stderr lines as stderr and keeps each stream in order', async () => {
        await withBuild(async (h) => {
          const { sink } = await runIn(h, [c.echo('out1'), c.warn('err1'), c.echo('out2'), c.warn('err2')]);
          expect(sink.out()).toEqual(['out1', 'out2']);
          expect(sink.err()).toEqual(['err1', 'err2']);
        });
      });

      it('flushes a partial last line, keeps empty lines, strips \\r\\n', async () => {
        await withBuild(async (h) => {
          const { sink } = await runIn(h, [c.raw('a\r\n\nb\n'), c.raw('last without newline')]);
          expect(sink.out()).toEqual(['a', '', 'b', 'last without newline']);
        });
      });

      it('delivers the output of a failing step', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, [c.echo('before'), c.warn('why'), c.exit(7)]);
          expect(exit).toEqual({ kind: 'exited', exitCode: 7 });
          expectStreams(sink, ['before'], ['why'], ['before', 'why']);
        });
      });
    });

    describe('build resources', () => {
      it('lists a prepared build; destroy removes the workspace and its resources, running steps too', async () => {
        const h = await ex.prepare(buildSpec());
        try {
          await runIn(h, [c.append('file.txt', 'x')]);
          await start(ex, h, stepSpec([c.hang()]));
          expect((await ex.listResources()).some((r) => r.buildId === h.buildId)).toBe(true);
        } finally {
          await within(LONG, 'destroy', ex.destroy(h));
        }
        expect((await ex.listResources()).filter((r) => r.buildId === h.buildId)).toEqual([]);
        if (target.hostProcesses) await expect(access(h.workspace)).rejects.toThrow();
      });

      it('destroy is idempotent, also after an aborted step', async () => {
        const h = await ex.prepare(buildSpec());
        await ex.destroy(h);
        await ex.destroy(h);
        const h2 = await ex.prepare(buildSpec());
        const ctl = new AbortController();
        const running = runStep(ex, h2, stepSpec([c.hang()]), new RecordingSink(), ctl.signal);
        ctl.abort();
        expect((await within(CANCEL_BOUND, 'aborted step', running))?.kind).toBe('aborted');
        await ex.destroy(h2);
        await ex.destroy(h2);
        expect((await ex.listResources()).filter((r) => r.buildId === h2.buildId)).toEqual([]);
      });

      it('removeResources of an unknown or already removed build is a no-op', async () => {
        await ex.removeResources(`conformance-${run}-never-existed`);
        const h = await ex.prepare(buildSpec());
        await ex.removeResources(h.buildId);
        expect((await ex.listResources()).filter((r) => r.buildId === h.buildId)).toEqual([]);
        await ex.removeResources(h.buildId);
        await ex.destroy(h);
      });
    });
  });
}
