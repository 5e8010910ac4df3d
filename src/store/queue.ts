import type { Kysely } from 'kysely';
import { dialectOf } from './db.js';
import { StoreError } from './errors.js';
import { serialize } from './serialize.js';
import { selectBuilds, toBuild } from './rows.js';
import type { Database } from './schema.js';
import { writeTransaction } from './transaction.js';
import { ACTIVE_STATUSES } from './types.js';
import type { Build } from './types.js';

export interface QueueLimits {
  /** Active builds allowed at once across all projects and all server processes. */
  global: number;
}

/** Candidates read per query while looking for claimable builds. */
const CLAIM_BATCH = 200;

/**
 * Claims the queued builds that may start now, oldest first, for server process `owner`:
 * marks them `pending` with a lease until `now + leaseMs`, takes their project+branch
 * locks, and returns them. A build is claimable when
 * - fewer than `limits.global` builds are active (pending, running, waiting),
 * - its project has fewer than `max_running` active builds (when set),
 * - no build of its project+branch holds the branch lock, and it is the oldest queued build
 *   of that branch (FIFO per branch; a blocked branch does not hold up other branches).
 *
 * Safety with several processes: the whole decision runs in one write transaction that is
 * serialised with every other claim. On PostgreSQL a transaction-scoped advisory lock does
 * that. Row locks alone (`FOR UPDATE SKIP LOCKED`) would keep two claimers off the same
 * row but not off the same *limit*: both would count the same running set and together
 * exceed it, or claim two different builds of one branch. After the advisory lock each
 * READ COMMITTED statement sees every claim committed before, so counts are exact. The
 * candidate query still uses `FOR UPDATE OF b SKIP LOCKED`, so a claim never waits behind a
 * row another transaction is changing (a cancel); such a build is simply left for the next
 * claim. Each claim is also a guarded `UPDATE … WHERE status = 'queued'`, and the lock
 * table's primary key makes two holders of one branch impossible whatever happens. On
 * SQLite, `BEGIN IMMEDIATE` holds the database's single write lock for the transaction.
 *
 * Locks left behind by builds that are no longer active are dropped first, so a stray lock
 * can delay a branch by at most one claim, never block it for good.
 */
export async function claimNextBuilds(
  db: Kysely<Database>,
  owner: string,
  leaseMs: number,
  limits: QueueLimits,
  now: number = Date.now(),
): Promise<Build[]> {
  if (owner === '') throw new StoreError('invalid', 'lease owner is empty');
  const pg = dialectOf(db) === 'postgres';
  return writeTransaction(db, async (trx) => {
    await serialize(trx, 'queue');
    await trx
      .deleteFrom('locks')
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('builds')
              .select('builds.id')
              .whereRef('builds.id', '=', 'locks.build_id')
              .where('builds.status', 'in', ACTIVE_STATUSES),
          ),
        ),
      )
      .execute();

    const perProject = await activeByProject(trx);
    let active = [...perProject.values()].reduce((a, b) => a + b, 0);
    const claimed: number[] = [];
    let cursor = 0;

    while (active < limits.global) {
      let query = trx
        .selectFrom('builds as b')
        .innerJoin('projects as p', 'p.id', 'b.project_id')
        .select(['b.id', 'b.project_id', 'b.branch', 'p.max_running'])
        .where('b.status', '=', 'queued')
        .where('b.id', '>', cursor)
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('locks as l')
                .select('l.build_id')
                .whereRef('l.project_id', '=', 'b.project_id')
                .whereRef('l.branch', '=', 'b.branch'),
            ),
          ),
        )
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('builds as o')
                .select('o.id')
                .where('o.status', '=', 'queued')
                .whereRef('o.project_id', '=', 'b.project_id')
                .whereRef('o.branch', '=', 'b.branch')
                .whereRef('o.id', '<', 'b.id'),
            ),
          ),
        )
        .orderBy('b.id')
        .limit(CLAIM_BATCH);
      if (pg) query = query.forUpdate('b').skipLocked();
      const candidates = await query.execute();

      for (const c of candidates) {
        cursor = c.id;
        if (active >= limits.global) break;
        const running = perProject.get(c.project_id) ?? 0;
        if (c.max_running !== null && running >= c.max_running) continue;
        const updated = await trx
          .updateTable('builds')
          .set((eb) => ({
            status: 'pending',
            lease_owner: owner,
            lease_expires_at: now + leaseMs,
            attempt: eb('attempt', '+', 1),
          }))
          .where('id', '=', c.id)
          .where('status', '=', 'queued')
          .returning('id')
          .executeTakeFirst();
        if (updated === undefined) continue;
        await trx
          .insertInto('locks')
          .values({ project_id: c.project_id, branch: c.branch, build_id: c.id, acquired_at: now })
          .execute();
        perProject.set(c.project_id, running + 1);
        active += 1;
        claimed.push(c.id);
      }
      if (candidates.length < CLAIM_BATCH) break;
    }

    if (claimed.length === 0) return [];
    const rows = await selectBuilds(trx).where('b.id', 'in', claimed).orderBy('b.id').execute();
    return rows.map(toBuild);
  });
}

