import type { Kysely } from 'kysely';
import { StoreError, type Database } from '../../store/index.js';
import {
  DEFAULT_SCRIPTS_REF,
  storedHookSecret,
  writeHookSettings,
  type HookSettings,
  type HookSettingsWrite,
  type ScriptsSource,
} from '../../store/hooks.js';
import { isSafeRefName } from '../sources/git-checkout.js';

/**
 * A project's webhook settings as the API changes them: checked and sealed here, stored by
 * `src/store/hooks.ts` (whose reads and delivery records are re-exported for the hooks' users).
 */
export {
  DEFAULT_SCRIPTS_REF,
  STALE_PROCESSING_MS,
  claimDelivery,
  finishDelivery,
  releaseDelivery,
  findDelivery,
  pruneDeliveries,
  getHookSettings,
  saveScriptsSnapshot,
  scriptsProjects,
  setHeadRepoFork,
  headRepoFork,
} from '../../store/hooks.js';
export type {
  Delivery,
  DeliveryOutcome,
  HookSettings,
  ScriptsSnapshot,
  ScriptsSource,
} from '../../store/hooks.js';

/**
 * Encrypts the webhook secret at rest. The server wires the cipher of its secrets store here;
 * without one the secret is kept in plain text (it cannot be hashed: HMAC verification needs
 * the key itself).
 */
export interface SecretSealer {
  seal(plain: string): string | Promise<string>;
  open(sealed: string): string | Promise<string>;
}

export interface HookSettingsPatch {
  /** A new signing secret; null removes it. */
  secret?: string | null;
  buildTags?: boolean;
  buildPullRequests?: boolean;
  /** Point the project at a build-scripts repository, or (null) back at its `.slipway.yml`. */
  scripts?: { repoUrl: string; path?: string; ref?: string } | null;
}

/**
 * Changes a project's webhook settings (creating its row on first use). Pointing at another
 * scripts repository, path or branch drops the old snapshot: the next refresh takes a new one.
 * Throws `StoreError('invalid')` naming the field.
 */
export async function updateHookSettings(
  db: Kysely<Database>,
  projectId: number,
  patch: HookSettingsPatch,
  options: { sealer?: SecretSealer; now?: number } = {},
): Promise<HookSettings> {
  const write: HookSettingsWrite = {};
  if (patch.secret !== undefined) {
    if (patch.secret === null) {
      write.secret = null;
    } else {
      if (patch.secret.length < 8 || patch.secret.length > 1024)
        invalid('secret', 'the webhook secret must have 8 to 1024 characters');
      write.secret = options.sealer
        ? { stored: await options.sealer.seal(patch.secret), sealed: true }
        : { stored: patch.secret, sealed: false };
    }
  }
  if (patch.buildTags !== undefined) write.buildTags = patch.buildTags;
  if (patch.buildPullRequests !== undefined) write.buildPullRequests = patch.buildPullRequests;
  if (patch.scripts !== undefined)
    write.scripts = patch.scripts === null ? null : validScripts(patch.scripts);
  return writeHookSettings(db, projectId, write, options.now ?? Date.now());
}

/** The secret deliveries for this project are checked against, opened; undefined when none is set. */
export async function hookSecret(
  db: Kysely<Database>,
  projectId: number,
  sealer?: SecretSealer,
): Promise<string | undefined> {
  const secret = await storedHookSecret(db, projectId);
  if (secret === undefined) return undefined;
  if (!secret.sealed) return secret.stored;
  if (!sealer)
    throw new Error(
      `the webhook secret of project ${projectId} is encrypted but the server has no secret key to open it`,
    );
  return sealer.open(secret.stored);
}

const REPO_URL = /^(?:(?:https?|ssh|git|file):\/\/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+)$/;

/** True for a git URL Slipway may fetch: http(s), ssh, git, file or scp-like `user@host:path`. */
export function isRepoUrl(url: string): boolean {
  return REPO_URL.test(url) && !url.startsWith('-');
}

/** Normalizes a scripts path: relative, inside the repository, without `..`; `.` for the root. */
export function scriptsPathOf(path: string): string | undefined {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (path.startsWith('/') || parts.some((p) => p === '..' || p.startsWith('-'))) return undefined;
  // eslint-disable-next-line no-control-regex -- control characters are what it rejects
  if (/[\x00-\x1f\x7f\\]/.test(path)) return undefined;
  return parts.length === 0 ? '.' : parts.join('/');
}

function validScripts(input: { repoUrl: string; path?: string; ref?: string }): ScriptsSource {
  const repoUrl = input.repoUrl.trim();
  if (!isRepoUrl(repoUrl))
    invalid(
      'scripts.repoUrl',
      `"${input.repoUrl}" is not a git repository URL (https://, ssh://, git://, file:// or user@host:path)`,
    );
  const path = scriptsPathOf(input.path ?? '.');
  if (path === undefined)
    invalid('scripts.path', `scripts path "${input.path}" must be relative and stay inside the repository`);
  const ref = input.ref ?? DEFAULT_SCRIPTS_REF;
  if (!isSafeRefName(ref)) invalid('scripts.ref', `"${ref}" is not a valid branch name`);
  return { repoUrl, path, ref };
}

function invalid(field: string, message: string): never {
  throw new StoreError('invalid', message, { details: { field } });
}
