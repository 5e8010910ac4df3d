import type { Generated, Selectable } from 'kysely';

/**
 * Tables of the forge webhooks, build-scripts repositories and notifications (migration
 * `0004_webhooks`); read and written by `src/server/hooks` and `src/server/notify`. Booleans
 * are integers 0/1, times epoch milliseconds, as in `schema.ts`.
 */

/** Webhook settings of one project; a project without a row has the defaults. */
export interface ProjectHooksTable {
  project_id: number;
  /**
   * Key that forges sign deliveries with (HMAC) or send as a token (GitLab). It must be
   * kept, not hashed: HMAC verification needs the key itself. Sealed by the server's secret
   * cipher when `secret_sealed` is 1, plain text when 0.
   */
  secret: string | null;
  secret_sealed: Generated<number>;
  /** Tag pushes start builds (default 1). */
  build_tags: Generated<number>;
  /** Pull/merge requests opened, updated with new commits or reopened start builds (default 1). */
  build_pull_requests: Generated<number>;
  /** Build-scripts repository: when set, builds run its `build.sh` instead of `.slipway.yml`. */
  scripts_repo_url: string | null;
  /** Folder in the scripts repository holding `project.json` and `build.sh`. */
  scripts_path: string | null;
  /** Branch of the scripts repository to follow; null = `main`. */
  scripts_ref: string | null;
  /** Snapshot taken by the last refresh: the commit, the descriptor (JSON) and `build.sh`. */
  scripts_commit: string | null;
  scripts_descriptor: string | null;
  scripts_build_sh: string | null;
  scripts_refreshed_at: number | null;
  updated_at: number;
}

/** One row per webhook delivery a forge made, so that a redelivery starts no second build. */
export interface WebhookDeliveriesTable {
  id: Generated<number>;
  forge: string;
  /** The forge's delivery id; unique per forge. */
  delivery_id: string;
  project_id: number | null;
  /** The forge's event name (`push`, `Merge Request Hook`, …). */
  event: string | null;
  received_at: number;
  /** `processing` while being handled, then `build`, `ignored`, `rejected` or `pong`. */
  outcome: string;
  /** Why nothing was built, for `ignored` and `rejected`. */
  message: string | null;
  build_id: number | null;
}

/** Where build notifications go: one project's builds, or every project's when `project_id` is null. */
export interface NotifyTargetsTable {
  id: Generated<number>;
  project_id: number | null;
  url: string;
  /** 1: post a Slack-compatible `{text, attachments}` payload instead of Slipway's JSON. */
  slack: Generated<number>;
  /** Comma-separated: `started`, `finished`, `failed` (finished with a status other than success). */
  events: string;
  created_at: number;
}

export type ProjectHooksRow = Selectable<ProjectHooksTable>;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type NotifyTargetRow = Selectable<NotifyTargetsTable>;
