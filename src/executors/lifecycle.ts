import {
  OUTPUT_START,
  type BuildHandle,
  type Executor,
  type OutputPosition,
  type OutputSink,
  type StepExit,
  type StepRef,
  type StepSpec,
} from './types.js';

/** What a caller of {@link runStep} hears besides the output. */
export interface StepRunHooks {
  /** Progress of the pending phase (pulling, scheduling): not part of the step's timeout. */
  pending?(text: string): void;
  /**
   * The step runs: store `ref` durably before any of its output is read, so that a successor
   * process can follow it. A throw stops the step and ends it as an `internal` error.
   */
  started?(ref: StepRef): Promise<void>;
  /**
   * The step ended and its whole output was delivered: store `exit` durably. Awaited before
   * the executor releases the step (its exit code and output go with it), so that a successor
   * of a process that dies in between still knows how the step ended. A throw is ignored: the
   * step is released anyway (this process knows the exit; only a crash right now would lose it).
   */
  ended?: (exit: StepExit) => Promise<void>;
}

/**
 * Runs one attempt of a step start to end over the split lifecycle: start (pending phase),
 * `hooks.started` with the durable ref, then {@link followStep} from the first line. Never
 * rejects; the step's own failure is a result.
 *
 * `signal` kills the step (cancel, timeout); `detach` stops following it and leaves it running
 * (the server is stopping and its successor will re-attach): then the result is `undefined`.
 * A detach during the pending phase ends that phase too (the start is aborted, so the
 * successor finds no step and starts this attempt itself).
 */
export async function runStep(
  executor: Executor,
  handle: BuildHandle,
  step: StepSpec,
  sink: OutputSink,
  signal: AbortSignal,
  hooks: StepRunHooks = {},
  detach?: AbortSignal,
): Promise<StepExit | undefined> {
  if (signal.aborted) return { kind: 'aborted' };
  if (detach?.aborted) return undefined;
  let ref: StepRef;
  try {
    const start = await executor.startStep(
      handle,
      step,
      detach ? AbortSignal.any([signal, detach]) : signal,
      hooks.pending ? { pending: (text) => hooks.pending?.(text) } : {},
    );
    if ('exit' in start) return detach?.aborted && !signal.aborted ? undefined : start.exit;
    ref = start.ref;
  } catch (error) {
    return { kind: 'error', code: 'internal', message: `could not start the step: ${errorText(error)}` };
  }
  try {
    await hooks.started?.(ref);
  } catch (error) {
    await executor.stopStep(handle, ref).catch(() => undefined);
    await executor.releaseStep(handle, ref).catch(() => undefined);
    return {
      kind: 'error',
      code: 'internal',
      message: `could not record the started step: ${errorText(error)}`,
    };
  }
  return followStep(executor, handle, ref, OUTPUT_START, sink, signal, detach, hooks.ended);
}

/**
 * Follows a started step (one this process started, or one it re-attached to after a restart)
 * to its end: tails its output from `from` while waiting for its exit, and releases it once
 * both are done and `ended` has stored the exit. The whole output is delivered before this
 * resolves.
 *
 * `signal` kills the step: it is stopped and its exit is `aborted` (with the code it died
 * with). `detach` only stops following: the step keeps running, nothing is released, and the
 * result is `undefined`.
 */
export async function followStep(
  executor: Executor,
  handle: BuildHandle,
  ref: StepRef,
  from: OutputPosition,
  sink: OutputSink,
  signal: AbortSignal,
  detach?: AbortSignal,
  ended?: StepRunHooks['ended'],
): Promise<StepExit | undefined> {
  const following = new AbortController();
  const stopFollowing = () => following.abort();
  detach?.addEventListener('abort', stopFollowing, { once: true });
  if (detach?.aborted) following.abort();
  let stopping: Promise<void> | undefined;
  const kill = () => {
    stopping ??= executor.stopStep(handle, ref).catch(() => undefined);
  };
  signal.addEventListener('abort', kill, { once: true });
  if (signal.aborted) kill();
  try {
    const tail = executor.tailStep(handle, ref, from, sink, following.signal).catch(() => undefined);
    let exit: StepExit | undefined;
    try {
      exit = await executor.waitStep(handle, ref, following.signal);
    } catch (error) {
      exit = { kind: 'error', code: 'internal', message: `waiting for the step failed: ${errorText(error)}` };
    }
    await tail;
    await stopping;
    if (exit === undefined || detach?.aborted) return undefined;
    if (signal.aborted && exit.kind !== 'error') {
      exit = { kind: 'aborted', ...(exit.exitCode !== undefined ? { exitCode: exit.exitCode } : {}) };
    }
    try {
      await ended?.(exit);
    } catch {
      // See StepRunHooks.ended: the release goes ahead.
    }
    await executor.releaseStep(handle, ref).catch(() => undefined);
    return exit;
  } finally {
    signal.removeEventListener('abort', kill);
    detach?.removeEventListener('abort', stopFollowing);
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
