import type { Kysely } from 'kysely';
import { planReuse, type PreviousRun, type ReuseState } from '../../orchestrator/reuse.js';
import type { StepResult } from '../../orchestrator/types.js';
import type { PipelinePlan } from '../../pipeline/types.js';
import {
  getBuild,
  getBuildRecords,
  type Build,
  type Database,
  type StageRecord,
  type StepRecord,
} from '../../store/index.js';
import { stageApprovals, type ReusedStep } from '../../store/rerun.js';
import type { BuildLogWriter } from '../logs/log-writer.js';
import type { LogStore } from '../logs/types.js';

/**
 * Lines read from the earlier build's log at a time while its reused steps' logs are copied:
 * at most 16 MiB held at once (lines are up to 64 KiB), each page stored before the next.
 */
const COPY_PAGE = 256;

/** What a "re-run failed" build takes from the build it re-runs. */
export interface RerunReuse {
  /** The build it re-runs. */
  original: Build;
  /** For the orchestrator (`RunOptions.reuse`). */
  state: ReuseState;
  /** By `stage/step`: the earlier record of each reused step and where its run comes from. */
  steps: Map<
    string,
    { stage: string; step: string; record: StepRecord; from: { buildId: number; number: number } }
  >;
}

/**
 * Which steps of `plan` the build reuses from the build it re-runs (its records, matched by
 * stage and step name: a step the plan has and the records do not runs). Undefined when the
 * earlier build is gone (retention): then everything runs.
 */
export async function reuseFromRerun(
  db: Kysely<Database>,
  rerunOf: number,
  plan: PipelinePlan,
): Promise<RerunReuse | undefined> {
  const original = await getBuild(db, rerunOf);
  if (original === undefined) return undefined;
  const records = await getBuildRecords(db, rerunOf);
  const byKey = new Map<string, { stage: string; step: string; record: StepRecord }>();
  const previous: PreviousRun = { stages: {}, approved: await stageApprovals(db, rerunOf) };
  for (const stage of records) {
    const steps: PreviousRun['stages'][string] = {};
    for (const step of stage.steps) {
      steps[step.name] = { status: step.status, ...(step.reason ? { reason: step.reason } : {}) };
      byKey.set(`${stage.name}/${step.name}`, { stage: stage.name, step: step.name, record: step });
    }
    previous.stages[stage.name] = steps;
  }
  const state = planReuse(plan, previous, (stage, step) => resultOf(byKey.get(`${stage}/${step}`)!.record));
  const steps: RerunReuse['steps'] = new Map();
  for (const [stage, reused] of Object.entries(state.stages)) {
    for (const step of Object.keys(reused)) {
      const entry = byKey.get(`${stage}/${step}`)!;
      // A chain of re-runs names the build that ran the step, whose log and bytes these are.
      const from = entry.record.reusedFrom ?? { buildId: original.id, number: original.number };
      steps.set(`${stage}/${step}`, { ...entry, from });
    }
  }
  return { original, state, steps };
}

/**
 * The reused steps of a build from its own records (a resumed run): for `RunOptions.reuse`.
 * `approved`: the earlier approvals of the build it re-runs (`stageApprovals`), kept for the
 * stages with reused steps, as `planReuse` did.
 */
export function reuseStateOfRecords(
  records: readonly StageRecord[],
  approved: NonNullable<PreviousRun['approved']> = {},
): ReuseState | undefined {
  const state: ReuseState = { stages: {} };
  for (const stage of records) {
    for (const step of stage.steps) {
      if (step.reusedFrom === null || step.status !== 'success') continue;
      (state.stages[stage.name] ??= {})[step.name] = resultOf(step);
    }
    const before = approved[stage.name];
    if (before !== undefined && state.stages[stage.name] !== undefined)
      (state.approved ??= {})[stage.name] = before;
  }
  return Object.keys(state.stages).length > 0 ? state : undefined;
}

/** The store's rows for the reused steps of the new build's records. */
export function reusedStepRows(reuse: RerunReuse, records: readonly StageRecord[]): ReusedStep[] {
  const rows: ReusedStep[] = [];
  for (const stage of records) {
    for (const step of stage.steps) {
      const entry = reuse.steps.get(`${stage.name}/${step.name}`);
      if (entry === undefined) continue;
      rows.push({
        stepId: step.id,
        key: `${stage.name}/${step.name}`,
        from: entry.from,
        exitCode: entry.record.exitCode,
        attempts: entry.record.attempts,
        durationMs: entry.record.durationMs,
      });
    }
  }
  return rows;
}

/**
 * Copies the log of each reused step from the build it re-runs into the new build's log, after
 * a line that says where it comes from: the new build's log stands on its own when retention
 * removes the earlier one. A page at a time, each stored before the next is read; the copy
 * counts towards the new build's log limit like any output. Resolves with the lines per key.
 */
export async function copyReusedLogs(
  logs: LogStore,
  writer: BuildLogWriter,
  reuse: RerunReuse,
  signal?: AbortSignal,
): Promise<void> {
  for (const { stage, step, from } of reuse.steps.values()) {
    writer.write(
      stage,
      step,
      'system',
      `reused from build #${from.number}: the step succeeded there and does not run again; its log follows`,
    );
  }
  for (let after = 0; ;) {
    signal?.throwIfAborted();
    const page = await logs.read(reuse.original.id, after, COPY_PAGE);
    if (page.length === 0) break;
    after = page.at(-1)!.seq;
    for (const line of page) {
      if (line.stage === '' || !reuse.steps.has(`${line.stage}/${line.step}`)) continue;
      writer.write(line.stage, line.step, line.stream, line.text, line.time);
    }
    await writer.flush();
  }
}

function resultOf(step: StepRecord): StepResult {
  return {
    name: step.name,
    status: 'success',
    exitCode: step.exitCode,
    durationMs: step.durationMs ?? 0,
    attempts: step.attempts,
    allowFailure: step.allowFailure,
  };
}
