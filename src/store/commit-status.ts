import type { Kysely } from 'kysely';
import { runKept } from './kept-query.js';
import type { Database } from './schema.js';
import type { CommitStatusDeliveryRow } from './schema-commit-status.js';

/**
 * Rows of forge commit statuses (`src/server/commit-status` checks the values and posts the
 * statuses): a project's settings, and the outcome of each post.
 */

export type ForgeKind = 'github' | 'gitlab' | 'gitea';
export type ContextMode = 'build' | 'stage';
/** GitHub check runs: `auto` where the token may create them (else statuses), `off` statuses only. */
export type ChecksMode = 'auto' | 'off';

export interface CommitStatusSettings {
  enabled: boolean;
  /** null: from the repository URL's host. */
  forge: ForgeKind | null;
  /** null: the forge's default for the repository's host. */
  apiUrl: string | null;
  /** `owner/name` (GitLab: the full path) on the forge; null: from the repository URL (a mirror or a local path needs it). */
  repository: string | null;
  /** Name of the secret holding the token. */
  tokenSecret: string;
  contexts: ContextMode;
  /** Absent when set: `auto`. Ignored on GitLab and Gitea. */
  checks?: ChecksMode;
}

export async function getCommitStatusSettings(
  db: Kysely<Database>,
  projectId: number,
): Promise<CommitStatusSettings | undefined> {
  const { rows } = await runKept(db, 'getCommitStatusSettings', [projectId], ([id]) =>
    db.selectFrom('project_commit_status').selectAll().where('project_id', '=', id),
  );
  const row = rows[0];
  if (row === undefined) return undefined;
  return {
    enabled: Number(row.enabled) === 1,
    forge: (row.forge as ForgeKind | null) ?? null,
    apiUrl: row.api_url,
    repository: row.repository,
    tokenSecret: row.token_secret,
    contexts: row.contexts === 'stage' ? 'stage' : 'build',
    checks: row.checks === 'off' ? 'off' : 'auto',
  };
}

export async function putCommitStatusSettings(
  db: Kysely<Database>,
  projectId: number,
  settings: CommitStatusSettings,
  now = Date.now(),
): Promise<void> {
  const values = {
    enabled: settings.enabled ? 1 : 0,
    forge: settings.forge,
    api_url: settings.apiUrl,
    repository: settings.repository,
    token_secret: settings.tokenSecret,
    contexts: settings.contexts,
    checks: settings.checks ?? 'auto',
    updated_at: now,
  };
  await db
    .insertInto('project_commit_status')
    .values({ project_id: projectId, ...values })
    .onConflict((oc) => oc.column('project_id').doUpdateSet(values))
    .execute();
}

export async function deleteCommitStatusSettings(db: Kysely<Database>, projectId: number): Promise<boolean> {
  const result = await db
    .deleteFrom('project_commit_status')
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

export interface CommitStatusDelivery {
  id: number;
  buildId: number;
  /** A commit status, or a GitHub check run (absent when added: `status`). */
  kind?: 'status' | 'check';
  /** `unknown` when the forge could not be told. */
  forge: ForgeKind | 'unknown';
  context: string;
  state: string;
  outcome: 'delivered' | 'failed';
  httpStatus: number | null;
  attempts: number;
  message: string | null;
  createdAt: number;
}

export async function addCommitStatusDelivery(
  db: Kysely<Database>,
  delivery: Omit<CommitStatusDelivery, 'id' | 'createdAt'>,
  now = Date.now(),
): Promise<void> {
  await db
    .insertInto('commit_status_deliveries')
    .values({
      build_id: delivery.buildId,
      kind: delivery.kind ?? 'status',
      forge: delivery.forge,
      context: delivery.context,
      state: delivery.state,
      outcome: delivery.outcome,
      http_status: delivery.httpStatus,
      attempts: delivery.attempts,
      message: delivery.message,
      created_at: now,
    })
    .execute();
}

/** A build's status posts, oldest first. */
export async function listCommitStatusDeliveries(
  db: Kysely<Database>,
  buildId: number,
): Promise<CommitStatusDelivery[]> {
  const rows = await db
    .selectFrom('commit_status_deliveries')
    .selectAll()
    .where('build_id', '=', buildId)
    .orderBy('id')
    .execute();
  return rows.map(toDelivery);
}

function toDelivery(row: CommitStatusDeliveryRow): CommitStatusDelivery {
  return {
    id: Number(row.id),
    buildId: Number(row.build_id),
    kind: row.kind === 'check' ? 'check' : 'status',
    forge: row.forge as ForgeKind | 'unknown',
    context: row.context,
    state: row.state,
    outcome: row.outcome === 'delivered' ? 'delivered' : 'failed',
    httpStatus: row.http_status === null ? null : Number(row.http_status),
    attempts: Number(row.attempts),
    message: row.message,
    createdAt: Number(row.created_at),
  };
}

/** The GitHub check runs made for a build, by context. */
export async function getCheckRuns(db: Kysely<Database>, buildId: number): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('commit_status_check_runs')
    .select(['context', 'check_run_id'])
    .where('build_id', '=', buildId)
    .execute();
  return new Map(rows.map((r) => [r.context, Number(r.check_run_id)]));
}

/** Remembers the check run made for a build's context (the first one kept if two raced). */
export async function putCheckRun(
  db: Kysely<Database>,
  run: { buildId: number; context: string; checkRunId: number },
  now = Date.now(),
): Promise<void> {
  await db
    .insertInto('commit_status_check_runs')
    .values({ build_id: run.buildId, context: run.context, check_run_id: run.checkRunId, created_at: now })
    .onConflict((oc) => oc.columns(['build_id', 'context']).doNothing())
    .execute();
}
