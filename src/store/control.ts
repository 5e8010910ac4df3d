import type { Kysely } from 'kysely';
import { parseReason } from '../contract/index.js';
import { runKept } from './kept-query.js';
import type { Database } from './schema.js';
import { selectBuilds, toBuild } from './rows.js';
import { writeTransaction } from './transaction.js';
import { ACTIVE_STATUSES, type Build, type Reason, type Status } from './types.js';

/** What the owner of an active build has been asked to do. */
export interface ControlRequest {
  buildId: number;
  cancel?: Reason;
  approval?: {
    stageId: number;
    stage: string;
    decision: 'approved' | 'rejected';
    by: string;
    message: string | null;
  };
}

/**
 * Records a request to cancel an active build. Its owner (this or another server process)
 * sees it through `pendingControl` and stops the build. The first request's reason is kept.
 * Returns false when the build is not active.
 */
export async function requestCancel(
  db: Kysely<Database>,
  buildId: number,
  reason: Reason,
  now = Date.now(),
): Promise<boolean> {
  const result = await db
    .updateTable('builds')
    .set({ cancel_requested_at: now, cancel_reason_code: reason.code, cancel_reason_message: reason.message })
    .where('id', '=', buildId)
    .where('status', 'in', ACTIVE_STATUSES)
    .where('cancel_requested_at', 'is', null)
    .executeTakeFirst();
  if (result.numUpdatedRows > 0n) return true;
  const row = await db
    .selectFrom('builds')
    .select('id')
    .where('id', '=', buildId)
    .where('status', 'in', ACTIVE_STATUSES)
    .executeTakeFirst();
  return row !== undefined;
}

/** Marks a stage as waiting for a person's decision. */
export async function openApproval(db: Kysely<Database>, stageId: number, now = Date.now()): Promise<void> {
  await db
    .updateTable('stages')
    .set({
      status: 'waiting',
      approval: 'waiting',
      approval_requested_at: now,
      approval_at: null,
      approval_by: null,
      approval_message: null,
      approval_resumed_at: null,
      started_at: now,
    })
    .where('id', '=', stageId)
    .execute();
}

/** One approval stage of a build: who decided what, when, and why. */
export interface ApprovalRecord {
  stage: string;
  decision: 'waiting' | 'approved' | 'rejected';
  /** The person (token name) who decided; null while waiting. */
  by: string | null;
  /** When it was decided; null while waiting. */
  at: number | null;
  comment: string | null;
  /** When the stage began to wait. */
  requestedAt: number | null;
  /**
   * When the decided build got a running slot back and went on; null while it waits for the
   * person or for a slot. `requestedAt` to this is time spent waiting, not running.
   */
  resumedAt: number | null;
}

/** The approval records of the given builds, by build id, each in stage order. */
export async function approvalsOf(
  db: Kysely<Database>,
  buildIds: readonly number[],
): Promise<Map<number, ApprovalRecord[]>> {
  const out = new Map<number, ApprovalRecord[]>();
  if (buildIds.length === 0) return out;
  const unique = [...new Set(buildIds)];
  const { rows } = await runKept(db, `approvalsOf/${unique.length}`, unique, (ids) =>
    db
      .selectFrom('stages')
      .select([
        'build_id',
        'name',
        'approval',
        'approval_by',
        'approval_message',
        'approval_at',
        'approval_requested_at',
        'approval_resumed_at',
      ])
      .where('build_id', 'in', ids)
      .where('approval', 'is not', null)
      .orderBy('build_id')
      .orderBy('idx'),
  );
  for (const row of rows) {
    if (row.approval === null) continue;
    const list = out.get(row.build_id) ?? [];
    const decided = row.approval !== 'waiting';
    list.push({
      stage: row.name,
      decision: row.approval,
      by: decided ? row.approval_by : null,
      at: decided ? row.approval_at : null,
      comment: decided ? row.approval_message : null,
      // Rows from before migration 0006 kept the opening time in `approval_at`.
      requestedAt: row.approval_requested_at ?? (decided ? null : row.approval_at),
      resumedAt: row.approval_resumed_at,
    });
    out.set(row.build_id, list);
  }
  return out;
}

