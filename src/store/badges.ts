import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { Status } from './types.js';

/**
 * Rows of `project_badges` (migration `0012_badges`) and the build a badge shows. A project
 * without a row has a private badge.
 */

export async function isBadgePublic(db: Kysely<Database>, projectId: number): Promise<boolean> {
  const row = await db
    .selectFrom('project_badges')
    .select('public')
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  return row?.public === 1;
}

export async function setBadgePublic(
  db: Kysely<Database>,
  projectId: number,
  isPublic: boolean,
  now = Date.now(),
): Promise<void> {
  const values = { public: isPublic ? 1 : 0, updated_at: now };
  await db
    .insertInto('project_badges')
    .values({ project_id: projectId, ...values })
    .onConflict((oc) => oc.column('project_id').doUpdateSet(values))
    .execute();
}

/** Statuses a badge reports as an outcome: what ran to an end (skipped builds ran nothing). */
const OUTCOMES: Status[] = ['success', 'failure', 'error', 'lost', 'cancelled'];
const ACTIVE: Status[] = ['queued', 'pending', 'running', 'waiting'];

/**
 * The status a branch's badge shows: that of its newest finished build, else of its newest
 * queued or running one (a branch still on its first build), else undefined. Only builds of
 * the branch itself count: pull-request builds (whose head branch may have any name, in a
 * fork too) and tag builds are left out.
 */
export async function branchStatus(
  db: Kysely<Database>,
  projectId: number,
  branch: string,
): Promise<Status | undefined> {
  const newest = (statuses: Status[]) =>
    db
      .selectFrom('builds')
      .select('status')
      .where('project_id', '=', projectId)
      .where('branch', '=', branch)
      .where('tag', 'is', null)
      .where('event', '!=', 'pull_request')
      .where('status', 'in', statuses)
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
  const row = (await newest(OUTCOMES)) ?? (await newest(ACTIVE));
  return row?.status;
}
