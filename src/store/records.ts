import type { Kysely, UpdateObject } from 'kysely';
import { StoreError } from './errors.js';
import { runKept } from './kept-query.js';
import { reasonColumns, toStage, toStep } from './rows.js';
import type { Database } from './schema.js';
import { writeTransaction } from './transaction.js';
import type { Reason, StageRecord, Status, StepRecord } from './types.js';

/**
 * Bound parameters one statement may carry: 999 is SQLite's lowest compiled-in limit (today's
 * builds allow 32,766, PostgreSQL 65,535), so a wide stage is written in several statements of
 * the same transaction instead of failing with "too many SQL variables".
 */
const MAX_PARAMS_PER_STATEMENT = 999;

/** A step to record: its name, or with what the pipeline says of it. */
export type NewStep = string | { name: string; allowFailure?: boolean; maxAttempts?: number };

/** A stage to record, with its steps in plan order. */
export interface NewStage {
  name: string;
  steps: readonly NewStep[];
  /** Default `queued`. */
  status?: Status;
}

/**
 * Records the stage/step tree of a build in one transaction, typically from its plan when
 * it starts, so the UI can draw the whole graph at once. Returns the records with their ids
 * (keep a name → id map to update them from orchestrator events). Throws `not_found` for an
 * unknown build, `conflict` if the build has records already.
 */
