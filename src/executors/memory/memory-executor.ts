import type {
  BuildHandle,
  BuildSpec,
  Executor,
  ExecutorResource,
  OutputPosition,
  OutputSink,
  OutputStream,
  StepEvents,
  StepExit,
  StepRef,
  StepSpec,
  StepStart,
} from '../types.js';
import { ExecutorError } from '../types.js';
import { LineSplitter } from '../lines.js';

/** One started step of the memory engine: it lives on when the process that started it "dies". */
interface MemoryStep {
  ref: StepRef;
  output: Array<{ stream: OutputStream; text: string; continues: boolean }>;
  exit: StepExit | undefined;
  /** The soft stop (SIGTERM): ends the program unless it ran `ignore-term`. */
  readonly term: AbortController;
  /** The forced stop (SIGKILL) after the grace: ends it always. */
  readonly kill: AbortController;
  /** Woken on every new line and on the exit. */
  readonly listeners: Set<() => void>;
}

/**
 * An executor that runs nothing outside the process: each command of a step is a tiny
 * instruction, so orchestrator and scheduler tests are exact and fast. Its steps live in the
 * executor object, not in the caller: a test that drops a scheduler and builds a new one over
 * the same MemoryExecutor sees what a server restart sees with a real engine.
 *
 *   echo TEXT      print TEXT on stdout        warn TEXT   print TEXT on stderr
 *   exit N         end the step with code N    sleep MS    wait MS milliseconds (abortable)
 *   hang           wait until aborted          error MSG   the executor cannot run it
 *   set FLAG       raise a named flag          await FLAG  wait until FLAG is raised
 *   flaky N        fail with code 1 the first N attempts of this step, then go on
 *   oom            die as killed for memory (exit 137, `oom_killed`)
 *   count N [MS]   print 1..N on stdout, one a line, MS milliseconds apart
 *   env NAME       print the value of NAME (secrets win over env; empty when unset)
 *   raw TEXT       write TEXT as is (no newline added; `\n`, `\r` in it are real bytes)
 *   long N         write N zeros without a newline (cut into pieces like real output)
 *   append F TEXT  add the line TEXT to the build's workspace file F
 *   cat F          print the lines of workspace file F (exit 1 when it does not exist)
 *   await-file F   wait until workspace file F exists
 *   pwd            print the workspace path
 *   ignore-term    from here on, a stop's soft kill is ignored: only the force after the grace ends it
 *
 * Output goes through the same line splitter as real executors' (pieces of `MAX_LINE_LENGTH`,
 * a partial last line flushed at the end). A stopped step exits 143 (soft) or 137 (forced).
 *
 * Images: `pull-fail` cannot be pulled (`image_pull`); `pending:FLAG` stays in the pending
 * phase until FLAG is raised.
 */
export class MemoryExecutor implements Executor {
  readonly name = 'memory' as const;
  readonly started: string[] = [];
  readonly finished: string[] = [];
  readonly prepared: BuildSpec[] = [];
  readonly resumed: string[] = [];
  readonly destroyed: string[] = [];
  /** Highest number of steps that were running at the same time. */
  maxConcurrent = 0;
  private running = 0;
  private nextId = 1;
  private readonly flags = new Set<string>();
  private readonly flagWaiters = new Map<string, Array<() => void>>();
  private readonly live = new Map<string, ExecutorResource>();
  private readonly steps = new Map<string, MemoryStep>();
  /** Workspace files by build: lines by file name. */
  private readonly files = new Map<string, Map<string, string[]>>();
  /** Woken when a workspace file is created. */
  private readonly fileWaiters = new Set<() => void>();

  constructor(
    private readonly options: {
      failPrepare?: string;
      /** How long a stopped step that ignores the soft kill gets before the force; default 200 ms. */
      stopGraceMs?: number;
    } = {},
  ) {}

  workspacePath(buildId: string): string {
    return `/memory/${buildId}`;
  }

  prepare(build: BuildSpec): Promise<BuildHandle> {
    this.prepared.push(build);
    if (this.options.failPrepare) {
      return Promise.reject(new ExecutorError('engine_unavailable', this.options.failPrepare));
    }
    this.live.set(build.buildId, {
      kind: 'workspace',
      id: build.buildId,
      buildId: build.buildId,
      running: false,
    });
    return Promise.resolve(this.handleOf(build.buildId));
  }

