import type { Generated, Selectable } from 'kysely';

/**
 * Tables of forge commit statuses (migration `0015_commit_status`); read and written by
 * `src/store/commit-status.ts` for `src/server/commit-status`.
 */

/** A project's commit-status settings; no row: statuses are off. */
export interface ProjectCommitStatusTable {
  project_id: number;
  /** 1: post statuses; 0: settings kept, nothing posted. */
  enabled: number;
  /** `github`, `gitlab` or `gitea`; null: from the repository URL's host. */
  forge: string | null;
  /** The forge's API base URL; null: the default for the forge and host. */
  api_url: string | null;
  /** The repository's path on the forge (`owner/name`); null: from the repository URL. */
  repository: string | null;
  /** NAME of the Slipway secret (project's, else global) that holds the token; never the token. */
  token_secret: string;
  /** `build` (context `slipway`) or `stage` (`slipway` and `slipway/<stage>`). */
  contexts: string;
  /** `auto`: GitHub check runs where the token may create them, else statuses; `off`: statuses (0018). */
  checks: Generated<string>;
  updated_at: number;
}

/** One status post's outcome, after its retries. */
export interface CommitStatusDeliveriesTable {
  id: Generated<number>;
  build_id: number;
  /** `status` (a commit status) or `check` (a GitHub check run), 0018. */
  kind: Generated<string>;
  forge: string;
  context: string;
  /** The state as the forge names it (`pending`, `running`, `success`, `failed`, …). */
  state: string;
  /** `delivered` or `failed`. */
  outcome: string;
  /** The forge's last answer; null after a network error or when nothing was sent. */
  http_status: number | null;
  attempts: number;
  /** Why it failed (never the token). */
  message: string | null;
  created_at: number;
}

/** The GitHub check run made for a build's context (0018): later moments update it. */
export interface CheckRunsTable {
  build_id: number;
  context: string;
  check_run_id: number;
  created_at: number;
}

export type ProjectCommitStatusRow = Selectable<ProjectCommitStatusTable>;
export type CommitStatusDeliveryRow = Selectable<CommitStatusDeliveriesTable>;
