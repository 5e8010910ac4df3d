import { followStep, runStep as runAttemptOf } from '../executors/lifecycle.js';
import {
  OUTPUT_START,
  type BuildHandle,
  type Executor,
  type StepExit,
  type StepRef,
  type StepSpec,
} from '../executors/types.js';
import { formatDuration } from '../contract/duration.js';
import { maskingSink } from './masker.js';
import type { StepPlan } from '../pipeline/types.js';
import type {
  AttemptInfo,
  BuildObserver,
  Reason,
  RunOptions,
  StepAdditions,
  StepResult,
  StepResume,
} from './types.js';

/** Why a running step's signal was aborted. */
export type AbortCause = 'cancelled' | 'timeout' | 'fail_fast';

export interface StepRunDeps {
  executor: Executor;
  handle: BuildHandle;
  stage: string;
  observer: BuildObserver;
  mask: (text: string) => string;
  clock: () => number;
  /** Aborts when the whole build is cancelled. */
  buildSignal: AbortSignal;
  /** Aborts when a sibling failed (fail-fast). */
  stageSignal: AbortSignal;
  /** Environment entries filled from secrets: `StepSpec.secrets`, apart from the step's env. */
  secretEnv: Record<string, string>;
  /** Aborts when the run detaches (`RunOptions.detach`). */
  detach?: AbortSignal;
  onStepRunning?: RunOptions['onStepRunning'];
  onStepExited?: RunOptions['onStepExited'];
  afterStep?: RunOptions['afterStep'];
  afterAttempt?: RunOptions['afterAttempt'];
  beforeStep?: RunOptions['beforeStep'];
}

/** A step an earlier process started: the attempt it was running. */
export type RunningStep = Extract<StepResume, { kind: 'running' }>;

type AttemptEnd = { status: StepResult['status']; exitCode: number | null; reason?: Reason };

/**
 * Runs one step with its retries and timeout; never throws. With `resume`, the attempt an
 * earlier process started is followed (or started again when it was never found), without a
 * second `stepStarted`, and the retries go on after it. Resolves `undefined` when the run
 * detached: the step is left as its last `stepStarted` says (a retry that was due is
 * announced with `stepStarted` and left for the successor to start), with no `stepFinished`.
 */
export async function runStep(
  step: StepPlan,
  deps: StepRunDeps,
  resume?: RunningStep,
): Promise<StepResult | undefined> {
  const started = resume?.startedAt ?? deps.clock();
  const maxAttempts = step.retries + 1;
  let attempts = resume ? resume.attempt - 1 : 0;
  let last: AttemptEnd = resume?.previous
    ? { status: 'failure', ...resume.previous }
    : { status: 'skipped', exitCode: null };
  let resuming = resume;
  let additions: StepAdditions | undefined;
  while (resuming !== undefined || attempts < maxAttempts) {
    if (!resuming) {
      const before = abortedCause(deps);
      if (before) {
        last = attempts === 0 ? skippedBecause(before) : last;
        break;
      }
    }
    const info: AttemptInfo = {
      maxAttempts,
      ...(attempts > 0 && {
        previous: { exitCode: last.exitCode, ...(last.reason && { reason: last.reason }) },
      }),
    };
    attempts += 1;
    if (!resuming) {
      deps.observer.stepStarted?.(deps.stage, step.name, attempts, info);
      // Announced, not started: the successor finds no ref and starts this attempt.
      if (deps.detach?.aborted) return undefined;
      // Before the first attempt only: a retry finds what the first one left (a restored cache).
      if (attempts === 1 && deps.beforeStep) {
        additions =
          (await deps.beforeStep(deps.stage, step, deps.handle, deps.buildSignal).catch(() => undefined)) ??
          undefined;
      }
    }
    const end = await runAttempt(step, attempts, deps, resuming, additions);
    resuming = undefined;
    if (end === undefined) return undefined;
    last = end;
    if (last.status !== 'failure' || abortedCause(deps)) break;
  }
  const result: StepResult = {
    name: step.name,
    status: last.status,
    exitCode: last.exitCode,
    durationMs: attempts === 0 ? 0 : deps.clock() - started,
    attempts,
    allowFailure: step.allowFailure,
    ...(last.reason ? { reason: last.reason } : {}),
  };
  deps.observer.stepFinished?.(deps.stage, step.name, result);
  return result;
}