/**
 * Extends the leases of builds that `owner` still holds to `until`. Returns the ids renewed:
 * an id missing from the answer is no longer ours (finished, or taken over after our lease
 * expired) and its work must stop.
 */
export async function renewLeases(
  db: Kysely<Database>,
  owner: string,
  ids: readonly number[],
  until: number,
): Promise<number[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .updateTable('builds')
    .set({ lease_expires_at: until })
    .where('id', 'in', ids)
    .where('lease_owner', '=', owner)
    .where('status', 'in', ACTIVE_STATUSES)
    .returning('id')
    .execute();
  return rows.map((r) => r.id).sort((a, b) => a - b);
}

/**
 * Active builds whose lease ran out before `now`: their owner stopped renewing, most likely
 * because it died. Reconciliation re-attaches (`takeOverLease`) or ends them (`setBuildStatus`
 * with `from` = their current status, e.g. to `lost` or back to `queued`).
 */
export async function findExpiredLeases(db: Kysely<Database>, now: number = Date.now()): Promise<Build[]> {
  const rows = await selectBuilds(db)
    .where('b.status', 'in', ACTIVE_STATUSES)
    .where('b.lease_expires_at', '<', now)
    .orderBy('b.id')
    .execute();
  return rows.map(toBuild);
}

/**
 * Makes `owner` the lease holder of an active build whose lease expired before `now` (or
 * that `owner` holds already), until `until`. Of several processes trying at once exactly one
 * succeeds; it returns the build, the others get undefined. The branch lock stays with the
 * build.
 */
export async function takeOverLease(
  db: Kysely<Database>,
  id: number,
  owner: string,
  until: number,
  now: number = Date.now(),
): Promise<Build | undefined> {
  return writeTransaction(db, async (trx) => {
    const taken = await trx
      .updateTable('builds')
      .set({ lease_owner: owner, lease_expires_at: until })
      .where('id', '=', id)
      .where('status', 'in', ACTIVE_STATUSES)
      .where((eb) => eb.or([eb('lease_expires_at', '<', now), eb('lease_owner', '=', owner)]))
      .returning('id')
      .executeTakeFirst();
    if (taken === undefined) return undefined;
    return toBuild(await selectBuilds(trx).where('b.id', '=', id).executeTakeFirstOrThrow());
  });
}

export interface Superseded {
  /** Older queued builds of the branch, now `cancelled` (reason `superseded`). */
  cancelled: Build[];
  /** Older active builds of the branch: the caller stops their executor work, then ends them. */
  active: Build[];
}

/**
 * Applies the `supersede` policy for a new build: older builds of the same project+branch
 * give way to it. Queued ones are cancelled here, atomically, so none can be claimed in
 * between; active ones are returned, because only the scheduler can stop their work.
 */
export async function supersede(
  db: Kysely<Database>,
  projectId: number,
  branch: string,
  newBuildId: number,
  now: number = Date.now(),
): Promise<Superseded> {
  return writeTransaction(db, async (trx) => {
    const newer = await trx
      .selectFrom('builds')
      .select('number')
      .where('id', '=', newBuildId)
      .executeTakeFirst();
    if (newer === undefined) {
      throw new StoreError('not_found', `build ${newBuildId} does not exist`, {
        details: { id: newBuildId },
      });
    }
    const cancelledIds = await trx
      .updateTable('builds')
      .set({
        status: 'cancelled',
        reason_code: 'superseded',
        reason_message: `superseded by build #${newer.number}`,
        finished_at: now,
      })
      .where('project_id', '=', projectId)
      .where('branch', '=', branch)
      .where('status', '=', 'queued')
      .where('id', '<', newBuildId)
      .returning('id')
      .execute();
    const older = (q: ReturnType<typeof selectBuilds>) =>
      q.where('b.project_id', '=', projectId).where('b.branch', '=', branch).where('b.id', '<', newBuildId);
    const cancelled =
      cancelledIds.length === 0
        ? []
        : await selectBuilds(trx)
            .where(
              'b.id',
              'in',
              cancelledIds.map((r) => r.id),
            )
            .orderBy('b.id')
            .execute();
    const active = await older(selectBuilds(trx))
      .where('b.status', 'in', ACTIVE_STATUSES)
      .orderBy('b.id')
      .execute();
    return { cancelled: cancelled.map(toBuild), active: active.map(toBuild) };
  });
}

export interface RunningCounts {
  /** Active builds (pending, running, waiting) in all projects. */
  total: number;
  /** Active builds per project id; projects with none are absent. */
  byProject: Map<number, number>;
}

/** Active builds now, for limits and metrics. */
export async function runningCounts(db: Kysely<Database>): Promise<RunningCounts> {
  const byProject = await activeByProject(db);
  return { total: [...byProject.values()].reduce((a, b) => a + b, 0), byProject };
}

/** Number of queued builds (the queue depth metric). */
export async function queueDepth(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('builds')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'queued')
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function activeByProject(db: Kysely<Database>): Promise<Map<number, number>> {
  const rows = await db
    .selectFrom('builds')
    .select((eb) => ['project_id', eb.fn.countAll<number>().as('n')])
    .where('status', 'in', ACTIVE_STATUSES)
    .groupBy('project_id')
    .execute();
  return new Map(rows.map((r) => [r.project_id, Number(r.n)]));
}
