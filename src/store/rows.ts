import type { Kysely } from 'kysely';
import type { BuildRow, Database, ProjectRow, StageRow, StepRow, TokenRow } from './schema.js';
import { parseReason } from '../contract/index.js';
import type { Build, Project, Reason, StageRecord, StepRecord, TokenInfo } from './types.js';

/** Internal: row ↔ domain mapping shared by the repositories. */

export function toProject(row: ProjectRow): Project {
  return {
    id: row.id,
    slug: row.slug,
    repoUrl: row.repo_url,
    branchFilter: row.branch_filter,
    defaultExecutor: row.default_executor,
    defaultImage: row.default_image,
    concurrencyPolicy: row.concurrency_policy,
    maxRunning: row.max_running,
    // PostgreSQL returns a bigint as a string.
    maxLogBytes: row.max_log_bytes === null ? null : Number(row.max_log_bytes),
    pipelinePath: row.pipeline_path,
    lastNumber: row.last_number,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Builds with their project's slug: the shape every build read returns. The slug comes from
 * a scalar subquery, not a join, so that the planner only ever chooses among the builds
 * indexes: with a join SQLite may drive the query from the tiny projects table and then
 * sort the builds instead of reading them in id order from an index.
 */
export function selectBuilds(db: Kysely<Database>) {
  return db
    .selectFrom('builds as b')
    .selectAll('b')
    .select((eb) =>
      eb
        .selectFrom('projects as p')
        .select('p.slug')
        .whereRef('p.id', '=', 'b.project_id')
        .$asScalar()
        .$notNull()
        .as('project_slug'),
    );
}

export function toBuild(row: BuildRow & { project_slug: string }): Build {
  return {
    id: row.id,
    projectId: row.project_id,
    projectSlug: row.project_slug,
    number: row.number,
    status: row.status,
    reason: toReason(row.reason_code, row.reason_message),
    branch: row.branch,
    commitSha: row.commit_sha,
    commitMessage: row.commit_message,
    commitAuthor: row.commit_author,
    pullRequest: row.pull_request_number,
    tag: row.tag,
    event: row.event,
    trigger: row.trigger,
    triggeredBy: row.triggered_by,
    createdAt: row.created_at,
    queuedAt: row.queued_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
    rerunOf: row.rerun_of,
    rerunFailed: row.rerun_failed === 1,
    executor: row.executor,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    attempt: row.attempt,
  };
}

export function toStage(row: StageRow, steps: StepRecord[]): StageRecord {
  return {
    id: row.id,
    buildId: row.build_id,
    idx: row.idx,
    name: row.name,
    status: row.status,
    reason: toReason(row.reason_code, row.reason_message),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
    steps,
  };
}

export function toStep(row: StepRow): StepRecord {
  return {
    id: row.id,
    stageId: row.stage_id,
    buildId: row.build_id,
    idx: row.idx,
    name: row.name,
    status: row.status,
    exitCode: row.exit_code,
    attempts: row.attempts,
    reason: toReason(row.reason_code, row.reason_message),
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    durationMs: row.duration_ms,
    logLines: row.log_lines,
    allowFailure: row.allow_failure !== 0,
    maxAttempts: row.max_attempts,
    reusedFrom:
      row.reused_from_build !== null && row.reused_from_number !== null
        ? { buildId: Number(row.reused_from_build), number: row.reused_from_number }
        : null,
  };
}

export function toToken(row: TokenRow): TokenInfo {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revoked: row.revoked_at !== null,
  };
}

/** A stored reason, typed again: a code this version does not know becomes `internal` (see parseReason). */
function toReason(code: string | null, message: string | null): Reason | null {
  return parseReason(code, message);
}

/** `reason` of an update as the two columns; `undefined` leaves them as they are. */
export function reasonColumns(
  reason: Reason | null | undefined,
): { reason_code: string | null; reason_message: string | null } | Record<string, never> {
  if (reason === undefined) return {};
  return { reason_code: reason?.code ?? null, reason_message: reason?.message ?? null };
}

/** Page size asked by a caller, clamped to something a single query should return. */
export function clampLimit(limit: number | undefined, fallback: number, max: number): number {
  if (limit === undefined || !Number.isFinite(limit)) return fallback;
  return Math.min(Math.max(Math.trunc(limit), 1), max);
}
