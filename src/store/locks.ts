import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { BranchLock } from './types.js';

/** Held project+branch locks, for the CLI's queue view and for diagnosis. */
export async function listLocks(db: Kysely<Database>, projectId?: number): Promise<BranchLock[]> {
  let query = db.selectFrom('locks').selectAll().orderBy('project_id').orderBy('branch');
  if (projectId !== undefined) query = query.where('project_id', '=', projectId);
  const rows = await query.execute();
  return rows.map((r) => ({
    projectId: r.project_id,
    branch: r.branch,
    buildId: r.build_id,
    acquiredAt: r.acquired_at,
  }));
}

/**
 * Drops a branch lock by hand (an operator's "unlock"), so the next queued build of the
 * branch may start although the holder is still active. Normally never needed: ending a
 * build releases its lock, and claims drop locks of builds that are no longer active.
 * Returns whether a lock was held.
 */
export async function releaseLock(db: Kysely<Database>, projectId: number, branch: string): Promise<boolean> {
  const result = await db
    .deleteFrom('locks')
    .where('project_id', '=', projectId)
    .where('branch', '=', branch)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}