function abortedCause(deps: StepRunDeps): AbortCause | undefined {
  if (deps.buildSignal.aborted) return 'cancelled';
  if (deps.stageSignal.aborted) return 'fail_fast';
  return undefined;
}

function skippedBecause(cause: AbortCause): { status: 'skipped'; exitCode: null; reason: Reason } {
  return cause === 'cancelled'
    ? {
        status: 'skipped',
        exitCode: null,
        reason: { code: 'cancelled', message: 'skipped: the build was cancelled' },
      }
    : {
        status: 'skipped',
        exitCode: null,
        reason: { code: 'fail_fast', message: 'skipped: another step of the stage failed' },
      };
}

/**
 * One attempt: started here (pending phase, then `onStepRunning` with its ref, then its output),
 * or followed from where an earlier process left it. The timeout counts from the moment it runs
 * (its ref's `startedAt` on resume), never the pending phase. `undefined`: detached.
 */
async function runAttempt(
  step: StepPlan,
  attempt: number,
  deps: StepRunDeps,
  resume: RunningStep | undefined,
  additions: StepAdditions | undefined,
): Promise<AttemptEnd | undefined> {
  const controller = new AbortController();
  const abort = (cause: AbortCause) => {
    if (!controller.signal.aborted) controller.abort(cause);
  };
  const onBuildAbort = () => abort('cancelled');
  const onStageAbort = () => abort('fail_fast');
  deps.buildSignal.addEventListener('abort', onBuildAbort);
  deps.stageSignal.addEventListener('abort', onStageAbort);
  // A followed attempt is not checked before it starts: it runs already and must be stopped.
  if (deps.buildSignal.aborted) onBuildAbort();
  else if (deps.stageSignal.aborted) onStageAbort();
  let timer: NodeJS.Timeout | undefined;
  const startTimer = (runningSince?: number) => {
    if (step.timeoutMs === undefined || timer !== undefined) return;
    const left = runningSince === undefined ? step.timeoutMs : step.timeoutMs - (deps.clock() - runningSince);
    timer = setTimeout(() => abort('timeout'), Math.max(0, left));
  };

  const key = `${deps.stage}/${step.name}`;
  let ref = resume?.ref;
  try {
    if (resume && !ref) ref = await deps.executor.findStep(deps.handle, key, attempt);
  } catch {
    // Not found is the same as never started: startStep is idempotent per key and attempt.
  }
  // A restarted attempt's output starts at its first line; a found one goes on where it was.
  const from = ref ? (resume?.position ?? OUTPUT_START) : OUTPUT_START;
  // Whole lines are masked, so a value cut by the piece cap is still found.
  const sink = maskingSink(
    deps.mask,
    (stream, text, pieces) => {
      deps.observer.stepLog?.(deps.stage, step.name, {
        stream,
        text,
        time: deps.clock(),
        position: { attempt, stream, pieces },
      });
    },
    from,
  );
  // Stored before the executor releases the attempt: see RunOptions.onStepExited.
  const ended = async (end: StepExit) => {
    sink.end();
    await deps.onStepExited?.(deps.stage, step.name, attempt, end);
  };
  let exit: StepExit | undefined;
  try {
    if (ref && resume?.exit) {
      // It ended before its process died, output and exit stored: what is left is the release.
      await deps.executor.releaseStep(deps.handle, ref).catch(() => undefined);
      exit = resume.exit;
    } else if (ref) {
      const storeFound = resume?.ref === undefined ? recordRef(deps, step, attempt, ref) : undefined;
      exit = await storeFound;
      if (exit === undefined) {
        startTimer(resume?.ref ? resume.startedAt : ref.startedAt);
        exit = await followStep(
          deps.executor,
          deps.handle,
          ref,
          from,
          sink,
          controller.signal,
          deps.detach,
          ended,
        );
      }
    } else {
      const spec: StepSpec = {
        key,
        stage: deps.stage,
        step: step.name,
        ...(step.image !== undefined ? { image: step.image } : {}),
        commands: step.commands,
        env: step.env,
        secrets: deps.secretEnv,
        attempt,
        ...additions,
      };
      exit = await runAttemptOf(
        deps.executor,
        deps.handle,
        spec,
        sink,
        controller.signal,
        {
          pending: (text) => deps.observer.stepPending?.(deps.stage, step.name, text),
          started: async (started) => {
            await deps.onStepRunning?.(deps.stage, step.name, attempt, started);
            startTimer();
          },
          ended,
        },
        deps.detach,
      );
    }
    // Detached: what the sink holds is the start of a line the successor reads again whole.
    if (exit === undefined) return undefined;
    sink.end();
    if (deps.afterAttempt && exit.kind === 'exited' && !deps.buildSignal.aborted) {
      await deps
        .afterAttempt(deps.stage, step, attempt, deps.handle, exit, deps.buildSignal)
        .catch(() => undefined);
    }
    if (deps.afterStep && exit.kind === 'exited' && exit.exitCode === 0 && !controller.signal.aborted) {
      exit = await deps.afterStep(deps.stage, step, deps.handle, exit, controller.signal);
    }
  } catch (error) {
    // runStep/followStep never reject; afterStep must not. If one does, it is this step's error.
    exit = {
      kind: 'error',
      code: 'internal',
      message: error instanceof Error ? error.message : String(error),
    };
  } finally {
    if (timer) clearTimeout(timer);
    deps.buildSignal.removeEventListener('abort', onBuildAbort);
    deps.stageSignal.removeEventListener('abort', onStageAbort);
  }
  return classify(exit, controller.signal, step);
}

