import type { PipelinePlan } from '../pipeline/types.js';
import type { Status } from '../contract/index.js';
import type { Reason, StepResult } from './types.js';

/**
 * How an earlier build of the same commit ended, step by step: by stage name, then step name
 * (a matrix cell is a step of its own). A step not listed did not exist there; one that
 * never ended there (`lost`, still `queued`) runs.
 */
export interface PreviousRun {
  stages: Record<string, Record<string, { status: Status; reason?: Reason }>>;
  /**
   * By stage name: the build where a person approved the stage for this commit (that build,
   * or, where a re-run there reused the stage's steps without asking, the build it re-ran).
   */
  approved?: Record<string, ApprovedIn>;
}

/** A person's approval of a stage in an earlier build of the commit. */
export interface ApprovedIn {
  /** The build's number. */
  number: number;
  by?: string;
}

/**
 * The steps of a plan whose earlier results are taken as they are ("re-run failed"): by stage
 * name, then step name. See `RunOptions.reuse`.
 */
export interface ReuseState {
  stages: Record<string, Record<string, StepResult>>;
  /**
   * By stage name: approval stages with reused steps that a person approved in an earlier
   * build: not asked again, also where some of their steps run again (see `planReuse`).
   */
  approved?: Record<string, ApprovedIn>;
}

/**
 * Which steps of `plan` a "re-run failed" build reuses from `previous`, with GitHub's semantics
 * for re-running failed jobs:
 * - a step runs again when it did not succeed there (failure, error, cancelled, lost, or
 *   skipped because of one of those), or when no step of its stage and name existed there (the
 *   server's compiler changed: running it is the safe side);
 * - every step that `needs` one that runs again runs too (transitively);
 * - every stage after the first stage where something runs again runs whole;
 * - the other steps that succeeded there are reused: `result(step)` gives the result to take.
 *
 * A step skipped there by `when` (the whole stage skipped by its branch or event filter) is not
 * reused and does not make its stage run again by itself: it is decided again as usual, with the
 * same outcome for the same commit.
 *
 * An approval stage with reused steps that a person approved there (`previous.approved`) is not
 * asked again, even where some of its steps run again: the approval was a person's decision about
 * this commit's stage, and everything before the stage is reused, so the stage runs on what it was
 * approved on. A stage that runs whole again (after a stage where something runs again) is asked
 * again: what it runs on runs again too. Pure: the caller stores and shows what it returns.
 */
export function planReuse(
  plan: PipelinePlan,
  previous: PreviousRun,
  result: (stage: string, step: string) => StepResult,
): ReuseState {
  const reuse: ReuseState = { stages: {} };
  for (const stage of plan.stages) {
    const before = previous.stages[stage.name] ?? {};
    const again = new Set(
      stage.steps
        .filter((step) => {
          const then = before[step.name];
          if (then === undefined) return true;
          return then.status !== 'success' && !(then.status === 'skipped' && then.reason?.code === 'when');
        })
        .map((s) => s.name),
    );
    // Needs point at earlier steps of the same stage: one pass per added step settles the closure.
    for (let grew = again.size > 0; grew;) {
      grew = false;
      for (const step of stage.steps) {
        if (!again.has(step.name) && step.needs.some((n) => again.has(n))) {
          again.add(step.name);
          grew = true;
        }
      }
    }
    const reused = stage.steps.filter((s) => !again.has(s.name) && before[s.name]?.status === 'success');
    if (reused.length > 0) {
      reuse.stages[stage.name] = Object.fromEntries(reused.map((s) => [s.name, result(stage.name, s.name)]));
      const approved = previous.approved?.[stage.name];
      if (stage.approval && approved !== undefined) (reuse.approved ??= {})[stage.name] = approved;
    }
    if (again.size > 0) break;
  }
  return reuse;
}

/** Whether every step of the stage is reused: it is not decided again (`when`, approval). */
export function wholeStageReused(
  stage: PipelinePlan['stages'][number],
  reuse: ReuseState | undefined,
): boolean {
  const steps = reuse?.stages[stage.name];
  return (
    steps !== undefined && stage.steps.length > 0 && stage.steps.every((s) => steps[s.name] !== undefined)
  );
}
