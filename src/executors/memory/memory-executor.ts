import type {
  BuildHandle,
  BuildSpec,
  Executor,
  ExecutorResource,
  OutputSink,
  StepExit,
  StepSpec,
} from '../types.js';
import { ExecutorError } from '../types.js';

/**
 * An executor that runs nothing outside the process: each command of a step is a tiny
 * instruction, so orchestrator and scheduler tests are exact and fast.
 *
 *   echo TEXT      print TEXT on stdout        warn TEXT   print TEXT on stderr
 *   exit N         end the step with code N    sleep MS    wait MS milliseconds (abortable)
 *   hang           wait until aborted          error MSG   the executor cannot run it
 *   set FLAG       raise a named flag          await FLAG  wait until FLAG is raised
 *   flaky N        fail with code 1 the first N attempts of this step, then go on
 */
export class MemoryExecutor implements Executor {
  readonly name = 'memory' as const;
  readonly started: string[] = [];
  readonly finished: string[] = [];
  readonly prepared: BuildSpec[] = [];
  readonly destroyed: string[] = [];
  /** Highest number of steps that were running at the same time. */
  maxConcurrent = 0;
  private running = 0;
  private readonly flags = new Set<string>();
  private readonly flagWaiters = new Map<string, Array<() => void>>();
  private readonly live = new Map<string, ExecutorResource>();

  constructor(private readonly options: { failPrepare?: string } = {}) {}

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
    return Promise.resolve({ buildId: build.buildId, workspace: this.workspacePath(build.buildId) });
  }

  async runStep(
    _handle: BuildHandle,
    step: StepSpec,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<StepExit> {
    if (signal.aborted) return { kind: 'aborted' };
    this.started.push(step.key);
    this.running += 1;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.running);
    try {
      for (const command of step.commands) {
        const [op = '', ...rest] = command.split(' ');
        const arg = rest.join(' ');
        switch (op) {
          case 'echo':
            sink.line('stdout', arg);
            break;
          case 'warn':
            sink.line('stderr', arg);
            break;
          case 'exit':
            return { kind: 'exited', exitCode: Number(arg) };
          case 'error':
            return { kind: 'error', message: arg };
          case 'flaky':
            if (step.attempt <= Number(arg)) return { kind: 'exited', exitCode: 1 };
            break;
          case 'sleep':
            if (!(await this.wait(signal, Number(arg)))) return { kind: 'aborted', exitCode: 143 };
            break;
          case 'hang':
            await this.wait(signal, Infinity);
            return { kind: 'aborted', exitCode: 143 };
          case 'set':
            this.raise(arg);
            break;
          case 'await':
            if (!(await this.waitFlag(arg, signal))) return { kind: 'aborted', exitCode: 143 };
            break;
          default:
            throw new Error(`memory executor: unknown instruction "${command}"`);
        }
      }
      return { kind: 'exited', exitCode: 0 };
    } finally {
      this.running -= 1;
      this.finished.push(step.key);
    }
  }

  destroy(handle: BuildHandle): Promise<void> {
    this.destroyed.push(handle.buildId);
    this.live.delete(handle.buildId);
    return Promise.resolve();
  }

  listResources(): Promise<ExecutorResource[]> {
    return Promise.resolve([...this.live.values()]);
  }

  removeResources(buildId: string): Promise<void> {
    this.live.delete(buildId);
    return Promise.resolve();
  }

  /** Raises a flag from outside, e.g. to release steps waiting with `await FLAG`. */
  raise(flag: string): void {
    this.flags.add(flag);
    for (const wake of this.flagWaiters.get(flag) ?? []) wake();
    this.flagWaiters.delete(flag);
  }

  private waitFlag(flag: string, signal: AbortSignal): Promise<boolean> {
    if (this.flags.has(flag)) return Promise.resolve(true);
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
