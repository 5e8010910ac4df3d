import type { Selectable } from 'kysely';

/**
 * The badge table (migration `0012_badges`); read and written by `src/server/badges`.
 * Booleans are integers 0/1, times epoch milliseconds, as in `schema.ts`.
 */

/** Whether a project's status badge answers without a token; no row: it does not. */
export interface ProjectBadgesTable {
  project_id: number;
  public: number;
  updated_at: number;
}

export type ProjectBadgeRow = Selectable<ProjectBadgesTable>;
