import type { Kysely } from 'kysely';
import { StoreError, type Database } from '../../store/index.js';
import type { ProjectHooksRow, WebhookDeliveryRow } from '../../store/schema-hooks.js';
import { isSafeRefName } from '../sources/git-checkout.js';

/**
 * Encrypts the webhook secret at rest. The server wires the cipher of its secrets store here;
 * without one the secret is kept in plain text (it cannot be hashed: HMAC verification needs
 * the key itself).
 */
export interface SecretSealer {
  seal(plain: string): string | Promise<string>;
  open(sealed: string): string | Promise<string>;
}

/** A project's webhook settings; a project that never set any has the defaults. */
export interface HookSettings {
  projectId: number;
  /** Whether a signing secret is set (the secret itself is never returned). */
  secretSet: boolean;
  buildTags: boolean;
  buildPullRequests: boolean;
  /** The build-scripts repository the project's builds run `build.sh` from, if any. */
  scripts: ScriptsSource | null;
  /** What the last refresh of the scripts repository found. */
  snapshot: ScriptsSnapshot | null;
}

export interface ScriptsSource {
  repoUrl: string;
  /** Folder holding `project.json` and `build.sh`; `.` for the repository's root. */
  path: string;
  /** Branch of the scripts repository. */
  ref: string;
}

export interface ScriptsSnapshot {
  commit: string;
  /** The descriptor as validated (`image`, `branches`, `repo`). */
  descriptor: Record<string, string>;
  buildSh: string;
  refreshedAt: number;
}

export interface HookSettingsPatch {
  /** A new signing secret; null removes it. */
  secret?: string | null;
  buildTags?: boolean;
  buildPullRequests?: boolean;
  /** Point the project at a build-scripts repository, or (null) back at its `.slipway.yml`. */
  scripts?: { repoUrl: string; path?: string; ref?: string } | null;
}

export const DEFAULT_SCRIPTS_REF = 'main';

const DEFAULTS = {
  secretSet: false,
  buildTags: true,
  buildPullRequests: true,
  scripts: null,
  snapshot: null,
};

export async function getHookSettings(db: Kysely<Database>, projectId: number): Promise<HookSettings> {
  const row = await db
    .selectFrom('project_hooks')
    .selectAll()
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  return row ? toSettings(row) : { projectId, ...DEFAULTS };
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
  const now = options.now ?? Date.now();
  const set: Partial<Omit<ProjectHooksRow, 'project_id'>> = { updated_at: now };
  if (patch.secret !== undefined) {
    if (patch.secret === null) {
      set.secret = null;
      set.secret_sealed = 0;
    } else {
      if (patch.secret.length < 8 || patch.secret.length > 1024)
        invalid('secret', 'the webhook secret must have 8 to 1024 characters');
      set.secret = options.sealer ? await options.sealer.seal(patch.secret) : patch.secret;
      set.secret_sealed = options.sealer ? 1 : 0;
    }
  }
  if (patch.buildTags !== undefined) set.build_tags = patch.buildTags ? 1 : 0;
  if (patch.buildPullRequests !== undefined) set.build_pull_requests = patch.buildPullRequests ? 1 : 0;
  if (patch.scripts !== undefined) {
    const scripts = patch.scripts === null ? null : validScripts(patch.scripts);
    set.scripts_repo_url = scripts?.repoUrl ?? null;
    set.scripts_path = scripts?.path ?? null;
    set.scripts_ref = scripts?.ref ?? null;
    set.scripts_commit = null;
    set.scripts_descriptor = null;
    set.scripts_build_sh = null;
    set.scripts_refreshed_at = null;
  }
  try {
    const row = await db
      .insertInto('project_hooks')
      .values({
        project_id: projectId,
        secret: null,
        scripts_repo_url: null,
        scripts_path: null,
        scripts_ref: null,
        ...set,
        updated_at: now,
      })
      .onConflict((oc) => oc.column('project_id').doUpdateSet(set))
      .returningAll()
      .executeTakeFirstOrThrow();
    return toSettings(row);
  } catch (cause) {
    if (/foreign key|violates foreign key/i.test(String(cause))) {
      throw new StoreError('not_found', `project ${projectId} does not exist`, {
        cause,
        details: { projectId },
      });
    }
    throw cause;
  }
}

/** The secret deliveries for this project are checked against, opened; undefined when none is set. */
export async function hookSecret(
  db: Kysely<Database>,
  projectId: number,
  sealer?: SecretSealer,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('project_hooks')
    .select(['secret', 'secret_sealed'])
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  if (!row || row.secret === null) return undefined;
  if (row.secret_sealed === 0) return row.secret;
  if (!sealer)
    throw new Error(
      `the webhook secret of project ${projectId} is encrypted but the server has no secret key to open it`,
    );
  return sealer.open(row.secret);
}

/** Stores what a scripts-repository refresh found (inside the caller's transaction, if any). */
export async function saveScriptsSnapshot(
  db: Kysely<Database>,
  projectId: number,
  snapshot: ScriptsSnapshot,
): Promise<void> {
  await db
    .updateTable('project_hooks')
    .set({
      scripts_commit: snapshot.commit,
      scripts_descriptor: JSON.stringify(snapshot.descriptor),
      scripts_build_sh: snapshot.buildSh,
      scripts_refreshed_at: snapshot.refreshedAt,
      updated_at: snapshot.refreshedAt,
    })
    .where('project_id', '=', projectId)
    .execute();
}