  resumeBuild(build: BuildSpec): Promise<BuildHandle> {
    if (!this.live.has(build.buildId)) {
      return Promise.reject(new ExecutorError('gone', `the workspace of build ${build.buildId} is gone`));
    }
    this.resumed.push(build.buildId);
    return Promise.resolve(this.handleOf(build.buildId));
  }

  async startStep(
    handle: BuildHandle,
    step: StepSpec,
    signal: AbortSignal,
    events: StepEvents = {},
  ): Promise<StepStart> {
    const existing = await this.findStep(handle, step.key, step.attempt);
    if (existing) return { ref: existing };
    if (!this.live.has(handle.buildId)) {
      return {
        exit: { kind: 'error', code: 'workspace', message: `build ${handle.buildId} is not prepared` },
      };
    }
    if (step.image === 'pull-fail') {
      return { exit: { kind: 'error', code: 'image_pull', message: 'image "pull-fail" cannot be pulled' } };
    }
    const pendingFlag = step.image?.startsWith('pending:') ? step.image.slice('pending:'.length) : undefined;
    if (pendingFlag !== undefined) {
      events.pending?.(`waiting for ${pendingFlag}`);
      if (!(await this.waitFlag(pendingFlag, signal))) return { exit: { kind: 'aborted' } };
    }
    if (signal.aborted) return { exit: { kind: 'aborted' } };
    const ref: StepRef = {
      executor: 'memory',
      id: `mem-${this.nextId++}`,
      buildId: handle.buildId,
      key: step.key,
      attempt: step.attempt,
      startedAt: Date.now(),
    };
    const record: MemoryStep = {
      ref,
      output: [],
      exit: undefined,
      term: new AbortController(),
      kill: new AbortController(),
      listeners: new Set(),
    };
    this.steps.set(ref.id, record);
    this.live.set(ref.id, {
      kind: 'process',
      id: ref.id,
      buildId: handle.buildId,
      step: step.key,
      running: true,
    });
    this.started.push(step.key);
    void this.execute(record, step);
    return { ref };
  }

  findStep(handle: BuildHandle, key: string, attempt: number): Promise<StepRef | undefined> {
    for (const step of this.steps.values()) {
      const ref = step.ref;
      if (ref.buildId === handle.buildId && ref.key === key && ref.attempt === attempt) {
        return Promise.resolve(ref);
      }
    }
    return Promise.resolve(undefined);
  }

