import type { Kysely } from 'kysely';
import { dialectOf } from './db.js';
import { StoreError } from './errors.js';
import { runKept } from './kept-query.js';
import { serialize } from './serialize.js';
import { selectBuilds, toBuild } from './rows.js';
import type { Database } from './schema.js';
import { relaxedTransaction, writeTransaction } from './transaction.js';
import { ACTIVE_STATUSES } from './types.js';
import type { Build, Status } from './types.js';

export interface QueueLimits {
  /** Builds holding a running slot at once across all projects and all server processes. */
  global: number;
}

/**
 * Statuses that hold a running slot. `waiting` does not: a build waiting for a person keeps
 * its branch lock (it is still active) but lets other builds run meanwhile.
 */
export const SLOT_STATUSES = ['pending', 'running'] as const satisfies readonly Status[];

export interface ClaimResult {
  /** Queued builds claimed for the caller: now `pending`, with its lease and their branch locks. */
  claimed: Build[];
  /**
   * Decided `waiting` builds that got a running slot back: now `running`, their approval's
   * `resumedAt` set. Their owner (whichever process holds the lease) goes on with them.
   */
  resumed: Build[];
}

/** Candidates read per query while looking for claimable builds. */
const CLAIM_BATCH = 200;

/** `claimSlots`, for callers that only start builds: the queued builds claimed. */
export async function claimNextBuilds(
  db: Kysely<Database>,
  owner: string,
  leaseMs: number,
  limits: QueueLimits,
  now: number = Date.now(),
): Promise<Build[]> {
  return (await claimSlots(db, owner, leaseMs, limits, now)).claimed;
}

/**
 * Hands out free running slots. First to builds waiting for approval whose approval was
 * decided, in decision order (they were started before anything queued, and a person is
 * watching them): such a build becomes `running` again and its approval's `resumedAt` is set,
 * which tells its owner to go on (see `pendingControl`). Then to queued builds, oldest first,
 * for server process `owner`: they become `pending` with a lease until `now + leaseMs`, take
 * their project+branch locks. A queued build is claimable when
 * - fewer than `limits.global` builds hold a slot (pending, running; `waiting` does not),
 * - its project has fewer than `max_running` builds holding a slot (when set),
 * - no build of its project+branch holds the branch lock (a `waiting` build does), and it is
 *   the oldest queued build of that branch (FIFO per branch; a blocked branch does not hold
 *   up other branches).
 * A decided build needs the same global and project slot; a cancelled one needs none (its
 * owner stops it where it waits), nor does one whose lease ran out (reconciliation's).
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
 *
 * The claim is a `relaxed` write (see `WriteOptions`): one a power cut takes leaves the build
 * queued, to be claimed again; a process still running it then fails to renew its lease and
 * lets go.
 */
export async function claimSlots(
  db: Kysely<Database>,
  owner: string,
  leaseMs: number,
  limits: QueueLimits,
  now: number = Date.now(),
): Promise<ClaimResult> {
  if (owner === '') throw new StoreError('invalid', 'lease owner is empty');
  const pg = dialectOf(db) === 'postgres';
  if (!(await mayHandOut(db, limits))) return { claimed: [], resumed: [] };
  return relaxedTransaction(db, async (trx) => {
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

    const perProject = await slotsByProject(trx);
    let active = [...perProject.values()].reduce((a, b) => a + b, 0);
    const claimed: number[] = [];
    const resumed: number[] = [];
    let cursor = 0;

    if (active < limits.global) {
      let decided = trx
        .selectFrom('builds as b')
        .innerJoin('stages as s', 's.build_id', 'b.id')
        .innerJoin('projects as p', 'p.id', 'b.project_id')
        .select(['b.id', 'b.project_id', 'p.max_running', 's.id as stage_id', 's.approval_at'])
        .where('b.status', '=', 'waiting')
        .where('b.cancel_requested_at', 'is', null)
        .where('b.lease_expires_at', '>=', now)
        .where('s.status', '=', 'waiting')
        .where('s.approval', 'in', ['approved', 'rejected'])
        .where('s.approval_resumed_at', 'is', null)
        .orderBy('s.approval_at')
        .orderBy('b.id');
      if (pg) decided = decided.forUpdate('b').skipLocked();
      for (const d of await decided.execute()) {
        if (active >= limits.global) break;
        const running = perProject.get(d.project_id) ?? 0;
        if (d.max_running !== null && running >= d.max_running) continue;
        const updated = await trx
          .updateTable('builds')
          .set({ status: 'running' })
          .where('id', '=', d.id)
          .where('status', '=', 'waiting')
          .where('cancel_requested_at', 'is', null)
          .returning('id')
          .executeTakeFirst();
        if (updated === undefined) continue;
        // `now` was read before this transaction waited for its turn: a decision committed in
        // between may be later. A build never goes on before it was decided.
        await trx
          .updateTable('stages')
          .set({ approval_resumed_at: Math.max(now, d.approval_at ?? now) })
          .where('id', '=', d.stage_id)
          .execute();
        perProject.set(d.project_id, running + 1);
        active += 1;
        resumed.push(d.id);
      }
    }

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

    const read = async (ids: number[]) =>
      ids.length === 0
        ? []
        : (await selectBuilds(trx).where('b.id', 'in', ids).orderBy('b.id').execute()).map(toBuild);
    return { claimed: await read(claimed), resumed: await read(resumed) };
  });
}

/**
 * Whether a claim could hand out anything: a slot is free, and a build is queued or waiting (a
 * waiting one may have been decided). Most wake-ups of a busy scheduler find every slot taken
 * (a trigger, a run's end after its successor was claimed), and this one read spares them the
 * write transaction and the claim's queries. A change after it wakes the scheduler again (or
 * its poll finds it), as with a claim that found nothing.
 */
async function mayHandOut(db: Kysely<Database>, limits: QueueLimits): Promise<boolean> {
  const { rows } = await runKept(
    db,
    'mayHandOut',
    [...SLOT_STATUSES, 'queued', 'waiting'],
    ([pending, running, queued, waiting]) =>
      db.selectNoFrom((eb) => [
        eb
          .selectFrom('builds')
          .select((s) => s.fn.countAll<number>().as('n'))
          .where('status', 'in', [pending, running])
          .$asScalar()
          .as('active'),
        eb
          .exists(eb.selectFrom('builds').select('id').where('status', 'in', [queued, waiting]))
          .as('candidates'),
      ]),
  );
  const row = rows[0]!;
  return Number(row.active) < limits.global && Boolean(row.candidates);
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
  /** Builds holding a running slot (pending, running) in all projects. */
  total: number;
  /** Builds holding a running slot per project id; projects with none are absent. */
  byProject: Map<number, number>;
}

/** Builds holding a running slot now (not those waiting for a person), for limits and metrics. */
export async function runningCounts(db: Kysely<Database>): Promise<RunningCounts> {
  const byProject = await slotsByProject(db);
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

async function slotsByProject(db: Kysely<Database>): Promise<Map<number, number>> {
  const { rows } = await runKept(db, 'slotsByProject', SLOT_STATUSES, ([pending, running]) =>
    db
      .selectFrom('builds')
      .select((eb) => ['project_id', eb.fn.countAll<number>().as('n')])
      .where('status', 'in', [pending, running])
      .groupBy('project_id'),
  );
  return new Map(rows.map((r) => [r.project_id, Number(r.n)]));
}
