import type { StagePlan, StepPlan } from '../pipeline/types.js';
import { aggregateStatus } from './status.js';
import { runStep, type RunningStep, type StepRunDeps } from './step-runner.js';
import type { Reason, StageResult, StageResume, StepResult } from './types.js';

export interface StageRunDeps extends Omit<StepRunDeps, 'stage' | 'stageSignal' | 'secretEnv'> {
  parallelism: number;
  /** The step's environment from secrets, or why the step cannot have it (it then ends `error`). */
  secretEnvFor: (step: StepPlan) => { env: Record<string, string> } | { error: Reason };
}

/**
 * Runs the steps of one stage: in parallel up to `parallelism`, each once the steps it
 * `needs` succeeded. The first failure of a step without `allow_failure` cancels the running
 * siblings and skips those not started (fail-fast). Never throws.
 *
 * `resume`: the stage was started by an earlier process (no second `stageStarted`): its ended
 * steps count as they are (also for `needs` and fail-fast), its running steps are followed
 * at once (they run already, whatever the parallelism), the others run as usual.
 * Resolves `undefined` when the run detached: no step starts after that, and the stage is
 * left for the successor.
 *
 * `reused`: results an earlier build gave (re-run failed), taken as ended ones are on resume.
 */
export async function runStage(
  stage: StagePlan,
  deps: StageRunDeps,
  resume?: StageResume,
  reused?: Readonly<Record<string, StepResult>>,
): Promise<StageResult | undefined> {
  const started = deps.clock();
  if (!resume) deps.observer.stageStarted?.(stage.name);
  const failFast = new AbortController();
  const results = new Map<string, StepResult>();
  const running = new Map<string, Promise<void>>();
  const waiting = new Set(stage.steps.map((s) => s.name));
  const byName = new Map(stage.steps.map((s) => [s.name, s]));
  let detached = false;
  const failed = (step: StagePlan['steps'][number], result: StepResult) =>
    (result.status === 'failure' || result.status === 'error') && !step.allowFailure;
  // `max_parallel` of a matrix: as many of its cells running as that, the next cell waits.
  // A stage's matrix counts cells with a step running: more steps of a running cell may start.
  const matrixFull = (step: StepPlan): boolean => {
    const m = step.matrix;
    if (m?.maxParallel === undefined) return false;
    const cells = new Set<number | string>();
    for (const name of running.keys()) {
      const other = byName.get(name)?.matrix;
      if (m.stageCell !== undefined && other?.stageCell !== undefined) cells.add(other.stageCell);
      else if (m.stageCell === undefined && other?.step === m.step) cells.add(name);
    }
    return cells.size >= m.maxParallel && !(m.stageCell !== undefined && cells.has(m.stageCell));
  };

  const launch = (step: StagePlan['steps'][number], followed?: RunningStep) => {
    waiting.delete(step.name);
    const secrets = deps.secretEnvFor(step);
    // A step that runs already is followed even if a secret cannot be read any more: it has it.
    const notStarted = 'error' in secrets && !followed ? secrets : undefined;
    const run: Promise<StepResult | undefined> = notStarted
      ? Promise.resolve(notRun(step, notStarted.error))
      : runStep(
          step,
          {
            ...deps,
            stage: stage.name,
            stageSignal: failFast.signal,
            secretEnv: 'env' in secrets ? secrets.env : {},
          },
          followed,
        );
    const task = run.then((result) => {
      running.delete(step.name);
      if (result === undefined) {
        detached = true;
        return;
      }
      if (notStarted) deps.observer.stepFinished?.(stage.name, step.name, result);
      results.set(step.name, result);
      if (failed(step, result)) failFast.abort('fail_fast');
    });
    running.set(step.name, task);
  };

  for (const step of stage.steps) {
    const entry = resume?.steps[step.name];
    const ended = entry?.kind === 'ended' ? entry.result : entry ? undefined : reused?.[step.name];
    if (ended) {
      results.set(step.name, ended);
      waiting.delete(step.name);
      if (failed(step, ended)) failFast.abort('fail_fast');
    }
  }
  for (const step of stage.steps) {
    const entry = resume?.steps[step.name];
    if (entry?.kind === 'running') launch(step, entry);
  }

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
    if (detached || deps.detach?.aborted) {
      // Nothing new starts; what runs returns as soon as it has let go of its step.
      detached = true;
      if (running.size === 0) return undefined;
      await Promise.race(running.values());
      continue;
    }
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
      if (matrixFull(step)) continue;
      launch(step);
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
