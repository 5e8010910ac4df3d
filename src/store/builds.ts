import { sql } from 'kysely';
import type { Kysely, UpdateObject } from 'kysely';
import { StoreError } from './errors.js';
import { runKept } from './kept-query.js';
import { clampLimit, reasonColumns, selectBuilds, toBuild } from './rows.js';
import type { Database } from './schema.js';
import { relaxedTransaction, writeTransaction, type WriteOptions } from './transaction.js';
import { isActiveStatus, isTerminalStatus } from './types.js';
import type { Build, BuildEvent, BuildTrigger, Reason, Status } from './types.js';

export interface NewBuild {
  projectId: number;
  /** The ref the build locks on (for a tag build, pass the tag or the branch it came from). */
  branch: string;
  event: BuildEvent;
  trigger: BuildTrigger;
  commitSha?: string | null;
  commitMessage?: string | null;
  /** `Name <e-mail>` or the name alone. */
  commitAuthor?: string | null;
  /** Pull-request builds: the request's number on the forge. */
  pullRequest?: number | null;
  tag?: string | null;
  triggeredBy?: string | null;
  rerunOf?: number | null;
  /** With `rerunOf`: re-run only what failed there. */
  rerunFailed?: boolean;
  executor?: string | null;
}

/**
 * Queues a new build with the project's next number. The number is taken by
 * `UPDATE projects SET last_number = last_number + 1 … RETURNING` in the transaction that
 * inserts the build: concurrent creators of one project queue on that row (PostgreSQL row
 * lock, SQLite write lock), and a rolled-back insert gives its number back, so numbers are
 * 1, 2, … without gaps or duplicates. Throws `not_found` for an unknown project.
 */