export async function createBuildRecords(
  db: Kysely<Database>,
  buildId: number,
  stages: readonly NewStage[],
): Promise<StageRecord[]> {
  return writeTransaction(db, async (trx) => {
    const build = await trx.selectFrom('builds').select('id').where('id', '=', buildId).executeTakeFirst();
    if (build === undefined) {
      throw new StoreError('not_found', `build ${buildId} does not exist`, { details: { buildId } });
    }
    const existing = await trx
      .selectFrom('stages')
      .select('id')
      .where('build_id', '=', buildId)
      .executeTakeFirst();
    if (existing !== undefined) {
      throw new StoreError('conflict', `build ${buildId} already has stage records`, {
        details: { buildId },
      });
    }
    const records: StageRecord[] = [];
    for (const [idx, stage] of stages.entries()) {
      const status = stage.status ?? 'queued';
      const row = await trx
        .insertInto('stages')
        .values({
          build_id: buildId,
          idx,
          name: stage.name,
          status,
          reason_code: null,
          reason_message: null,
          started_at: null,
          finished_at: null,
          duration_ms: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const rows = stage.steps.map((step, stepIdx) => ({
        stage_id: row.id,
        build_id: buildId,
        idx: stepIdx,
        name: typeof step === 'string' ? step : step.name,
        allow_failure: typeof step !== 'string' && step.allowFailure === true ? 1 : 0,
        max_attempts: typeof step === 'string' ? 1 : (step.maxAttempts ?? 1),
        status,
        exit_code: null,
        reason_code: null,
        reason_message: null,
        started_at: null,
        finished_at: null,
        duration_ms: null,
      }));
      const perInsert = Math.floor(MAX_PARAMS_PER_STATEMENT / Object.keys(rows[0] ?? {}).length);
      const steps = [];
      for (let start = 0; start < rows.length; start += perInsert) {
        const batch = rows.slice(start, start + perInsert);
        steps.push(...(await trx.insertInto('steps').values(batch).returningAll().execute()));
      }
      records.push(toStage(row, steps.sort((a, b) => a.idx - b.idx).map(toStep)));
    }
    return records;
  });
}

/** The stage/step tree of a build, in plan order; empty if none was recorded. */
export async function getBuildRecords(db: Kysely<Database>, buildId: number): Promise<StageRecord[]> {
  const [stages, steps] = await Promise.all([
    db.selectFrom('stages').selectAll().where('build_id', '=', buildId).orderBy('idx').execute(),
    db
      .selectFrom('steps')
      .selectAll()
      .where('build_id', '=', buildId)
      .orderBy('stage_id')
      .orderBy('idx')
      .execute(),
  ]);
  const byStage = new Map<number, StepRecord[]>();
  for (const step of steps) {
    const list = byStage.get(step.stage_id) ?? [];
    list.push(toStep(step));
    byStage.set(step.stage_id, list);
  }
  return stages.map((stage) => toStage(stage, byStage.get(stage.id) ?? []));
}

export interface RecordUpdate {
  /** Apply only while the status is one of these (e.g. never reopen a finished step). */
  from?: readonly Status[];
  status?: Status;
  /** null clears it. */
  reason?: Reason | null;
  startedAt?: number | null;
  finishedAt?: number | null;
  durationMs?: number | null;
}

export interface StepUpdate extends RecordUpdate {
  exitCode?: number | null;
  attempts?: number;
  /** The count of stored log lines (absolute, not an increment: safe to repeat). */
  logLines?: number;
}

/** Updates a stage record. Returns whether it applied (false: no such stage, or guard failed). */
export async function updateStage(
  db: Kysely<Database>,
  stageId: number,
  update: RecordUpdate,
): Promise<boolean> {
  if (update.from?.length === 0) return false;
  const set: UpdateObject<Database, 'stages'> = commonColumns(update);
  if (Object.keys(set).length === 0) return exists(db, 'stages', stageId, update.from);
  return updateRecord(db, 'stages', stageId, set, update.from);
}

/** Updates a step record. Returns whether it applied (false: no such step, or guard failed). */
export async function updateStep(db: Kysely<Database>, stepId: number, update: StepUpdate): Promise<boolean> {
  if (update.from?.length === 0) return false;
  const set: UpdateObject<Database, 'steps'> = commonColumns(update);
  if (update.exitCode !== undefined) set.exit_code = update.exitCode;
  if (update.attempts !== undefined) set.attempts = update.attempts;
  if (update.logLines !== undefined) set.log_lines = update.logLines;
  if (Object.keys(set).length === 0) return exists(db, 'steps', stepId, update.from);
  return updateRecord(db, 'steps', stepId, set, update.from);
}

/**
 * `update … set <columns> where id = ? [and status in (…)]`, kept per table, columns and guard
 * (a build's stage and step records change a few times each, always in a few such shapes).
 */
async function updateRecord(
  db: Kysely<Database>,
  table: 'stages' | 'steps',
  id: number,
  set: Record<string, unknown>,
  from: readonly Status[] | undefined,
): Promise<boolean> {
  const columns = Object.keys(set).sort();
  const guard = from ?? [];
  const key = `updateRecord/${table}/${columns.join(',')}/${from === undefined ? '-' : guard.length}`;
  const values = [...columns.map((c) => set[c]), id, ...guard];
  const result = await runKept(db, key, values, (slots) => {
    const columnSlots = Object.fromEntries(columns.map((c, i) => [c, slots[i]]));
    // One shape for both tables: the columns set are those of `commonColumns` and the step's own.
    let query = db
      .updateTable(table as 'steps')
      .set(columnSlots)
      .where('id', '=', slots[columns.length]!);
    if (from !== undefined) query = query.where('status', 'in', slots.slice(columns.length + 1));
    return query;
  });
  return (result.numAffectedRows ?? 0n) > 0n;
}

function commonColumns(update: RecordUpdate) {
  return {
    ...(update.status !== undefined && { status: update.status }),
    ...reasonColumns(update.reason),
    ...(update.startedAt !== undefined && { started_at: update.startedAt }),
    ...(update.finishedAt !== undefined && { finished_at: update.finishedAt }),
    ...(update.durationMs !== undefined && { duration_ms: update.durationMs }),
  };
}

async function exists(
  db: Kysely<Database>,
  table: 'stages' | 'steps',
  id: number,
  from: readonly Status[] | undefined,
): Promise<boolean> {
  let query = db.selectFrom(table).select('id').where('id', '=', id);
  if (from !== undefined) query = query.where('status', 'in', from);
  return (await query.executeTakeFirst()) !== undefined;
}
