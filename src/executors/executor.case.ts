/**
 * The executor conformance suite: behaviours every executor must show, so that the same
 * pipeline runs the same way everywhere. Run it from each executor's test file:
 *
 *   executorConformance('docker', async () => ({ executor: new DockerExecutor(…), image: 'busybox:1.36' }));
 *
 * Commands use only `sh`, `echo`, `printf`, `seq`, `sleep`, `head`, `cat`, `test`, `kill` and
 * shell built-ins, so a busybox image is enough.
 */
import { access, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LINE_LENGTH } from './lines.js';
import type {
  BuildHandle,
  BuildSpec,
  Executor,
  OutputSink,
  OutputStream,
  StepExit,
  StepSpec,
} from './types.js';

export interface ConformanceTarget {
  executor: Executor;
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
  readonly lines: { stream: OutputStream; text: string }[] = [];

  line(stream: OutputStream, text: string): void {
    this.lines.push({ stream, text });
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
/** Bounded wait for a cancel: generous, far below the `sleep 300` it interrupts. */
const CANCEL_BOUND = 30_000;

export function executorConformance(name: string, setup: () => Promise<ConformanceTarget>): void {
  // Per-test bound for slow engines; each wait inside a test has its own, tighter bound.
  describe(`executor conformance: ${name}`, { timeout: LONG + CANCEL_BOUND }, () => {
    let target: ConformanceTarget;
    let ex: Executor;
    let seq = 0;
    const run = `${process.pid.toString(36)}${Date.now().toString(36)}`;

    beforeAll(async () => {
      target = await setup();
      ex = target.executor;
    }, 600_000);

    afterAll(async () => {
      await target?.cleanup?.();
    }, 120_000);

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

    function stepSpec(commands: string[], env: Record<string, string> = {}, step = `s${++seq}`): StepSpec {
      return { key: `test/${step}`, stage: 'test', step, image: target.image, commands, env, attempt: 1 };
    }

    /** Prepares a build, runs `fn`, and always destroys the build. */
    async function withBuild<T>(fn: (h: BuildHandle) => Promise<T>, extra?: Partial<BuildSpec>): Promise<T> {
      const handle = await ex.prepare(buildSpec(extra));
      try {
        return await fn(handle);
      } finally {
        await ex.destroy(handle);
      }
    }

    async function runIn(
      h: BuildHandle,
      commands: string[],
      env?: Record<string, string>,
    ): Promise<{ exit: StepExit; sink: RecordingSink }> {
      const sink = new RecordingSink();
      const exit = await within(
        LONG,
        'runStep',
        ex.runStep(h, stepSpec(commands, env), sink, new AbortController().signal),
      );
      return { exit, sink };
    }

    /** Starts a step, waits for its `started` line, aborts it, and returns how it ended. */
    /** Runs `commands`, aborts once the step printed `ready` (default: at once, after `started`). */
    async function abortAfterStart(h: BuildHandle, commands: string[], ready = 'started'): Promise<StepExit> {
      const sink = new RecordingSink();
      const ctl = new AbortController();
      const running = ex.runStep(h, stepSpec(['echo started', ...commands]), sink, ctl.signal);
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

    describe('exit codes', () => {
      it('resolves exit code 0 and the output of a successful step', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, ['echo hello']);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out()).toEqual(['hello']);
        });
      });

      it('resolves a non-zero exit code as a result, not a rejection', async () => {
        await withBuild(async (h) => {
          expect((await runIn(h, ['exit 3'])).exit).toEqual({ kind: 'exited', exitCode: 3 });
        });
      });

      it('has `sh -e` semantics: the first failing command ends the step', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, ['echo one', 'test 1 = 2', 'echo two']);
          expect(exit).toEqual({ kind: 'exited', exitCode: 1 });
          expect(sink.out()).toEqual(['one']);
        });
      });
    });

    describe('environment and workspace', () => {
      it('passes the step env verbatim', async () => {
        await withBuild(async (h) => {
          const env = { FOO: 'bar baz', TRICKY: `it's "$HOME" \\ ; $(not run)` };
          const { exit, sink } = await runIn(h, ['echo "$FOO"', 'printf "%s\\n" "$TRICKY"'], env);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out()).toEqual(['bar baz', env.TRICKY]);
        });
      });

      it('runs in the workspace, shared by the steps of a build', async () => {
        await withBuild(async (h) => {
          expect(h.workspace).toBe(ex.workspacePath(h.buildId));
          const first = await runIn(h, ['pwd', 'echo data > shared.txt']);
          expect(first.exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(first.sink.out()).toEqual([h.workspace]);
          const second = await runIn(h, ['cat shared.txt']);
          expect(second.sink.out()).toEqual(['data']);
        });
      });

      it('seeds the workspace from sourceDir (files, dirs, symlinks, exec bits)', async () => {
        const src = await mkdtemp(join(tmpdir(), 'slipway-conformance-src-'));
        try {
          await writeFile(join(src, 'hello.txt'), 'hello from source\n');
          await mkdir(join(src, 'sub'));
          await writeFile(join(src, 'sub', 'nested.txt'), 'nested\n');
          await symlink('hello.txt', join(src, 'link.txt'));
          await writeFile(join(src, 'run.sh'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
          await withBuild(
            async (h) => {
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
            },
            { sourceDir: src },
          );
        } finally {
          await rm(src, { recursive: true, force: true });
        }
      });
    });

    describe('parallel steps', () => {
      // Each step announces itself and then waits for the other: both succeed only if they overlap.
      const handshake = (mine: string, theirs: string): string[] => [
        `echo > ${mine}.ready`,
        `i=0; while ! test -f ${theirs}.ready; do i=$((i+1)); if test $i -gt 900; then echo "no ${theirs}"; exit 9; fi; sleep 0.1; done`,
        `echo ${mine} saw ${theirs}`,
      ];

      it('runs two steps of a build at the same time', async () => {
        await withBuild(async (h) => {
          const [a, b] = await Promise.all([runIn(h, handshake('a', 'b')), runIn(h, handshake('b', 'a'))]);
          expect(a.exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(b.exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(a.sink.out()).toEqual(['a saw b']);
          expect(b.sink.out()).toEqual(['b saw a']);
        });
      });
    });

    describe('cancel', () => {
      it('kills a running step when the signal aborts and resolves aborted', async () => {
        await withBuild(async (h) => {
          expect((await abortAfterStart(h, ['sleep 300'])).kind).toBe('aborted');
        });
      });

      it('kills a step that ignores SIGTERM (grace, then force)', async () => {
        await withBuild(async (h) => {
          expect((await abortAfterStart(h, ["trap '' TERM", 'sleep 300'])).kind).toBe('aborted');
        });
      });

      it('does not start a step whose signal is already aborted', async () => {
        await withBuild(async (h) => {
          const sink = new RecordingSink();
          const exit = await within(
            LONG,
            'runStep',
            ex.runStep(h, stepSpec(['echo ran > ran.txt', 'echo ran']), sink, AbortSignal.abort()),
          );
          expect(exit.kind).toBe('aborted');
          expect(sink.lines).toEqual([]);
          expect((await runIn(h, ['test ! -f ran.txt'])).exit).toEqual({ kind: 'exited', exitCode: 0 });
        });
      });

      it('takes background children down with an aborted step', async () => {
        await withBuild(async (h) => {
          // Abort only once the child's pid is written: on a busy machine "started" can come
          // long before the shell gets to the next line.
          const exit = await abortAfterStart(
            h,
            ['sleep 300 &', 'echo $! > bg.pid', 'echo pid-written', 'sleep 300'],
            'pid-written',
          );
          expect(exit.kind).toBe('aborted');
          if (target.hostProcesses) {
            const pid = await readPid(h, 'bg.pid');
            await eventually(10_000, `background child ${pid} gone`, async () => !(await isAlive(pid)));
          }
        });
      });

      it('finishes a step that leaves a background child holding its output, and ends the child', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, ['sleep 300 &', 'echo $! > bg.pid', 'echo done']);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out()).toEqual(['done']);
          if (target.hostProcesses) {
            const pid = await readPid(h, 'bg.pid');
            await eventually(10_000, `background child ${pid} gone`, async () => !(await isAlive(pid)));
          }
        });
      });
    });

    describe('output', () => {
      it('delivers 100k lines, all, in order', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, ['seq 1 100000']);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          const out = sink.out();
          expect(out.length).toBe(100_000);
          const wrong = out.findIndex((text, i) => text !== String(i + 1));
          expect(wrong === -1 ? 'all in order' : `line ${wrong + 1} is ${JSON.stringify(out[wrong])}`).toBe(
            'all in order',
          );
        });
      });

      it('splits a 200 KB line without newline at the line cap and flushes it', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, ["printf '%0200000d' 0"]);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          const out = sink.out();
          expect(out.length).toBeGreaterThanOrEqual(Math.ceil(200_000 / MAX_LINE_LENGTH));
          expect(out.every((l) => l.length <= MAX_LINE_LENGTH)).toBe(true);
          expect(out.join('')).toBe('0'.repeat(200_000));
        });
      });

      it('keeps unicode intact, also where pipe reads cut through characters', async () => {
        const text = 'héllo wörld — 日本語 한국어 🚀✨ 👩‍👩‍👧';
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, [
            `printf '%s\\n' '${text}'`,
            // One long write of 4-byte and 3-byte characters: reads end mid-character somewhere.
            's=\'日本語🚀\'; i=0; while test $i -lt 12; do s="$s$s"; i=$((i+1)); done; printf \'%s\\n%s\\n\' "$s" "$s"',
            'i=0; while test $i -lt 3000; do echo "行 🚀 $i"; i=$((i+1)); done',
          ]);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          const out = sink.out();
          const big = '日本語🚀'.repeat(4096);
          expect(out.slice(0, 3)).toEqual([text, big, big]);
          expect(out.slice(3)).toEqual(Array.from({ length: 3000 }, (_, i) => `行 🚀 ${i}`));
        });
      });

      it('survives binary garbage and the step still exits 0', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, ['head -c 100000 /dev/urandom', 'echo', 'echo done']);
          expect(exit).toEqual({ kind: 'exited', exitCode: 0 });
          expect(sink.out().at(-1)).toBe('done');
          expect(sink.lines.every((l) => l.text.length <= MAX_LINE_LENGTH)).toBe(true);
        });
      });

      it('marks stderr lines as stderr and keeps each stream in order', async () => {
        await withBuild(async (h) => {
          const { sink } = await runIn(h, ['echo out1', 'echo err1 >&2', 'echo out2', 'echo err2 >&2']);
          expect(sink.out()).toEqual(['out1', 'out2']);
          expect(sink.err()).toEqual(['err1', 'err2']);
        });
      });

      it('flushes a partial last line, keeps empty lines, strips \\r\\n', async () => {
        await withBuild(async (h) => {
          const { sink } = await runIn(h, ["printf 'a\\r\\n\\nb\\n'", "printf 'last without newline'"]);
          expect(sink.out()).toEqual(['a', '', 'b', 'last without newline']);
        });
      });

      it('delivers the output of a failing step', async () => {
        await withBuild(async (h) => {
          const { exit, sink } = await runIn(h, ['echo before', 'echo why >&2', 'exit 7']);
          expect(exit).toEqual({ kind: 'exited', exitCode: 7 });
          expect(sink.out()).toEqual(['before']);
          expect(sink.err()).toEqual(['why']);
        });
      });
    });

    describe('lifecycle and resources', () => {
      it('lists a prepared build, and destroy removes the workspace and its resources', async () => {
        const h = await ex.prepare(buildSpec());
        try {
          await runIn(h, ['echo x > file.txt']);
          expect((await ex.listResources()).some((r) => r.buildId === h.buildId)).toBe(true);
        } finally {
          await ex.destroy(h);
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
        const running = ex.runStep(h2, stepSpec(['sleep 300']), new RecordingSink(), ctl.signal);
        ctl.abort();
        expect((await within(CANCEL_BOUND, 'aborted step', running)).kind).toBe('aborted');
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
