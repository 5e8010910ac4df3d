import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { selectBuilds, toBuild } from './rows.js';
import { writeTransaction } from './transaction.js';
import { ACTIVE_STATUSES, type Build, type Reason, type Status } from './types.js';

/** What the owner of an active build has been asked to do. */
export interface ControlRequest {
  buildId: number;
  cancel?: Reason;
  approval?: { stageId: number; decision: 'approved' | 'rejected'; by: string; message: string | null };
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
    .set({ status: 'waiting', approval: 'waiting', approval_at: now, started_at: now })
    .where('id', '=', stageId)
    .execute();
}

/**
 * Decides the approval a build waits on. Only a stage that is still `waiting` can be decided,
 * so two people clicking at once get one decision. Returns the stage's name, or undefined
 * when the build waits for nothing.
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
    await trx
      .updateTable('stages')
      .set({ approval: decision, approval_by: by, approval_message: message, approval_at: now })
      .where('id', '=', stage.id)
      .where('approval', '=', 'waiting')
      .execute();
    return stage.name;
  });
}

/** Cancel requests and approval decisions for the given (active, owned) builds. */
export async function pendingControl(
  db: Kysely<Database>,
  buildIds: readonly number[],
): Promise<ControlRequest[]> {
  if (buildIds.length === 0) return [];
  const cancels = await db
    .selectFrom('builds')
    .select(['id', 'cancel_reason_code', 'cancel_reason_message'])
    .where('id', 'in', buildIds)
    .where('cancel_requested_at', 'is not', null)
    .execute();
  const approvals = await db
    .selectFrom('stages')
    .select(['id', 'build_id', 'approval', 'approval_by', 'approval_message'])
    .where('build_id', 'in', buildIds)
    .where('status', '=', 'waiting')
    .where('approval', 'in', ['approved', 'rejected'])
    .execute();
  const out = new Map<number, ControlRequest>();
  for (const row of cancels) {
    out.set(row.id, {
      buildId: row.id,
      cancel: {
        code: row.cancel_reason_code ?? 'cancelled',
        message: row.cancel_reason_message ?? 'cancelled',
      },
    });
  }
  for (const row of approvals) {
    const entry = out.get(row.build_id) ?? { buildId: row.build_id };
    entry.approval = {
      stageId: row.id,
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
