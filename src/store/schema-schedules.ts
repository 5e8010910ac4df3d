import type { Generated, Selectable } from 'kysely';

/**
 * The schedules table (migration `0014_schedules`); read and written by `src/store/schedules.ts`
 * for `src/server/schedules`. Booleans are integers 0/1, times epoch milliseconds, as in
 * `schema.ts`.
 */
export interface SchedulesTable {
  id: Generated<number>;
  project_id: number;
  /** A label for people (`nightly`); null: none. */
  name: string | null;
  /** Five-field cron expression or an alias (`@daily`), checked when written. */
  cron: string;
  /** IANA time zone the expression is read in (`Europe/Berlin`, `UTC`). */
  timezone: string;
  branch: string;
  enabled: Generated<number>;
  /** The next tick; null while disabled (or when the expression matches no date any more). */
  next_run_at: number | null;
  /** The last tick that started a build. */
  last_run_at: number | null;
  last_build_id: number | null;
  created_at: number;
  updated_at: number;
}

export type ScheduleRow = Selectable<SchedulesTable>;