/**
 * Stores the ref of an attempt found again on resume (its predecessor died before storing it);
 * when that fails the step is stopped, as `runStep` of lifecycle.ts does for a new one.
 */
async function recordRef(
  deps: StepRunDeps,
  step: StepPlan,
  attempt: number,
  ref: StepRef,
): Promise<StepExit | undefined> {
  try {
    await deps.onStepRunning?.(deps.stage, step.name, attempt, ref);
    return undefined;
  } catch (error) {
    await deps.executor.stopStep(deps.handle, ref).catch(() => undefined);
    await deps.executor.releaseStep(deps.handle, ref).catch(() => undefined);
    const message = error instanceof Error ? error.message : String(error);
    return { kind: 'error', code: 'internal', message: `could not record the started step: ${message}` };
  }
}

function classify(exit: StepExit, signal: AbortSignal, step: StepPlan): AttemptEnd {
  const exitCode = exit.exitCode ?? null;
  const cause = signal.aborted ? (signal.reason as AbortCause) : undefined;
  if (exit.kind === 'error') {
    return { status: 'error', exitCode, reason: { code: exit.code, message: exit.message } };
  }
  if (cause === 'timeout') {
    return {
      status: 'failure',
      exitCode,
      reason: { code: 'timeout', message: `timed out after ${formatDuration(step.timeoutMs ?? 0)}` },
    };
  }
  if (cause === 'cancelled') {
    return { status: 'cancelled', exitCode, reason: { code: 'cancelled', message: 'cancelled' } };
  }
  if (cause === 'fail_fast') {
    return {
      status: 'cancelled',
      exitCode,
      reason: { code: 'fail_fast', message: 'cancelled: another step of the stage failed' },
    };
  }
  if (exit.kind === 'exited' && exit.exitCode === 0) return { status: 'success', exitCode: 0 };
  return {
    status: 'failure',
    exitCode,
    reason: { code: 'exit_code', message: `exited with code ${exitCode ?? 'unknown'}` },
  };
}

/**
 * The line that opens a retry, saying why the attempt before ended: `attempt 2 of 3
 * (attempt 1 failed: exited with code 1)`. Empty for a first attempt.
 */
export function describeAttempt(attempt: number, info: AttemptInfo): string {
  if (attempt <= 1) return '';
  const previous = info.previous;
  const why =
    previous?.reason?.message ??
    (previous?.exitCode != null ? `exited with code ${previous.exitCode}` : undefined);
  return `attempt ${attempt} of ${info.maxAttempts}${why !== undefined ? ` (attempt ${attempt - 1} failed: ${why})` : ''}`;
}
