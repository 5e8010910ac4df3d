import type { StagePlan, StepPlan } from '../pipeline/types.js';
import { aggregateStatus } from './status.js';
import { runStep, type StepRunDeps } from './step-runner.js';
import type { Reason, StageResult, StepResult } from './types.js';

export interface StageRunDeps extends Omit<StepRunDeps, 'stage' | 'stageSignal' | 'secretEnv'> {
  parallelism: number;
  /** The step's environment from secrets, or why the step cannot have it (it then ends `error`). */
  secretEnvFor: (step: StepPlan) => { env: Record<string, string> } | { error: Reason };
}

/**
 * Runs the steps of one stage: in parallel up to `parallelism`, each once the steps it
 * `needs` succeeded. The first failure of a step without `allow_failure` cancels the running
 * siblings and skips those not started (fail-fast). Never throws.
 */
export async function runStage(stage: StagePlan, deps: StageRunDeps): Promise<StageResult> {
  const started = deps.clock();
  deps.observer.stageStarted?.(stage.name);
  const failFast = new AbortController();
  const results = new Map<string, StepResult>();
  const running = new Map<string, Promise<void>>();
  const waiting = new Set(stage.steps.map((s) => s.name));
  const byName = new Map(stage.steps.map((s) => [s.name, s]));

  const finishUnstarted = (name: string, reason: Reason) => {
    const step = byName.get(name)!;
    const result: StepResult = {
      name,
      status: 'skipped',
      exitCode: null,
      durationMs: 0,
      attempts: 0,
      allowFailure: step.allowFailure,
      reason,
    };
    results.set(name, result);
    waiting.delete(name);
    deps.observer.stepFinished?.(stage.name, name, result);
  };

  for (;;) {
    // Steps whose needs can no longer succeed are skipped, which may unblock nothing but
    // must be settled before deciding the stage is done.
    let settledSome = true;
    while (settledSome) {
      settledSome = false;
      for (const name of waiting) {
        const failedNeed = byName.get(name)!.needs.find((n) => {
          const r = results.get(n);
          return r !== undefined && r.status !== 'success';
        });
        if (failedNeed !== undefined) {
          const status = results.get(failedNeed)!.status;
          finishUnstarted(name, {
            code: 'needs_failed',
            message: `skipped: needs "${failedNeed}", which ended in ${status}`,
          });
          settledSome = true;
        }
      }
    }
    const stopReason = deps.buildSignal.aborted
      ? ({ code: 'cancelled', message: 'skipped: the build was cancelled' } as const)
      : failFast.signal.aborted
        ? ({ code: 'fail_fast', message: 'skipped: another step of the stage failed' } as const)
        : undefined;
    if (stopReason) {
      for (const name of [...waiting]) finishUnstarted(name, stopReason);
    }
    for (const name of [...waiting]) {
      if (running.size >= deps.parallelism) break;
      const step = byName.get(name)!;
      if (!step.needs.every((n) => results.get(n)?.status === 'success')) continue;
      waiting.delete(name);
      const secrets = deps.secretEnvFor(step);
      const run: Promise<StepResult> =
        'error' in secrets
          ? Promise.resolve(notRun(step, secrets.error))
          : runStep(step, {
              ...deps,
              stage: stage.name,
              stageSignal: failFast.signal,
              secretEnv: secrets.env,
            });
      const task = run.then((result) => {
        if ('error' in secrets) deps.observer.stepFinished?.(stage.name, name, result);
        results.set(name, result);
        running.delete(name);
        if ((result.status === 'failure' || result.status === 'error') && !step.allowFailure) {
          failFast.abort('fail_fast');
        }
      });
      running.set(name, task);
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }

  // Only reachable if a `needs` name escaped the compiler's checks; never leave a step without a result.
  for (const name of [...waiting]) {
    finishUnstarted(name, { code: 'needs_failed', message: 'skipped: a step it needs never ran' });
  }
  const steps = stage.steps.map((s) => results.get(s.name)!);
  const counted = steps.filter((s) => !s.allowFailure).map((s) => s.status);
  const status = aggregateStatus(
    counted,
    steps.map((s) => s.status),
    deps.buildSignal.aborted,
  );
  const firstFailure = steps.find((s) => !s.allowFailure && (s.status === 'failure' || s.status === 'error'));
  const result: StageResult = {
    name: stage.name,
    status,
    durationMs: deps.clock() - started,
    steps,
    ...(firstFailure?.reason
      ? {
          reason: {
            code: firstFailure.reason.code,
            message: `step "${firstFailure.name}" ${firstFailure.reason.message}`,
          },
        }
      : {}),
  };
  deps.observer.stageFinished?.(stage.name, result);
  return result;
}

/** A step that could not start (a secret it needs is missing): `error`, never attempted. */
function notRun(step: StepPlan, reason: Reason): StepResult {
  return {
    name: step.name,
    status: 'error',
    exitCode: null,
    durationMs: 0,
    attempts: 0,
    allowFailure: step.allowFailure,
    reason,
  };
}