/**
 * Decides the approval a build waits on. Only a stage that is still `waiting` can be decided,
 * so two people clicking at once get one decision. Returns the stage's name, or undefined
 * when the build waits for nothing. The build stays `waiting` (without a running slot) until
 * `claimNextBuilds` gives it a slot back, ahead of queued builds, in decision order.
 */
export async function decideApproval(
  db: Kysely<Database>,
  buildId: number,
  decision: 'approved' | 'rejected',
  by: string,
  message: string | null,
  now = Date.now(),
): Promise<string | undefined> {
  return writeTransaction(db, async (trx) => {
    const stage = await trx
      .selectFrom('stages')
      .select(['id', 'name'])
      .where('build_id', '=', buildId)
      .where('approval', '=', 'waiting')
      .orderBy('idx')
      .executeTakeFirst();
    if (stage === undefined) return undefined;
    const updated = await trx
      .updateTable('stages')
      .set({ approval: decision, approval_by: by, approval_message: message, approval_at: now })
      .where('id', '=', stage.id)
      .where('approval', '=', 'waiting')
      .executeTakeFirst();
    return updated.numUpdatedRows > 0n ? stage.name : undefined;
  });
}

/**
 * Cancel requests and approval decisions for the given (active, owned) builds. A decision is
 * handed over only once its build has a running slot again (`approval_resumed_at`, set by
 * `claimNextBuilds`): until then the build goes on waiting.
 */
export async function pendingControl(
  db: Kysely<Database>,
  buildIds: readonly number[],
): Promise<ControlRequest[]> {
  if (buildIds.length === 0) return [];
  const n = buildIds.length;
  const { rows: cancels } = await runKept(db, `pendingControl.cancels/${n}`, buildIds, (ids) =>
    db
      .selectFrom('builds')
      .select(['id', 'cancel_reason_code', 'cancel_reason_message'])
      .where('id', 'in', ids)
      .where('cancel_requested_at', 'is not', null),
  );
  const { rows: approvals } = await runKept(
    db,
    `pendingControl.approvals/${n}`,
    ['waiting', 'approved', 'rejected', ...buildIds],
    ([waiting, approved, rejected, ...ids]) =>
      db
        .selectFrom('stages')
        .select(['id', 'build_id', 'name', 'approval', 'approval_by', 'approval_message'])
        .where('build_id', 'in', ids)
        .where('status', '=', waiting)
        .where('approval', 'in', [approved, rejected])
        .where('approval_resumed_at', 'is not', null),
  );
  const out = new Map<number, ControlRequest>();
  for (const row of cancels) {
    out.set(row.id, {
      buildId: row.id,
      cancel: parseReason(row.cancel_reason_code ?? 'cancelled', row.cancel_reason_message ?? 'cancelled'),
    });
  }
  for (const row of approvals) {
    const entry = out.get(row.build_id) ?? { buildId: row.build_id };
    entry.approval = {
      stageId: row.id,
      stage: row.name,
      decision: row.approval as 'approved' | 'rejected',
      by: row.approval_by ?? 'unknown',
      message: row.approval_message,
    };
    out.set(row.build_id, entry);
  }
  return [...out.values()];
}

/** Active builds (pending, running, waiting), oldest first; with `owner`, only those it holds. */
export async function listActiveBuilds(db: Kysely<Database>, owner?: string): Promise<Build[]> {
  let query = selectBuilds(db).where('b.status', 'in', ACTIVE_STATUSES).orderBy('b.id');
  if (owner !== undefined) query = query.where('b.lease_owner', '=', owner);
  return (await query.execute()).map(toBuild);
}

/**
 * Ends the records of a build that stopped without its runner: stages and steps that were
 * still going become `to` (e.g. `lost`), those that never started `skipped`.
 */
export async function closeOpenRecords(
  db: Kysely<Database>,
  buildId: number,
  to: Status,
  reason: Reason,
  now = Date.now(),
): Promise<void> {
  const columns = { reason_code: reason.code, reason_message: reason.message, finished_at: now };
  for (const table of ['stages', 'steps'] as const) {
    await db
      .updateTable(table)
      .set({ status: to, ...columns })
      .where('build_id', '=', buildId)
      .where('status', 'in', ['running', 'waiting', 'pending'])
      .execute();
    await db
      .updateTable(table)
      .set({ status: 'skipped', ...columns })
      .where('build_id', '=', buildId)
      .where('status', '=', 'queued')
      .execute();
  }
}
