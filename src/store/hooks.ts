import type { Kysely } from 'kysely';
import { StoreError } from './errors.js';
import type { Database } from './schema.js';
import type { ProjectHooksRow, WebhookDeliveryRow } from './schema-hooks.js';

/**
 * Rows of the forge webhooks: a project's hook settings and build-scripts snapshot, the
 * deliveries remembered for idempotency, and whether a pull request's head is a fork. The
 * values arrive checked (and the secret sealed) by `src/server/hooks`; this module only
 * stores and reads them.
 */

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

/** A change of a project's hook settings, with values already checked; absent fields stay. */
export interface HookSettingsWrite {
  /** The secret as it is kept (sealed or plain), or null to remove it. */
  secret?: { stored: string; sealed: boolean } | null;
  buildTags?: boolean;
  buildPullRequests?: boolean;
  /** Another scripts source (or none) drops the old snapshot: the next refresh takes a new one. */
  scripts?: ScriptsSource | null;
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
 * Writes a project's hook settings (creating its row on first use). Throws
 * `StoreError('not_found')` for an unknown project.
 */
export async function writeHookSettings(
  db: Kysely<Database>,
  projectId: number,
  write: HookSettingsWrite,
  now: number = Date.now(),
): Promise<HookSettings> {
  const set: Partial<Omit<ProjectHooksRow, 'project_id'>> = { updated_at: now };
  if (write.secret !== undefined) {
    set.secret = write.secret?.stored ?? null;
    set.secret_sealed = write.secret?.sealed === true ? 1 : 0;
  }
  if (write.buildTags !== undefined) set.build_tags = write.buildTags ? 1 : 0;
  if (write.buildPullRequests !== undefined) set.build_pull_requests = write.buildPullRequests ? 1 : 0;
  if (write.scripts !== undefined) {
    set.scripts_repo_url = write.scripts?.repoUrl ?? null;
    set.scripts_path = write.scripts?.path ?? null;
    set.scripts_ref = write.scripts?.ref ?? null;
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

/** The webhook secret as kept (sealed or not); undefined when none is set. */
export async function storedHookSecret(
  db: Kysely<Database>,
  projectId: number,
): Promise<{ stored: string; sealed: boolean } | undefined> {
  const row = await db
    .selectFrom('project_hooks')
    .select(['secret', 'secret_sealed'])
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  if (!row || row.secret === null) return undefined;
  return { stored: row.secret, sealed: row.secret_sealed !== 0 };
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

/** Forgets a claimed delivery that is still `processing`, so that the forge's redelivery is handled anew. */
export async function releaseDelivery(db: Kysely<Database>, id: number): Promise<void> {
  await db
    .deleteFrom('webhook_deliveries')
    .where('id', '=', id)
    .where('outcome', '=', 'processing')
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

/** The delivery a forge sent with this id, if it is remembered. */
export async function findDelivery(
  db: Kysely<Database>,
  forge: string,
  deliveryId: string,
): Promise<Delivery | undefined> {
  const row = await db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('forge', '=', forge)
    .where('delivery_id', '=', deliveryId)
    .executeTakeFirst();
  return row && toDelivery(row);
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
