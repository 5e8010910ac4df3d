import type { Generated, Selectable } from 'kysely';
import type { BuildEvent, Status } from '../pipeline/types.js';
import type { NotifyTargetsTable, ProjectHooksTable, WebhookDeliveriesTable } from './schema-hooks.js';
import type { ArtifactsTable, ProjectRetentionTable, SecretsTable } from './schema-secrets.js';
import type { ProjectBadgesTable } from './schema-badges.js';
import type { SessionsTable } from './schema-sessions.js';
import type { EmailDeliveriesTable, ProjectEmailTable } from './schema-email.js';
import type { SchedulesTable } from './schema-schedules.js';
import type { TestCasesTable, TestReportsTable } from './schema-reports.js';
import type { CachesTable } from './schema-caches.js';
import type { OidcLoginsTable, OidcUsersTable, UserSessionsTable } from './schema-oidc.js';
import type {
  CheckRunsTable,
  CommitStatusDeliveriesTable,
  ProjectCommitStatusTable,
} from './schema-commit-status.js';
import type { BuildTrigger, ConcurrencyPolicy, TokenRole } from './types.js';

/**
 * Row shapes as stored, in snake_case; repositories map them to the camelCase types of
 * `types.ts`. Times are epoch milliseconds (`bigint` on PostgreSQL, parsed to `number` by
 * `openDatabase`). Booleans are avoided (SQLite has none): `revoked_at` instead of `revoked`.
 */
export interface Database {
  installation: { id: string; created_at: string };
  projects: ProjectsTable;
  builds: BuildsTable;
  stages: StagesTable;
  steps: StepsTable;
  locks: LocksTable;
  tokens: TokensTable;
  sessions: SessionsTable;
  project_hooks: ProjectHooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  notify_targets: NotifyTargetsTable;
  secrets: SecretsTable;
  artifacts: ArtifactsTable;
  project_retention: ProjectRetentionTable;
  oidc_users: OidcUsersTable;
  user_sessions: UserSessionsTable;
  oidc_logins: OidcLoginsTable;
  project_commit_status: ProjectCommitStatusTable;
  commit_status_deliveries: CommitStatusDeliveriesTable;
  commit_status_check_runs: CheckRunsTable;
  project_badges: ProjectBadgesTable;
  project_email: ProjectEmailTable;
  email_deliveries: EmailDeliveriesTable;
  schedules: SchedulesTable;
  test_reports: TestReportsTable;
  test_cases: TestCasesTable;
  caches: CachesTable;
}

export interface ProjectsTable {
  id: Generated<number>;
  slug: string;
  repo_url: string;
  branch_filter: string;
  default_executor: string | null;
  default_image: string | null;
  concurrency_policy: ConcurrencyPolicy;
  max_running: number | null;
  /** Cap on one build's log in bytes; null: the server's default. */
  max_log_bytes: number | string | null;
  pipeline_path: string;
  /** Build-number counter, bumped in the transaction that inserts the build. */
  last_number: Generated<number>;
  created_at: number;
  updated_at: number;
}

export interface BuildsTable {
  id: Generated<number>;
  project_id: number;
  number: number;
  status: Status;
  reason_code: string | null;
  reason_message: string | null;
  branch: string;
  commit_sha: string | null;
  commit_message: string | null;
  /** `Name <e-mail>` or the name alone (migration 0017). */
  commit_author: string | null;
  /** The pull (GitLab: merge) request a `pull_request` build is for, when the webhook said (0017). */
  pull_request_number: number | null;
  tag: string | null;
  event: BuildEvent;
  trigger: BuildTrigger;
  triggered_by: string | null;
  created_at: number;
  queued_at: number;
  started_at: number | null;
  finished_at: number | null;
  duration_ms: number | null;
  rerun_of: number | null;
  /** 1: re-runs only what failed in `rerun_of`, reusing the rest (migration 0020). */
  rerun_failed: Generated<number>;
  executor: string | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  attempt: Generated<number>;
  /** Set when someone asked to cancel an active build; its owner stops it. */
  cancel_requested_at: number | null;
  cancel_reason_code: string | null;
  cancel_reason_message: string | null;
  /** Pull-request builds: 1 when the head repository is a fork, 0 when not; null when unknown or not a PR. */
  head_repo_fork: number | null;
  /** The compiled PipelinePlan as JSON, stored with the records: a successor resumes from it. */
  plan: string | null;
}

export interface StagesTable {
  id: Generated<number>;
  build_id: number;
  idx: number;
  name: string;
  status: Status;
  reason_code: string | null;
  reason_message: string | null;
  started_at: number | null;
  finished_at: number | null;
  duration_ms: number | null;
  /** `waiting` while the stage waits for a person, then `approved` or `rejected`. */
  approval: 'waiting' | 'approved' | 'rejected' | null;
  approval_by: string | null;
  approval_message: string | null;
  /** When the approval was decided (null while waiting). */
  approval_at: number | null;
  /** When the stage began to wait for a person. */
  approval_requested_at: number | null;
  /** When the decided build got a running slot back (see `claimNextBuilds`); null until then. */
  approval_resumed_at: number | null;
}

export interface StepsTable {
  id: Generated<number>;
  stage_id: number;
  build_id: number;
  idx: number;
  name: string;
  status: Status;
  exit_code: number | null;
  attempts: Generated<number>;
  reason_code: string | null;
  reason_message: string | null;
  started_at: number | null;
  finished_at: number | null;
  duration_ms: number | null;
  log_lines: Generated<number>;
  /** 1 when the pipeline allows the step to fail without failing its stage. */
  allow_failure: Generated<number>;
  /** 1 + the step's `retries`. */
  max_attempts: Generated<number>;
  /** The StepRef (JSON) of the running attempt, stored before its output is read; null before. */
  ref: string | null;
  /** When the attempt of `ref` began to run (after its pending phase): its timeout counts from here. */
  attempt_started_at: number | null;
  /** `{ attempt, exit }` (JSON): how the attempt of `ref` ended, stored before its release. */
  attempt_exit: string | null;
  /** A reused step (re-run failed, 0020): the build whose run it is, by id and number. */
  reused_from_build: number | null;
  reused_from_number: number | null;
}

/** One row per held project+branch lock; the primary key makes a second holder impossible. */
export interface LocksTable {
  project_id: number;
  branch: string;
  build_id: number;
  acquired_at: number;
}

export interface TokensTable {
  id: Generated<number>;
  name: string;
  role: TokenRole;
  /** Hex SHA-256 of the token; the token itself is never stored. */
  hash: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export type ProjectRow = Selectable<ProjectsTable>;
export type BuildRow = Selectable<BuildsTable>;
export type StageRow = Selectable<StagesTable>;
export type StepRow = Selectable<StepsTable>;
export type TokenRow = Selectable<TokensTable>;