  async tailStep(
    handle: BuildHandle,
    ref: StepRef,
    from: OutputPosition,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<void> {
    const step = this.adopt(handle, ref);
    if (!step) return;
    const seen = { stdout: 0, stderr: 0 };
    let index = 0;
    for (;;) {
      while (index < step.output.length) {
        const line = step.output[index++]!;
        seen[line.stream] += 1;
        if (seen[line.stream] > from[line.stream]) sink.line(line.stream, line.text, line.continues);
      }
      if (step.exit !== undefined || signal.aborted || !this.steps.has(ref.id)) return;
      await this.nextChange(step, signal);
    }
  }

  async waitStep(handle: BuildHandle, ref: StepRef, signal: AbortSignal): Promise<StepExit | undefined> {
    const step = this.adopt(handle, ref);
    if (!step) return { kind: 'error', code: 'gone', message: `step ${ref.key} (${ref.id}) is gone` };
    while (step.exit === undefined) {
      if (signal.aborted) return undefined;
      if (!this.steps.has(ref.id))
        return { kind: 'error', code: 'gone', message: `step ${ref.key} (${ref.id}) is gone` };
      await this.nextChange(step, signal);
    }
    return step.exit;
  }

  async stopStep(handle: BuildHandle, ref: StepRef): Promise<void> {
    const step = this.adopt(handle, ref);
    if (!step || step.exit !== undefined) return;
    step.term.abort();
    const grace = setTimeout(() => step.kill.abort(), this.options.stopGraceMs ?? 200);
    try {
      while (step.exit === undefined && this.steps.has(ref.id)) await this.nextChange(step);
    } finally {
      clearTimeout(grace);
    }
  }

  releaseStep(handle: BuildHandle, ref: StepRef): Promise<void> {
    if (this.adopt(handle, ref)) {
      this.steps.delete(ref.id);
      this.live.delete(ref.id);
    }
    return Promise.resolve();
  }

  destroy(handle: BuildHandle): Promise<void> {
    this.destroyed.push(handle.buildId);
    this.removeAll(handle.buildId);
    return Promise.resolve();
  }

  listResources(): Promise<ExecutorResource[]> {
    return Promise.resolve([...this.live.values()]);
  }

  removeResources(buildId: string): Promise<void> {
    this.removeAll(buildId);
    return Promise.resolve();
  }

  /** Raises a flag from outside, e.g. to release steps waiting with `await FLAG`. */
  raise(flag: string): void {
    this.flags.add(flag);
    for (const wake of this.flagWaiters.get(flag) ?? []) wake();
    this.flagWaiters.delete(flag);
  }

  /** Makes steps disappear as an engine reset would (all of them, or those of one step key). */
  vanish(key?: string): void {
    for (const [id, step] of this.steps) {
      if (key !== undefined && step.ref.key !== key) continue;
      step.term.abort();
      step.kill.abort();
      this.steps.delete(id);
      this.live.delete(id);
      this.wake(step);
    }
  }

  /** The lines a step printed so far, for tests. */
  outputOf(key: string): string[] {
    return [...this.steps.values()]
      .filter((s) => s.ref.key === key)
      .flatMap((s) => s.output.map((l) => l.text));
  }

  private handleOf(buildId: string): BuildHandle {
    return { buildId, workspace: this.workspacePath(buildId) };
  }

  /** The step a ref names, only if it really is that build's step and attempt. */
  private adopt(handle: BuildHandle, ref: StepRef): MemoryStep | undefined {
    const step = this.steps.get(ref.id);
    if (!step) return undefined;
    const own = step.ref;
    const same =
      own.buildId === handle.buildId &&
      own.buildId === ref.buildId &&
      own.key === ref.key &&
      own.attempt === ref.attempt;
    return same ? step : undefined;
  }

  private removeAll(buildId: string): void {
    for (const [id, step] of this.steps) {
      if (step.ref.buildId !== buildId) continue;
      step.term.abort();
      step.kill.abort();
      this.steps.delete(id);
      this.wake(step);
    }
    for (const [id, resource] of this.live) if (resource.buildId === buildId) this.live.delete(id);
    this.files.delete(buildId);
  }

  private async execute(record: MemoryStep, step: StepSpec): Promise<void> {
    this.running += 1;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running);
    try {
      record.exit = await this.program(record, step);
    } catch (error) {
      record.exit = {
        kind: 'error',
        code: 'internal',
        message: error instanceof Error ? error.message : String(error),
      };
    } finally {
      this.running -= 1;
      this.finished.push(step.key);
      const resource = this.live.get(record.ref.id);
      if (resource) resource.running = false;
      this.wake(record);
    }
  }

