/**
 * Retention: old finished builds are deleted with their logs and artifacts, per project,
 * in the background. A project keeps at least its newest `keepBuilds` builds *and* every
 * build of the last `keepDays` days; a build is deleted only when it is outside both (so a
 * project that has not built for months keeps its last builds, and a busy one keeps its
 * recent days). With only one of the two set, that one decides; with neither, nothing is
 * deleted. Projects override the server's defaults field by field (`project_retention`).
 * Queued and active builds are never touched.
 */
import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import type { BlobStore } from '../blobs/types.js';
import type { Database } from '../store/index.js';
import {
  deleteFinishedBuild,
  expiredBuilds,
  getProjectRetention,
  projectRetentions,
  setProjectRetention,
  type RetentionPolicy,
} from '../store/retention.js';
import { blobPrefixesToDelete } from '../store/rerun.js';
import { ADMIN, VIEWER, projectOr404 } from './api/context.js';
import type { App } from './api/context.js';
import { ProjectParams } from './api/schemas.js';
import { artifactPrefix } from './artifacts/store.js';
import type { LogStore } from './logs/types.js';

/** Builds deleted per project per pass: a big backlog is worked off over several passes. */
const BATCH = 200;

export { getProjectRetention, setProjectRetention } from '../store/retention.js';
export type { RetentionPolicy } from '../store/retention.js';

export interface RetentionDeps {
  db: Kysely<Database>;
  logs: LogStore;
  /** Where artifacts live; without it only logs and rows are deleted. */
  blobs?: BlobStore;
  /** The server's defaults (`--keep-builds`, `--keep-days`). */
  defaults: RetentionPolicy;
  now?: () => number;
  /** A pass failed (it is retried at the next interval). */
  onError?: (error: unknown) => void;
  /** Builds a pass deleted, for the server log. */
  onDeleted?: (buildIds: number[]) => void;
}

/** One retention pass over every project; resolves to the ids of the deleted builds. */
export async function applyRetention(deps: RetentionDeps): Promise<number[]> {
  const { db } = deps;
  const now = (deps.now ?? Date.now)();
  const deleted: number[] = [];
  for (const project of await projectRetentions(db)) {
    const keepBuilds = project.keepBuilds ?? deps.defaults.keepBuilds ?? null;
    const keepDays = project.keepDays ?? deps.defaults.keepDays ?? null;
    if (keepBuilds === null && keepDays === null) continue;
    for (const id of await expiredBuilds(db, project.id, { keepBuilds, keepDays }, now, BATCH)) {
      if (await deleteBuild(deps, id)) deleted.push(id);
    }
  }
  if (deleted.length > 0) deps.onDeleted?.(deleted);
  return deleted;
}

/**
 * Runs {@link applyRetention} now and every `intervalMs` (one pass at a time); returns a stop
 * function that waits for a running pass to end.
 */
export function startRetention(deps: RetentionDeps, intervalMs: number): () => Promise<void> {
  let running: Promise<void> | undefined;
  let stopped = false;
  const pass = () => {
    if (running || stopped) return;
    running = applyRetention(deps)
      .then(
        () => undefined,
        (error: unknown) => deps.onError?.(error),
      )
      .finally(() => {
        running = undefined;
      });
  };
  pass();
  const timer = setInterval(pass, intervalMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}

/**
 * Deletes one finished build: artifacts and logs first, then the row (stages, steps and
 * artifact rows cascade). If the bytes cannot be deleted the row stays, so the next pass
 * tries again instead of leaving orphans nobody can find.
 */
async function deleteBuild(deps: RetentionDeps, buildId: number): Promise<boolean> {
  // Re-run failed: other builds' artifacts may point at this build's bytes (see blobPrefixesToDelete).
  const prefixes = deps.blobs && (await blobPrefixesToDelete(deps.db, buildId));
  if (deps.blobs && prefixes?.own) await deps.blobs.deletePrefix(artifactPrefix(buildId));
  await deps.logs.remove(buildId);
  const deleted = await deleteFinishedBuild(deps.db, buildId);
  // After the row: a failure here leaves bytes nobody points at, never a row without its bytes.
  if (deleted && deps.blobs)
    for (const owner of prefixes?.orphans ?? []) await deps.blobs.deletePrefix(artifactPrefix(owner));
  return deleted;
}

const Keep = (what: string) =>
  Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Null()], {
    description: `${what}; null: the server's default`,
  });

export const RetentionSchema = Type.Object(
  {
    keepBuilds: Type.Optional(Keep('Newest builds to keep')),
    keepDays: Type.Optional(Keep('Keep builds finished within this many days')),
  },
  { additionalProperties: false, title: 'Retention' },
);

const RetentionViewSchema = Type.Object(
  {
    keepBuilds: Type.Union([Type.Integer(), Type.Null()]),
    keepDays: Type.Union([Type.Integer(), Type.Null()]),
    effective: Type.Object({
      keepBuilds: Type.Union([Type.Integer(), Type.Null()]),
      keepDays: Type.Union([Type.Integer(), Type.Null()]),
    }),
  },
  { title: 'RetentionView' },
);

/**
 * `GET|PUT /projects/{owner}/{name}/retention` inside the `/api/v1` prefix: a project's own
 * retention and what applies after the server's defaults.
 */
export function registerRetentionRoutes(
  api: App,
  deps: { db: Kysely<Database>; defaults: RetentionPolicy },
): void {
  const view = (own: RetentionPolicy) => ({
    keepBuilds: own.keepBuilds ?? null,
    keepDays: own.keepDays ?? null,
    effective: {
      keepBuilds: own.keepBuilds ?? deps.defaults.keepBuilds ?? null,
      keepDays: own.keepDays ?? deps.defaults.keepDays ?? null,
    },
  });
  api.get(
    '/projects/:owner/:name/retention',
    {
      config: VIEWER,
      schema: {
        tags: ['projects'],
        summary: "A project's build retention",
        params: ProjectParams,
        response: { 200: RetentionViewSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(deps.db, request.params.owner, request.params.name);
      return view(await getProjectRetention(deps.db, project.id));
    },
  );
  api.put(
    '/projects/:owner/:name/retention',
    {
      config: ADMIN,
      schema: {
        tags: ['projects'],
        summary: "Set a project's build retention",
        params: ProjectParams,
        body: RetentionSchema,
        response: { 200: RetentionViewSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(deps.db, request.params.owner, request.params.name);
      await setProjectRetention(deps.db, project.id, request.body);
      return view(request.body);
    },
  );
}
