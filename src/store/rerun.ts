import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import { writeTransaction } from './transaction.js';

/** A step a "re-run failed" build takes from an earlier build instead of running it. */
export interface ReusedStep {
  /** The new build's step record. */
  stepId: number;
  /** `stage/step`: the key its artifacts are recorded under, in both builds. */
  key: string;
  /** The build whose run of the step is reused: the first real run along a chain of re-runs. */
  from: { buildId: number; number: number };
  exitCode: number | null;
  attempts: number;
  durationMs: number | null;
}

/**
 * Records the reused steps of a re-run build (`rerunOf` is the build it re-runs): each step
 * `success` with the build it comes from, and the artifacts those steps published in
 * `rerunOf` recorded for the new build too, pointing to the blobs where their bytes are (the
 * first real run's prefix: `blob_build_id`). Idempotent: a step already reused, or an
 * artifact path the new build has, is left as it is.
 */
export async function recordReusedSteps(
  db: Kysely<Database>,
  buildId: number,
  rerunOf: number,
  steps: readonly ReusedStep[],
  now = Date.now(),
): Promise<void> {
  if (steps.length === 0) return;
  await writeTransaction(db, async (trx) => {
    for (const step of steps) {
      await trx
        .updateTable('steps')
        .set({
          status: 'success',
          exit_code: step.exitCode,
          attempts: step.attempts,
          duration_ms: step.durationMs,
          reason_code: null,
          reason_message: null,
          reused_from_build: step.from.buildId,
          reused_from_number: step.from.number,
        })
        .where('id', '=', step.stepId)
        .where('build_id', '=', buildId)
        .where('status', '=', 'queued')
        .execute();
    }
    const keys = [...new Set(steps.map((s) => s.key))];
    const existing = new Set(
      (await trx.selectFrom('artifacts').select('path').where('build_id', '=', buildId).execute()).map(
        (r) => r.path,
      ),
    );
    // A stage of hundreds of steps stays under SQLite's bound-parameter limit in slices.
    for (let at = 0; at < keys.length; at += 200) {
      const rows = await trx
        .selectFrom('artifacts')
        .select(['step', 'path', 'size', 'sha256', 'build_id', 'blob_build_id'])
        .where('build_id', '=', rerunOf)
        .where('step', 'in', keys.slice(at, at + 200))
        .execute();
      const fresh = rows.filter((r) => !existing.has(r.path));
      if (fresh.length === 0) continue;
      await trx
        .insertInto('artifacts')
        .values(
          fresh.map((r) => ({
            build_id: buildId,
            step: r.step,
            path: r.path,
            size: r.size,
            sha256: r.sha256,
            created_at: now,
            blob_build_id: r.blob_build_id ?? r.build_id,
          })),
        )
        .execute();
    }
  });
}

/** Sets the stored log line count of a reused step once its earlier log is copied in. */
export async function setReusedLogLines(db: Kysely<Database>, stepId: number, lines: number): Promise<void> {
  await db.updateTable('steps').set({ log_lines: lines }).where('id', '=', stepId).execute();
}

/**
 * Which blob prefixes deleting a build may remove (retention): artifacts of reused steps share
 * the bytes of the build that ran them, so a build's prefix outlives its row while a later
 * build's artifacts still point at it, and goes with the last of those builds.
 * - `own`: whether the build's own prefix may go (no other build's artifacts point at it);
 * - `orphans`: other builds' prefixes only this build still pointed at, whose own builds are gone.
 * Read before the row is deleted; the rows are the truth, so a pass that fails half-way leaves
 * at worst bytes for a later pass, never a row without its bytes.
 */
export async function blobPrefixesToDelete(
  db: Kysely<Database>,
  buildId: number,
): Promise<{ own: boolean; orphans: number[] }> {
  const owners = await db
    .selectFrom('artifacts')
    .select('blob_build_id')
    .distinct()
    .where('build_id', '=', buildId)
    .where('blob_build_id', 'is not', null)
    .where('blob_build_id', '<>', buildId)
    .execute();
  const orphans: number[] = [];
  for (const { blob_build_id: owner } of owners) {
    if (owner === null) continue;
    const alive = await db.selectFrom('builds').select('id').where('id', '=', owner).executeTakeFirst();
    if (alive) continue;
    if (!(await pointedAtByOthers(db, owner, buildId))) orphans.push(Number(owner));
  }
  return { own: !(await pointedAtByOthers(db, buildId, buildId)), orphans };
}

/** Whether an artifact of a build other than `buildId` keeps its bytes under `prefixBuildId`'s prefix. */
async function pointedAtByOthers(
  db: Kysely<Database>,
  prefixBuildId: number,
  buildId: number,
): Promise<boolean> {
  const other = await db
    .selectFrom('artifacts')
    .select('build_id')
    .where('blob_build_id', '=', prefixBuildId)
    .where('build_id', '<>', buildId)
    .limit(1)
    .executeTakeFirst();
  return other !== undefined;
}

/** Builds followed back along a chain of re-runs at most (a chain is a person's clicks). */
const APPROVAL_CHAIN = 100;

/**
 * By stage name: where a person approved each stage of `buildId` for its commit, for a
 * "re-run failed" of it (`PreviousRun.approved`): the stage's own decision when it was
 * approved there; when it was not asked there because that build re-ran what failed and reused
 * some of the stage's steps, where it was approved in the build that one re-ran, and so on. A
 * stage that waited, was rejected, or ran without asking is not listed.
 */
export async function stageApprovals(
  db: Kysely<Database>,
  buildId: number,
): Promise<Record<string, { number: number; by?: string }>> {
  const approved: Record<string, { number: number; by?: string }> = {};
  let open: Set<string> | undefined; // stages still looked for; undefined: all of the first build
  const seen = new Set<number>();
  for (let id: number | null = buildId; id !== null && seen.size < APPROVAL_CHAIN && !seen.has(id);) {
    seen.add(id);
    const build = await db
      .selectFrom('builds')
      .select(['number', 'rerun_of', 'rerun_failed'])
      .where('id', '=', id)
      .executeTakeFirst();
    if (build === undefined) break;
    const stages = await db
      .selectFrom('stages')
      .select(['id', 'name', 'approval', 'approval_by'])
      .where('build_id', '=', id)
      .execute();
    const reusedIn = new Set(
      (
        await db
          .selectFrom('steps')
          .select('stage_id')
          .distinct()
          .where('build_id', '=', id)
          .where('reused_from_build', 'is not', null)
          .execute()
      ).map((r) => Number(r.stage_id)),
    );
    const next = new Set<string>();
    for (const stage of stages) {
      if (open !== undefined && !open.has(stage.name)) continue;
      if (stage.approval === 'approved') {
        approved[stage.name] = {
          number: Number(build.number),
          ...(stage.approval_by !== null ? { by: stage.approval_by } : {}),
        };
      } else if (stage.approval === null && reusedIn.has(Number(stage.id))) {
        next.add(stage.name);
      }
    }
    open = next;
    id =
      open.size > 0 && Number(build.rerun_failed) === 1 && build.rerun_of !== null
        ? Number(build.rerun_of)
        : null;
  }
  return approved;
}