export async function createBuild(
  db: Kysely<Database>,
  input: NewBuild,
  now: number = Date.now(),
): Promise<Build> {
  return writeTransaction(db, async (trx) => {
    const project = await trx
      .updateTable('projects')
      .set({ last_number: sql<number>`last_number + 1` })
      .where('id', '=', input.projectId)
      .returning(['last_number', 'slug'])
      .executeTakeFirst();
    if (project === undefined) {
      throw new StoreError('not_found', `project ${input.projectId} does not exist`, {
        details: { projectId: input.projectId },
      });
    }
    const row = await trx
      .insertInto('builds')
      .values({
        project_id: input.projectId,
        number: project.last_number,
        status: 'queued',
        reason_code: null,
        reason_message: null,
        branch: input.branch,
        commit_sha: input.commitSha ?? null,
        commit_message: input.commitMessage ?? null,
        commit_author: input.commitAuthor ?? null,
        pull_request_number: input.pullRequest ?? null,
        tag: input.tag ?? null,
        event: input.event,
        trigger: input.trigger,
        triggered_by: input.triggeredBy ?? null,
        created_at: now,
        queued_at: now,
        started_at: null,
        finished_at: null,
        duration_ms: null,
        rerun_of: input.rerunOf ?? null,
        ...(input.rerunFailed ? { rerun_failed: 1 } : {}),
        executor: input.executor ?? null,
        lease_owner: null,
        lease_expires_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toBuild({ ...row, project_slug: project.slug });
  });
}

export async function getBuild(db: Kysely<Database>, id: number): Promise<Build | undefined> {
  const { rows } = await runKept(db, 'getBuild', [id], ([buildId]) =>
    selectBuilds(db).where('b.id', '=', buildId),
  );
  return rows[0] && toBuild(rows[0]);
}

export async function getBuildByNumber(
  db: Kysely<Database>,
  projectId: number,
  number: number,
): Promise<Build | undefined> {
  const row = await selectBuilds(db)
    .where('b.project_id', '=', projectId)
    .where('b.number', '=', number)
    .executeTakeFirst();
  return row && toBuild(row);
}

export interface BuildFilter {
  projectId?: number;
  /** Any of these statuses; empty or absent = all. */
  status?: readonly Status[];
  branch?: string;
  /** Keyset cursor: only builds with a smaller id (the `nextBefore` of the previous page). */
  before?: number;
  /** Default 50, at most 500. */
  limit?: number;
}

export interface BuildPage {
  /** Newest first. */
  builds: Build[];
  /** Cursor of the next (older) page; null on the last page. */
  nextBefore: number | null;
}

/**
 * Lists builds newest first, a page at a time. Keyset paging by id (not OFFSET) keeps every
 * page an index range scan, as fast at build 100 000 as at build 1.
 */
export async function listBuilds(db: Kysely<Database>, filter: BuildFilter = {}): Promise<BuildPage> {
  const limit = clampLimit(filter.limit, 50, 500);
  const rows = await listBuildsQuery(db, filter, limit + 1).execute();
  const builds = rows.slice(0, limit).map(toBuild);
  return { builds, nextBefore: rows.length > limit ? builds[builds.length - 1]!.id : null };
}

/** Internal (exported for the query-plan test): the query behind `listBuilds`. */
export function listBuildsQuery(db: Kysely<Database>, filter: BuildFilter, rows: number) {
  let query = selectBuilds(db).orderBy('b.id', 'desc').limit(rows);
  if (filter.projectId !== undefined) query = query.where('b.project_id', '=', filter.projectId);
  if (filter.status !== undefined && filter.status.length > 0)
    query = query.where('b.status', 'in', filter.status);
  if (filter.branch !== undefined) query = query.where('b.branch', '=', filter.branch);
  if (filter.before !== undefined) query = query.where('b.id', '<', filter.before);
  return query;
}

export interface BuildStatusFields {
  /** null clears it. */
  reason?: Reason | null;
  commitSha?: string;
  commitMessage?: string;
  commitAuthor?: string;
  executor?: string;
  /** Default when entering `running`: now, unless already set. */
  startedAt?: number;
  /** Default when entering a terminal status: now. */
  finishedAt?: number;
  /** Default when entering a terminal status: finishedAt − startedAt (null if it never started). */
  durationMs?: number;
  /** Apply only while this process holds the build's lease (a guard, not a value to write). */
  ifLeaseOwner?: string;
  now?: number;
  /** Default `full`; `relaxed` for a build's progress (see `WriteOptions`). */
  durability?: WriteOptions['durability'];
}

/**
 * Moves a build from one of `from` to `to`, atomically: it applies only if the build's
 * status is still one of `from` (and, with `ifLeaseOwner`, the lease is still ours), so two
 * actors racing (a cancel and a finish, two servers reconciling) cannot both win. Returns
 * the updated build, or undefined if the guard did not hold (or there is no such build).
 *
 * Entering a terminal status (or `lost`) fills finish time and duration, clears the lease
 * and releases the branch lock. Entering `queued` (re-queue after the owner died) clears the
 * lease, releases the lock and resets `queuedAt`. Becoming active from any other status
 * (`queued`, or a terminal one) is refused: only `claimNextBuilds` takes the lock and a slot.
 */
export async function setBuildStatus(
  db: Kysely<Database>,
  id: number,
  from: readonly Status[],
  to: Status,
  fields: BuildStatusFields = {},
): Promise<Build | undefined> {
  if (from.length === 0) return undefined;
  if (isActiveStatus(to) && !from.every(isActiveStatus)) {
    // Becoming active takes the branch lock and a slot under the limits: claim's job alone.
    throw new StoreError('invalid', `a build becomes ${to} from queued only through claimNextBuilds`, {
      details: { id, from, to },
    });
  }
  const now = fields.now ?? Date.now();
  const set: UpdateObject<Database, 'builds'> = { status: to, ...reasonColumns(fields.reason) };
  if (fields.commitSha !== undefined) set.commit_sha = fields.commitSha;
  if (fields.commitMessage !== undefined) set.commit_message = fields.commitMessage;
  if (fields.commitAuthor !== undefined) set.commit_author = fields.commitAuthor;
  if (fields.executor !== undefined) set.executor = fields.executor;
  if (fields.startedAt !== undefined) set.started_at = fields.startedAt;
  else if (to === 'running') set.started_at = sql<number>`coalesce(started_at, ${now})`;

  const releases = isTerminalStatus(to) || to === 'queued';
  if (isTerminalStatus(to)) {
    const finishedAt = fields.finishedAt ?? now;
    set.finished_at = finishedAt;
    set.duration_ms =
      fields.durationMs ??
      (fields.startedAt !== undefined
        ? finishedAt - fields.startedAt
        : sql<number | null>`case when started_at is null then null else ${finishedAt} - started_at end`);
  } else {
    if (fields.finishedAt !== undefined) set.finished_at = fields.finishedAt;
    if (fields.durationMs !== undefined) set.duration_ms = fields.durationMs;
  }
  if (releases) {
    set.lease_owner = null;
    set.lease_expires_at = null;
  }
  if (to === 'queued') set.queued_at = now;

  const transaction = fields.durability === 'relaxed' ? relaxedTransaction : writeTransaction;
  return transaction(db, async (trx) => {
    let update = trx.updateTable('builds').set(set).where('id', '=', id).where('status', 'in', from);
    if (fields.ifLeaseOwner !== undefined) update = update.where('lease_owner', '=', fields.ifLeaseOwner);
    const changed = await update.returning('id').executeTakeFirst();
    if (changed === undefined) return undefined;
    if (releases) await trx.deleteFrom('locks').where('build_id', '=', id).execute();
    const build = await getBuild(trx, id);
    if (build === undefined) throw new StoreError('not_found', `build ${id} does not exist`);
    return build;
  });
}
