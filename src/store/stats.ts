import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** How many recent successful builds the average is taken over. */
export const STATS_WINDOW = 20;

export interface ProjectStats {
  /** Mean duration of the last successful builds, rounded; null before the first one. */
  avgDurationMs: number | null;
  /** How many builds the mean is over (≤ STATS_WINDOW). */
  samples: number;
}

/**
 * Average duration of the project's last 20 successful builds: the expected length of the
 * next one, for progress bars and ETAs. Failed and cancelled builds are left out, as they
 * stop early and would make every estimate too short.
 */
export async function projectStats(db: Kysely<Database>, projectId: number): Promise<ProjectStats> {
  const rows = await db
    .selectFrom('builds')
    .select('duration_ms')
    .where('project_id', '=', projectId)
    .where('status', '=', 'success')
    .where('duration_ms', 'is not', null)
    .orderBy('id', 'desc')
    .limit(STATS_WINDOW)
    .execute();
  if (rows.length === 0) return { avgDurationMs: null, samples: 0 };
  const total = rows.reduce((sum, r) => sum + (r.duration_ms ?? 0), 0);
  return { avgDurationMs: Math.round(total / rows.length), samples: rows.length };
}