  private async program(record: MemoryStep, step: StepSpec): Promise<StepExit> {
    // Until `ignore-term`, the soft stop ends the program as the force does.
    let signal = AbortSignal.any([record.term.signal, record.kill.signal]);
    const splitters = {
      stdout: this.splitter(record, 'stdout'),
      stderr: this.splitter(record, 'stderr'),
    };
    const write = (stream: OutputStream, text: string) => {
      splitters[stream].write(Buffer.from(text));
      this.wake(record);
    };
    const killed = (): StepExit => ({ kind: 'exited', exitCode: record.kill.signal.aborted ? 137 : 143 });
    const files = this.filesOf(record.ref.buildId);
    try {
      for (const command of step.commands) {
        if (signal.aborted) return killed();
        const [op = '', ...rest] = command.split(' ');
        const arg = rest.join(' ');
        switch (op) {
          case 'echo':
            write('stdout', `${arg}\n`);
            break;
          case 'warn':
            write('stderr', `${arg}\n`);
            break;
          case 'raw':
            write('stdout', arg);
            break;
          case 'long':
            write('stdout', '0'.repeat(Number(arg)));
            break;
          case 'count': {
            const [n = '0', ms = '0'] = rest;
            for (let i = 1; i <= Number(n); i++) {
              if (i > 1 && Number(ms) > 0 && !(await this.wait(signal, Number(ms)))) return killed();
              if (signal.aborted) return killed();
              write('stdout', `${i}\n`);
            }
            break;
          }
          case 'env':
            write('stdout', `${step.secrets[arg] ?? step.env[arg] ?? ''}\n`);
            break;
          case 'pwd':
            write('stdout', `${this.workspacePath(record.ref.buildId)}\n`);
            break;
          case 'append': {
            const [file = '', ...words] = rest;
            const existed = files.has(file);
            files.set(file, [...(files.get(file) ?? []), words.join(' ')]);
            if (!existed) for (const wake of [...this.fileWaiters]) wake();
            break;
          }
          case 'cat': {
            const lines = files.get(arg);
            if (!lines) {
              write('stderr', `cat: ${arg}: No such file or directory\n`);
              return { kind: 'exited', exitCode: 1 };
            }
            for (const line of lines) write('stdout', `${line}\n`);
            break;
          }
          case 'await-file':
            if (!(await this.waitFile(files, arg, signal))) return killed();
            break;
          case 'ignore-term':
            signal = record.kill.signal;
            break;
          case 'exit':
            return { kind: 'exited', exitCode: Number(arg) };
          case 'error':
            return { kind: 'error', code: 'internal', message: arg };
          case 'oom':
            return { kind: 'error', code: 'oom_killed', message: 'killed: out of memory', exitCode: 137 };
          case 'flaky':
            if (step.attempt <= Number(arg)) return { kind: 'exited', exitCode: 1 };
            break;
          case 'sleep':
            if (!(await this.wait(signal, Number(arg)))) return killed();
            break;
          case 'hang':
            await this.wait(signal, Infinity);
            return killed();
          case 'set':
            this.raise(arg);
            break;
          case 'await':
            if (!(await this.waitFlag(arg, signal))) return killed();
            break;
          default:
            throw new Error(`memory executor: unknown instruction "${command}"`);
        }
      }
      return { kind: 'exited', exitCode: 0 };
    } finally {
      // A partial last line is output too, as a real stream's end flushes it.
      splitters.stdout.flush();
      splitters.stderr.flush();
    }
  }

  private splitter(record: MemoryStep, stream: OutputStream): LineSplitter {
    return new LineSplitter((text, continues) => {
      record.output.push({ stream, text, continues });
    });
  }

  private filesOf(buildId: string): Map<string, string[]> {
    let files = this.files.get(buildId);
    if (!files) {
      files = new Map();
      this.files.set(buildId, files);
    }
    return files;
  }

  /** Resolves true once `file` exists in `files`, or false as soon as the signal aborts. */
  private waitFile(files: Map<string, string[]>, file: string, signal: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const check = () => {
        if (!files.has(file) && !signal.aborted) return;
        this.fileWaiters.delete(check);
        signal.removeEventListener('abort', check);
        resolve(files.has(file));
      };
      this.fileWaiters.add(check);
      signal.addEventListener('abort', check, { once: true });
      check();
    });
  }

  private wake(step: MemoryStep): void {
    const listeners = [...step.listeners];
    step.listeners.clear();
    for (const listener of listeners) listener();
  }

  /** Resolves on the step's next line or exit (or when `signal` aborts). */
  private nextChange(step: MemoryStep, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        signal?.removeEventListener('abort', done);
        step.listeners.delete(done);
        resolve();
      };
      step.listeners.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  private waitFlag(flag: string, signal: AbortSignal): Promise<boolean> {
    if (this.flags.has(flag)) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = () => resolve(false);
      signal.addEventListener('abort', onAbort, { once: true });
      const waiters = this.flagWaiters.get(flag) ?? [];
      waiters.push(() => {
        signal.removeEventListener('abort', onAbort);
        resolve(true);
      });
      this.flagWaiters.set(flag, waiters);
    });
  }

  /** Resolves true after `ms`, or false as soon as the signal aborts. */
  private wait(signal: AbortSignal, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => done(true), ms) : undefined;
      const onAbort = () => done(false);
      const done = (value: boolean) => {
        if (timer) clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      };
      if (signal.aborted) done(false);
      else signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
