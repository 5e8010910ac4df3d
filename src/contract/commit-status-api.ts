/**
 * The calls of a project's forge commit-status settings (`GET|PUT|DELETE
 * /projects/{owner}/{name}/commit-status`), apart from the TypeBox schemas
 * (src/server/commit-status/routes.ts) so that the CLI and the web UI take them without the
 * server. A build's posts are `notificationEndpoints.commitStatuses`.
 */
import { projectPath, type Endpoint } from './api.js';

export const FORGES = ['github', 'gitlab', 'gitea'] as const;
/** `gitea` also means Forgejo. */
export type Forge = (typeof FORGES)[number];
/** `build`: one context `slipway`; `stage`: `slipway` and `slipway/<stage>` per stage. */
export const CONTEXT_MODES = ['build', 'stage'] as const;
export type ContextMode = (typeof CONTEXT_MODES)[number];
/** GitHub only: `auto` posts check runs where the token may, `off` commit statuses only. */
export const CHECKS_MODES = ['auto', 'off'] as const;
export type ChecksMode = (typeof CHECKS_MODES)[number];

/** What `PUT` takes: absent or null fields take their defaults (null: told from the repository URL). */
export interface CommitStatusSettingsUpdate {
  /** Default true. */
  enabled?: boolean;
  forge?: Forge | null;
  /** The forge's API base, `http(s)://…`. */
  apiUrl?: string | null;
  /** The repository on the forge, `owner/name` (GitLab: `group/sub/name`). */
  repository?: string | null;
  /** NAME of the project (or global) secret holding the forge token. */
  tokenSecret: string;
  contexts?: ContextMode;
  checks?: ChecksMode;
}

/** What `GET` and `PUT` answer; without settings, `tokenSecret` is null and `enabled` false. */
export interface CommitStatusView {
  enabled: boolean;
  forge: Forge | null;
  apiUrl: string | null;
  repository: string | null;
  tokenSecret: string | null;
  contexts: ContextMode;
  checks: ChecksMode;
  /** What the settings resolve to for the project's repository, or why they do not. */
  resolved: { forge: Forge; apiUrl: string; repository: string } | { error: string };
  tokenSecretExists: boolean;
}

const commitStatusPath = (slug: string) => `${projectPath(slug)}/commit-status`;

export const commitStatusEndpoints = {
  get: (slug: string): Endpoint<CommitStatusView> => ({ method: 'GET', path: commitStatusPath(slug) }),
  set: (slug: string, body: CommitStatusSettingsUpdate): Endpoint<CommitStatusView> => ({
    method: 'PUT',
    path: commitStatusPath(slug),
    body,
  }),
  remove: (slug: string): Endpoint<void> => ({ method: 'DELETE', path: commitStatusPath(slug) }),
} as const;
