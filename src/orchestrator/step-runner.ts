import type { Executor, BuildHandle, StepExit } from '../executors/types.js';
import { maskingSink } from './masker.js';
import type { StepPlan } from '../pipeline/types.js';
import type { AttemptInfo, BuildObserver, Reason, StepResult } from './types.js';

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
  /** Environment entries filled from secrets, merged over the step's env. */
  secretEnv: Record<string, string>;
}

/** Runs one step with its retries and timeout; never throws. */
export async function runStep(step: StepPlan, deps: StepRunDeps): Promise<StepResult> {
  const started = deps.clock();
  const maxAttempts = step.retries + 1;
  let attempts = 0;
  let last: { status: StepResult['status']; exitCode: number | null; reason?: Reason } = {
    status: 'skipped',
    exitCode: null,
  };
  while (attempts < maxAttempts) {
    const before = abortedCause(deps);
    if (before) {
      last = attempts === 0 ? skippedBecause(before) : last;
      break;
    }
    const info: AttemptInfo = {
      maxAttempts,
      ...(attempts > 0 && {
        previous: { exitCode: last.exitCode, ...(last.reason && { reason: last.reason }) },
      }),
    };
    attempts += 1;
    last = await runAttempt(step, attempts, info, deps);
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

async function runAttempt(
  step: StepPlan,
  attempt: number,
  info: AttemptInfo,
  deps: StepRunDeps,
): Promise<{ status: StepResult['status']; exitCode: number | null; reason?: Reason }> {
  const controller = new AbortController();
  const abort = (cause: AbortCause) => {
    if (!controller.signal.aborted) controller.abort(cause);
  };
  const onBuildAbort = () => abort('cancelled');
  const onStageAbort = () => abort('fail_fast');
  deps.buildSignal.addEventListener('abort', onBuildAbort);
  deps.stageSignal.addEventListener('abort', onStageAbort);
  const timer = step.timeoutMs === undefined ? undefined : setTimeout(() => abort('timeout'), step.timeoutMs);

  // Whole lines are masked, so a value cut by the piece cap is still found.
  const sink = maskingSink(deps.mask, (stream, text) => {
    deps.observer.stepLog?.(deps.stage, step.name, { stream, text, time: deps.clock() });
  });
  deps.observer.stepStarted?.(deps.stage, step.name, attempt, info);
  let exit: StepExit;
  try {
    exit = await deps.executor.runStep(
      deps.handle,
      {
        key: `${deps.stage}/${step.name}`,
        stage: deps.stage,
        step: step.name,
        ...(step.image !== undefined ? { image: step.image } : {}),
        commands: step.commands,
        env: { ...step.env, ...deps.secretEnv },
        attempt,
      },
      sink,
      controller.signal,
    );
  } catch (error) {
    // The contract says runStep never rejects; if one does, it is still only this step's error.
    exit = { kind: 'error', message: error instanceof Error ? error.message : String(error) };
  } finally {
    sink.end();
    if (timer) clearTimeout(timer);
    deps.buildSignal.removeEventListener('abort', onBuildAbort);
    deps.stageSignal.removeEventListener('abort', onStageAbort);
  }
  return classify(exit, controller.signal, step);
}

function classify(
  exit: StepExit,
  signal: AbortSignal,
  step: StepPlan,
): { status: StepResult['status']; exitCode: number | null; reason?: Reason } {
  const exitCode = exit.kind === 'error' ? null : (exit.exitCode ?? null);
  const cause = signal.aborted ? (signal.reason as AbortCause) : undefined;
  if (exit.kind === 'error') {
    return { status: 'error', exitCode: null, reason: { code: 'executor', message: exit.message } };
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

/** `90000` → `1m30s`, for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let seconds = Math.round(ms / 1000);
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  return (
    [hours ? `${hours}h` : '', minutes ? `${minutes}m` : '', seconds ? `${seconds}s` : ''].join('') || '0s'
  );
}
