import type { Generated, Selectable } from 'kysely';

/**
 * Tables of secrets, artifacts and retention (migration `0003_secrets_artifacts`); read and
 * written by `src/server/secrets`, `src/server/artifacts` and `src/server/retention.ts`.
 * Booleans are integers 0/1, times epoch milliseconds, as in `schema.ts`.
 */

/** A secret of one project, or a global one (`project_id` null); the value only sealed. */
export interface SecretsTable {
  id: Generated<number>;
  project_id: number | null;
  name: string;
  /** `v1.<iv>.<tag>.<ciphertext>` (base64url): AES-256-GCM, bound to project and name. */
  value_sealed: string;
  /** 1: also given to pull-request builds whose head repository is a fork. */
  allow_forks: number;
  created_at: number;
  updated_at: number;
}

/** A file a step published; its bytes are in the blob store under `artifacts/<build_id>/<path>`. */
export interface ArtifactsTable {
  id: Generated<number>;
  build_id: number;
  /** `stage/step` that published it. */
  step: string;
  /** Workspace-relative, `/`-separated, unique per build. */
  path: string;
  size: number;
  sha256: string;
  created_at: number;
  /** A reused step's artifact: the build whose blob prefix holds its bytes (null: its own). */
  blob_build_id: number | null;
}

/** A project's own retention, overriding the server's defaults field by field (null = default). */
export interface ProjectRetentionTable {
  project_id: number;
  /** Keep this many newest finished builds. */
  keep_builds: number | null;
  /** Keep finished builds younger than this many days. */
  keep_days: number | null;
  updated_at: number;
}

export type SecretRow = Selectable<SecretsTable>;
export type ArtifactRow = Selectable<ArtifactsTable>;
export type ProjectRetentionRow = Selectable<ProjectRetentionTable>;
