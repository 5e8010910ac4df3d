import type { Kysely } from 'kysely';
import { STEP_ERROR_CODES, type StepErrorCode } from '../contract/reasons.js';
import type { ExecutorName, StepExit, StepRef } from '../executors/types.js';
import type { PipelinePlan } from '../pipeline/types.js';
import { runKept } from './kept-query.js';
import { getBuildRecords } from './records.js';
import type { Database } from './schema.js';
import type { StageRecord, StepRecord } from './types.js';

/**
 * What a successor process reads to resume a build (see migration 0010): the plan its
 * predecessor compiled and, per step, the durable ref of the attempt that was running.
 */

/** A step record with what its running attempt left for a successor. */
export interface ResumeStepRecord extends StepRecord {
  /** The ref of the attempt last started (its `attempt` may be older than `attempts`). */
  ref: StepRef | undefined;
  /** When that attempt began to run; null when no ref was stored. */
  attemptStartedAt: number | null;
  /** How an attempt ended, when it was stored before its release (see `saveStepExit`). */
  attemptExit: { attempt: number; exit: StepExit } | undefined;
}

export interface ResumeStageRecord extends Omit<StageRecord, 'steps'> {
  steps: ResumeStepRecord[];
}

export interface ResumeRecords {
  /** The stored plan; undefined when the build never got that far (or before migration 0010). */
  plan: PipelinePlan | undefined;
  stages: ResumeStageRecord[];
}

/** Stores the compiled plan of a build, so that a successor can resume without a checkout. */
export async function saveBuildPlan(
  db: Kysely<Database>,
  buildId: number,
  plan: PipelinePlan,
): Promise<void> {
  await db
    .updateTable('builds')
    .set({ plan: JSON.stringify(plan) })
    .where('id', '=', buildId)
    .execute();
}

/**
 * Stores the durable ref of a step's running attempt and when it began to run. Called before
 * the step's output is read: a successor finds the step from it. Returns whether the step
 * exists and is still running (a step already ended keeps its record).
 */
export async function saveStepRef(
  db: Kysely<Database>,
  stepId: number,
  ref: StepRef,
  attemptStartedAt: number,
): Promise<boolean> {
  const result = await runKept(
    db,
    'saveStepRef',
    [JSON.stringify(ref), attemptStartedAt, stepId, 'queued', 'running'],
    ([json, startedAt, id, queued, running]) =>
      db
        .updateTable('steps')
        .set({ ref: json, attempt_started_at: startedAt })
        .where('id', '=', id)
        .where('status', 'in', [queued, running]),
  );
  return (result.numAffectedRows ?? 0n) > 0n;
}

/**
 * Stores how attempt `attempt` of a running step ended, once its output is stored and before
 * the executor releases it: a successor of a process that dies in between takes this exit
 * instead of looking for a step that is gone. Returns whether the step is still running.
 */
export async function saveStepExit(
  db: Kysely<Database>,
  stepId: number,
  attempt: number,
  exit: StepExit,
): Promise<boolean> {
  const result = await runKept(
    db,
    'saveStepExit',
    [JSON.stringify({ attempt, exit }), stepId, 'queued', 'running'],
    ([json, id, queued, running]) =>
      db
        .updateTable('steps')
        .set({ attempt_exit: json })
        .where('id', '=', id)
        .where('status', 'in', [queued, running]),
  );
  return (result.numAffectedRows ?? 0n) > 0n;
}

/** The plan and the stage/step records (with refs) of a build, in plan order. */
export async function loadResumeRecords(db: Kysely<Database>, buildId: number): Promise<ResumeRecords> {
  const [build, records, refs] = await Promise.all([
    db.selectFrom('builds').select('plan').where('id', '=', buildId).executeTakeFirst(),
    getBuildRecords(db, buildId),
    db
      .selectFrom('steps')
      .select(['id', 'ref', 'attempt_started_at', 'attempt_exit'])
      .where('build_id', '=', buildId)
      .execute(),
  ]);
  const byId = new Map(refs.map((r) => [r.id, r]));
  return {
    plan: parsePlan(build?.plan ?? null),
    stages: records.map((stage) => ({
      ...stage,
      steps: stage.steps.map((step) => {
        const row = byId.get(step.id);
        const ref = parseStepRef(row?.ref ?? null);
        return {
          ...step,
          ref,
          attemptStartedAt: ref ? (row?.attempt_started_at ?? null) : null,
          attemptExit: parseAttemptExit(row?.attempt_exit ?? null),
        };
      }),
    })),
  };
}

function parsePlan(text: string | null): PipelinePlan | undefined {
  if (text === null) return undefined;
  try {
    const plan = JSON.parse(text) as unknown;
    // The plan was written by this code from a compiled pipeline: a shape check is enough to
    // tell it from a damaged value, which resumes nothing (the build is then lost, saying so).
    if (typeof plan === 'object' && plan !== null && Array.isArray((plan as { stages?: unknown }).stages)) {
      return plan as PipelinePlan;
    }
  } catch {
    // fall through: unreadable
  }
  return undefined;
}

const EXECUTOR_NAMES: readonly ExecutorName[] = ['local', 'docker', 'kubernetes', 'memory'];

/**
 * A stored ref, checked field by field: one that does not parse is treated as never stored
 * (the successor then asks the executor with `findStep`, which checks labels itself).
 */
export function parseStepRef(text: string | null): StepRef | undefined {
  if (text === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    typeof v.executor !== 'string' ||
    !(EXECUTOR_NAMES as readonly string[]).includes(v.executor) ||
    typeof v.id !== 'string' ||
    typeof v.buildId !== 'string' ||
    typeof v.key !== 'string' ||
    typeof v.attempt !== 'number' ||
    !Number.isInteger(v.attempt) ||
    typeof v.startedAt !== 'number'
  ) {
    return undefined;
  }
  return {
    executor: v.executor as ExecutorName,
    id: v.id,
    buildId: v.buildId,
    key: v.key,
    attempt: v.attempt,
    startedAt: v.startedAt,
  };
}

/**
 * A stored attempt exit, checked field by field like a ref: one that does not parse is taken
 * as never stored (the successor then follows the step, or finds it gone, as before).
 */
export function parseAttemptExit(text: string | null): { attempt: number; exit: StepExit } | undefined {
  if (text === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { attempt, exit } = value as { attempt?: unknown; exit?: unknown };
  if (typeof attempt !== 'number' || !Number.isInteger(attempt) || attempt < 1) return undefined;
  const parsed = parseExit(exit);
  return parsed ? { attempt, exit: parsed } : undefined;
}

function parseExit(value: unknown): StepExit | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const code = typeof v.exitCode === 'number' && Number.isInteger(v.exitCode) ? v.exitCode : undefined;
  if (v.exitCode !== undefined && code === undefined) return undefined;
  const withCode = code !== undefined ? { exitCode: code } : {};
  switch (v.kind) {
    case 'exited':
      return code === undefined ? undefined : { kind: 'exited', exitCode: code };
    case 'aborted':
      return { kind: 'aborted', ...withCode };
    case 'error':
      if (typeof v.message !== 'string') return undefined;
      if (!(STEP_ERROR_CODES as readonly unknown[]).includes(v.code)) return undefined;
      return { kind: 'error', code: v.code as StepErrorCode, message: v.message, ...withCode };
    default:
      return undefined;
  }
}
