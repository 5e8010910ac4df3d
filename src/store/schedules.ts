import type { Kysely } from 'kysely';
import { StoreError } from './errors.js';
import type { Database } from './schema.js';
import type { ScheduleRow } from './schema-schedules.js';
import type { Status } from './types.js';

/**
 * Rows of build schedules. The values arrive checked by `src/server/schedules` (the cron
 * expression parsed, the time zone known, `nextRunAt` computed from them); this module
 * stores them, lists the due ones, and claims a tick so that exactly one replica runs it.
 */

export interface Schedule {
  id: number;
  projectId: number;
  name: string | null;
  cron: string;
  timezone: string;
  branch: string;
  enabled: boolean;
  /** The next tick (epoch ms); null while disabled. */
  nextRunAt: number | null;
  /** The last tick that started a build. */
  lastRunAt: number | null;
  /** The build that tick started (null once retention removed it). */
  lastBuild: { id: number; number: number; status: Status } | null;
  createdAt: number;
  updatedAt: number;
}

export interface NewSchedule {
  projectId: number;
  name: string | null;
  cron: string;
  timezone: string;
  branch: string;
  enabled: boolean;
  nextRunAt: number | null;
}

/** A change of a schedule; absent fields stay. `nextRunAt` comes with any change that moves it. */
export type SchedulePatch = Partial<Omit<NewSchedule, 'projectId'>>;

/** A schedule whose tick is due, as `dueSchedules` reads it: the tick is `nextRunAt`. */
export interface DueSchedule {
  id: number;
  projectId: number;
  name: string | null;
  cron: string;
  timezone: string;
  branch: string;
  nextRunAt: number;
}

export async function createSchedule(
  db: Kysely<Database>,
  input: NewSchedule,
  now: number = Date.now(),
): Promise<Schedule> {
  try {
    const row = await db
      .insertInto('schedules')
      .values({
        project_id: input.projectId,
        name: input.name,
        cron: input.cron,
        timezone: input.timezone,
        branch: input.branch,
        enabled: input.enabled ? 1 : 0,
        next_run_at: input.nextRunAt,
        last_run_at: null,
        last_build_id: null,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return (await getSchedule(db, row.id))!;
  } catch (cause) {
    if (/foreign key/i.test(String(cause))) {
      throw new StoreError('not_found', `project ${input.projectId} does not exist`, {
        cause,
        details: { projectId: input.projectId },
      });
    }
    throw cause;
  }
}

function selectSchedules(db: Kysely<Database>) {
  return db
    .selectFrom('schedules')
    .leftJoin('builds', 'builds.id', 'schedules.last_build_id')
    .selectAll('schedules')
    .select(['builds.number as build_number', 'builds.status as build_status']);
}

type JoinedRow = ScheduleRow & { build_number: number | null; build_status: Status | null };

function toSchedule(row: JoinedRow): Schedule {
  return {
    id: row.id,
    projectId: row.project_id,
    name: row.name,
    cron: row.cron,
    timezone: row.timezone,
    branch: row.branch,
    enabled: row.enabled !== 0,
    nextRunAt: row.next_run_at,
    lastRunAt: row.last_run_at,
    lastBuild:
      row.last_build_id !== null && row.build_number !== null && row.build_status !== null
        ? { id: row.last_build_id, number: row.build_number, status: row.build_status }
        : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function getSchedule(db: Kysely<Database>, id: number): Promise<Schedule | undefined> {
  const row = await selectSchedules(db).where('schedules.id', '=', id).executeTakeFirst();
  return row === undefined ? undefined : toSchedule(row);
}

/** A project's schedules, oldest first. */
export async function listSchedules(db: Kysely<Database>, projectId: number): Promise<Schedule[]> {
  const rows = await selectSchedules(db)
    .where('schedules.project_id', '=', projectId)
    .orderBy('schedules.id')
    .execute();
  return rows.map(toSchedule);
}

/** Changes a schedule; undefined when it does not exist. */
export async function updateSchedule(
  db: Kysely<Database>,
  id: number,
  patch: SchedulePatch,
  now: number = Date.now(),
): Promise<Schedule | undefined> {
  const set: Partial<Omit<ScheduleRow, 'id' | 'project_id'>> = { updated_at: now };
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.cron !== undefined) set.cron = patch.cron;
  if (patch.timezone !== undefined) set.timezone = patch.timezone;
  if (patch.branch !== undefined) set.branch = patch.branch;
  if (patch.enabled !== undefined) set.enabled = patch.enabled ? 1 : 0;
  if (patch.nextRunAt !== undefined) set.next_run_at = patch.nextRunAt;
  const result = await db.updateTable('schedules').set(set).where('id', '=', id).executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) return undefined;
  return getSchedule(db, id);
}

export async function deleteSchedule(db: Kysely<Database>, id: number): Promise<boolean> {
  const result = await db.deleteFrom('schedules').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Enabled schedules whose next tick is at or before `now`, earliest first, at most `limit`. */
export async function dueSchedules(db: Kysely<Database>, now: number, limit = 100): Promise<DueSchedule[]> {
  const rows = await db
    .selectFrom('schedules')
    .select(['id', 'project_id', 'name', 'cron', 'timezone', 'branch', 'next_run_at'])
    .where('enabled', '=', 1)
    .where('next_run_at', 'is not', null)
    .where('next_run_at', '<=', now)
    .orderBy('next_run_at')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    projectId: r.project_id,
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    branch: r.branch,
    nextRunAt: r.next_run_at!,
  }));
}

/**
 * Claims the tick `tick` of a schedule: moves `next_run_at` from `tick` to `next` in one
 * `UPDATE … WHERE next_run_at = tick`, so of replicas (or passes) that read the same due tick
 * exactly one changes the row; true for that one. On PostgreSQL a second claimer's UPDATE
 * waits for the first one's transaction and then finds the row moved on; on SQLite writes
 * are serialised. Run it in the transaction that creates the build, so that a failed build
 * creation gives the tick back.
 */
export async function claimScheduleTick(
  db: Kysely<Database>,
  id: number,
  tick: number,
  next: number | null,
  now: number = Date.now(),
): Promise<boolean> {
  const result = await db
    .updateTable('schedules')
    .set({ next_run_at: next, last_run_at: tick, updated_at: now })
    .where('id', '=', id)
    .where('enabled', '=', 1)
    .where('next_run_at', '=', tick)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Remembers the build a claimed tick started. */
export async function setScheduleBuild(db: Kysely<Database>, id: number, buildId: number): Promise<void> {
  await db.updateTable('schedules').set({ last_build_id: buildId }).where('id', '=', id).execute();
}