/** Ids of the projects whose builds come from a build-scripts repository, with that source. */
export async function scriptsProjects(
  db: Kysely<Database>,
): Promise<{ projectId: number; source: ScriptsSource }[]> {
  const rows = await db
    .selectFrom('project_hooks')
    .select(['project_id', 'scripts_repo_url', 'scripts_path', 'scripts_ref'])
    .where('scripts_repo_url', 'is not', null)
    .execute();
  return rows.map((r) => ({
    projectId: r.project_id,
    source: {
      repoUrl: r.scripts_repo_url!,
      path: r.scripts_path ?? '.',
      ref: r.scripts_ref ?? DEFAULT_SCRIPTS_REF,
    },
  }));
}

// --- deliveries -------------------------------------------------------------------------

export type DeliveryOutcome = 'processing' | 'build' | 'ignored' | 'rejected' | 'pong';

export interface Delivery {
  id: number;
  forge: string;
  deliveryId: string;
  projectId: number | null;
  outcome: DeliveryOutcome;
  message: string | null;
  buildId: number | null;
  receivedAt: number;
}

/** A delivery left `processing` this long (its server died mid-way) may be taken over by a redelivery. */
export const STALE_PROCESSING_MS = 60_000;

/**
 * Records that a delivery is being handled, unless it was seen before: then returns the
 * earlier record and claims nothing. The unique (forge, delivery id) key makes two
 * concurrent deliveries of the same id claim it once. A record stuck in `processing` for
 * longer than `STALE_PROCESSING_MS` is taken over.
 */
export async function claimDelivery(
  db: Kysely<Database>,
  input: { forge: string; deliveryId: string; projectId: number; event: string },
  now: number = Date.now(),
): Promise<{ claimed: true; id: number } | { claimed: false; earlier: Delivery }> {
  const inserted = await db
    .insertInto('webhook_deliveries')
    .values({
      forge: input.forge,
      delivery_id: input.deliveryId,
      project_id: input.projectId,
      event: input.event,
      received_at: now,
      outcome: 'processing',
      message: null,
      build_id: null,
    })
    .onConflict((oc) => oc.columns(['forge', 'delivery_id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  if (inserted) return { claimed: true, id: inserted.id };
  const retaken = await db
    .updateTable('webhook_deliveries')
    .set({ received_at: now, project_id: input.projectId, event: input.event })
    .where('forge', '=', input.forge)
    .where('delivery_id', '=', input.deliveryId)
    .where('outcome', '=', 'processing')
    .where('received_at', '<', now - STALE_PROCESSING_MS)
    .returning('id')
    .executeTakeFirst();
  if (retaken) return { claimed: true, id: retaken.id };
  const earlier = await db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('forge', '=', input.forge)
    .where('delivery_id', '=', input.deliveryId)
    .executeTakeFirstOrThrow();
  return { claimed: false, earlier: toDelivery(earlier) };
}

/** Records how a claimed delivery ended. */
export async function finishDelivery(
  db: Kysely<Database>,
  id: number,
  result: {
    outcome: Exclude<DeliveryOutcome, 'processing'>;
    message?: string | null;
    buildId?: number | null;
  },
): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ outcome: result.outcome, message: result.message ?? null, build_id: result.buildId ?? null })
    .where('id', '=', id)
    .execute();
}

/** Forgets deliveries received before `before`; returns how many. Forges redeliver within hours, not weeks. */
export async function pruneDeliveries(db: Kysely<Database>, before: number): Promise<number> {
  const result = await db
    .deleteFrom('webhook_deliveries')
    .where('received_at', '<', before)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

// --- pull requests from forks ------------------------------------------------------------

/** Records whether a pull-request build's head repository is a fork. */
export async function setHeadRepoFork(db: Kysely<Database>, buildId: number, fork: boolean): Promise<void> {
  await db
    .updateTable('builds')
    .set({ head_repo_fork: fork ? 1 : 0 })
    .where('id', '=', buildId)
    .execute();
}

/**
 * Whether a build's head repository is a fork: true/false for pull-request builds from a
 * webhook, null when unknown (not a pull request, triggered by hand, or read before the
 * webhook wrote it). Treat null on a `pull_request` build as a fork.
 */
export async function headRepoFork(db: Kysely<Database>, buildId: number): Promise<boolean | null> {
  const row = await db
    .selectFrom('builds')
    .select('head_repo_fork')
    .where('id', '=', buildId)
    .executeTakeFirst();
  return row === undefined || row.head_repo_fork === null ? null : row.head_repo_fork === 1;
}

// --- internals ----------------------------------------------------------------------------

function toSettings(row: ProjectHooksRow): HookSettings {
  const scripts =
    row.scripts_repo_url === null
      ? null
      : {
          repoUrl: row.scripts_repo_url,
          path: row.scripts_path ?? '.',
          ref: row.scripts_ref ?? DEFAULT_SCRIPTS_REF,
        };
  const snapshot =
    row.scripts_commit === null || row.scripts_build_sh === null || row.scripts_refreshed_at === null
      ? null
      : {
          commit: row.scripts_commit,
          descriptor: JSON.parse(row.scripts_descriptor ?? '{}') as Record<string, string>,
          buildSh: row.scripts_build_sh,
          refreshedAt: row.scripts_refreshed_at,
        };
  return {
    projectId: row.project_id,
    secretSet: row.secret !== null,
    buildTags: row.build_tags === 1,
    buildPullRequests: row.build_pull_requests === 1,
    scripts,
    snapshot,
  };
}

function toDelivery(row: WebhookDeliveryRow): Delivery {
  return {
    id: row.id,
    forge: row.forge,
    deliveryId: row.delivery_id,
    projectId: row.project_id,
    outcome: row.outcome as DeliveryOutcome,
    message: row.message,
    buildId: row.build_id,
    receivedAt: row.received_at,
  };
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
