import type { Kysely } from 'kysely';
import { approvalsOf } from './control.js';
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
 * stop early and would make every estimate too short. Time a build spent waiting for a person
 * (and then for a running slot) is left out too: it says nothing about the next build's
 * length, and the UI measures the running build the same way.
 */
export async function projectStats(db: Kysely<Database>, projectId: number): Promise<ProjectStats> {
  const rows = await db
    .selectFrom('builds')
    .select(['id', 'duration_ms'])
    .where('project_id', '=', projectId)
    .where('status', '=', 'success')
    .where('duration_ms', 'is not', null)
    .orderBy('id', 'desc')
    .limit(STATS_WINDOW)
    .execute();
  if (rows.length === 0) return { avgDurationMs: null, samples: 0 };
  const approvals = await approvalsOf(
    db,
    rows.map((r) => r.id),
  );
  const waited = (id: number) =>
    (approvals.get(id) ?? []).reduce(
      (sum, a) =>
        a.requestedAt !== null && a.resumedAt !== null ? sum + Math.max(0, a.resumedAt - a.requestedAt) : sum,
      0,
    );
  const total = rows.reduce((sum, r) => sum + Math.max(0, (r.duration_ms ?? 0) - waited(r.id)), 0);
  return { avgDurationMs: Math.round(total / rows.length), samples: rows.length };
}
