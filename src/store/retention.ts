import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { writeTransaction } from './transaction.js';
import { TERMINAL_STATUSES } from './types.js';

/**
 * Rows of build retention (`src/server/retention.ts` runs it): each project's own policy, the
 * finished builds a policy lets go, and their deletion.
 */

const DAY_MS = 24 * 60 * 60 * 1000;

export interface RetentionPolicy {
  /** Keep this many newest builds; null/undefined: no count rule. */
  keepBuilds?: number | null;
  /** Keep builds finished within this many days; null/undefined: no age rule. */
  keepDays?: number | null;
}

/** Every project with its own retention settings (null where it has none), by id. */
export async function projectRetentions(
  db: Kysely<Database>,
): Promise<{ id: number; keepBuilds: number | null; keepDays: number | null }[]> {
  return db
    .selectFrom('projects')
    .leftJoin('project_retention', 'project_retention.project_id', 'projects.id')
    .select([
      'projects.id as id',
      'project_retention.keep_builds as keepBuilds',
      'project_retention.keep_days as keepDays',
    ])
    .orderBy('projects.id')
    .execute();
}

/**
 * Ids of a project's finished builds outside both rules (oldest first, at most `limit`): older
 * than its newest `keepBuilds` builds of any status, and finished (or, never started, created)
 * more than `keepDays` days before `now`. A null rule does not hold any build back.
 */
export async function expiredBuilds(
  db: Kysely<Database>,
  projectId: number,
  policy: { keepBuilds: number | null; keepDays: number | null },
  now: number,
  limit: number,
): Promise<number[]> {
  let query = db
    .selectFrom('builds')
    .select('id')
    .where('project_id', '=', projectId)
    .where('status', 'in', [...TERMINAL_STATUSES]);
  if (policy.keepBuilds !== null) {
    // The oldest build still among the newest `keepBuilds` (of any status): older ones are candidates.
    const boundary = await db
      .selectFrom('builds')
      .select('id')
      .where('project_id', '=', projectId)
      .orderBy('id', 'desc')
      .limit(1)
      .offset(Math.max(0, policy.keepBuilds - 1))
      .executeTakeFirst();
    if (boundary === undefined) return [];
    query = query.where('id', '<', boundary.id);
  }
  if (policy.keepDays !== null) {
    const cutoff = now - policy.keepDays * DAY_MS;
    query = query.where((eb) => eb(eb.fn.coalesce('finished_at', 'created_at'), '<', cutoff));
  }
  const rows = await query.orderBy('id').limit(limit).execute();
  return rows.map((r) => r.id);
}

/**
 * Deletes a finished build's row (its stages, steps and artifact rows cascade); false when it
 * is gone or no longer finished (a re-run never reuses a row, but the check costs nothing).
 */
export async function deleteFinishedBuild(db: Kysely<Database>, buildId: number): Promise<boolean> {
  const result = await writeTransaction(db, (tx) =>
    tx
      .deleteFrom('builds')
      .where('id', '=', buildId)
      .where('status', 'in', [...TERMINAL_STATUSES])
      .executeTakeFirst(),
  );
  return Number(result.numDeletedRows) > 0;
}

export async function getProjectRetention(db: Kysely<Database>, projectId: number): Promise<RetentionPolicy> {
  const row = await db
    .selectFrom('project_retention')
    .select(['keep_builds', 'keep_days'])
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  return { keepBuilds: row?.keep_builds ?? null, keepDays: row?.keep_days ?? null };
}

export async function setProjectRetention(
  db: Kysely<Database>,
  projectId: number,
  policy: RetentionPolicy,
  now = Date.now(),
): Promise<void> {
  const values = {
    keep_builds: policy.keepBuilds ?? null,
    keep_days: policy.keepDays ?? null,
    updated_at: now,
  };
  await db
    .insertInto('project_retention')
    .values({ project_id: projectId, ...values })
    .onConflict((oc) => oc.column('project_id').doUpdateSet(values))
    .execute();
}
