/**
 * Step caches at run time: the orchestrator's `beforeStep` (restore) and `afterStep` (save)
 * hooks of one build run. A cache never fails a step: every problem (store or blob store
 * down, an archive refused, an executor without the capability) is a line in the step's log
 * and the step runs, or stays green, without it.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Kysely } from 'kysely';
import type { BlobStore } from '../../blobs/types.js';
import type { BuildHandle, Executor, HostDirs, PreparedCache } from '../../executors/types.js';
import type { RunOptions } from '../../orchestrator/types.js';
import type { PipelinePlan, StepPlan } from '../../pipeline/types.js';
import {
  deleteCaches,
  evictCaches,
  findCache,
  insertCache,
  projectExists,
  touchCache,
  type CacheHit,
  type CacheRow,
} from '../../store/caches.js';
import type { Database } from '../../store/index.js';
import { ArchiveError, fileSize, packCache, placeStaged, unpackToStage, type CacheRoots } from './archive.js';
import { resolveCacheKey } from './hash-files.js';
import { formatBytes } from '../../contract/bytes.js';
import { isHomePath } from '../../executors/cache-home.js';

const MiB = 1024 * 1024;
const DAY = 24 * 60 * 60 * 1000;

export interface CacheOptions {
  /** Bytes of archives one project keeps; least recently used go first. Default 2 GiB. */
  maxProjectBytes: number;
  /** A cache not restored for this long is removed. Default 7 days. */
  maxAgeMs: number;
  /** Bytes one archive may expand to when restored. Default 4 GiB. */
  maxExpandedBytes: number;
  /** Entries one archive may hold. Default 1,000,000. */
  maxEntries: number;
  /** Where pull requests and branches without a cache of their own look next. Default `main`. */
  defaultBranch: string;
}

export const DEFAULT_CACHE_OPTIONS: CacheOptions = {
  maxProjectBytes: 2048 * MiB,
  maxAgeMs: 7 * DAY,
  maxExpandedBytes: 4096 * MiB,
  maxEntries: 1_000_000,
  defaultBranch: 'main',
};

export interface CacheDeps {
  db: Kysely<Database>;
  blobs: BlobStore;
  options?: Partial<CacheOptions>;
  /** Scratch space for archives and staging of executors without host directories; default the OS temp dir. */
  scratch?: string;
  now?: () => number;
}

export interface BuildCacheInput {
  projectId: number;
  branch: string;
  /** A pull request from a fork: restores, never saves. */
  fork: boolean;
  plan: PipelinePlan;
  /** The checkout, before it seeds the workspace: `hashFiles` reads it. Undefined on resume. */
  sourceDir: string | undefined;
  executor: Executor;
  log: (stage: string, step: string, text: string) => void;
  signal?: AbortSignal;
}

export interface BuildCacheHooks {
  beforeStep: NonNullable<RunOptions['beforeStep']>;
  afterStep: NonNullable<RunOptions['afterStep']>;
  /** Restores for `prepare` (executors with `cacheFiles.restoreAtPrepare`). */
  caches?: PreparedCache[];
  /** Removes what was staged for `prepare`: call once the build was prepared (or failed to be). */
  dispose(): Promise<void>;
}

/** What beforeStep found for a step, for its afterStep. */
interface StepCache {
  key: string;
  exact: boolean;
}

/** A restore looked up and staged before `prepare`, for the step's beforeStep to report. */
interface PreparedRestore {
  hit: CacheHit;
  bytes: number;
  dropped?: string;
}

export class CacheService {
  readonly options: CacheOptions;
  private readonly scratch: string;
  private readonly now: () => number;
  private lastSweep = 0;

  constructor(private readonly deps: CacheDeps) {
    this.options = { ...DEFAULT_CACHE_OPTIONS, ...deps.options };
    this.scratch = deps.scratch ?? join(tmpdir(), 'slipway-caches');
    this.now = deps.now ?? Date.now;
  }

  /**
   * The hooks of one build, or undefined when no step has a cache. Keys are resolved here,
   * before the checkout becomes the workspace; a key that cannot be made is logged by its step.
   */
  async forBuild(input: BuildCacheInput): Promise<BuildCacheHooks | undefined> {
    const steps = input.plan.stages.flatMap((stage) =>
      stage.steps.filter((s) => s.cache).map((step) => ({ stage: stage.name, step })),
    );
    if (steps.length === 0) return undefined;
    const keys = new Map<string, { key: string } | { error: string }>();
    for (const { stage, step } of steps) {
      try {
        const { key, empty } = await resolveCacheKey(step.cache!.key, input.sourceDir, input.signal);
        for (const call of empty)
          input.log(stage, step.name, `cache: ${call} matched no file (it counts as empty)`);
        keys.set(`${stage}/${step.name}`, { key });
      } catch (error) {
        keys.set(`${stage}/${step.name}`, { error: message(error) });
      }
    }
    const found = new Map<string, StepCache>();
    const branches = [...new Set([input.branch, this.options.defaultBranch])];
    const atPrepare = input.executor.cacheFiles?.restoreAtPrepare;
    const staged: string[] = [];
    const prepared = new Map<string, PreparedRestore | { miss: string }>();
    const caches: PreparedCache[] = [];
    if (atPrepare) {
      let budget = atPrepare.maxBytes;
      for (const { stage, step } of steps) {
        const stepKey = `${stage}/${step.name}`;
        const resolved = keys.get(stepKey);
        if (!resolved || 'error' in resolved) continue;
        const restore = await this.fetchAndUnpack(
          input,
          step,
          resolved.key,
          branches,
          { volume: true },
          input.signal,
          budget,
        );
        if ('miss' in restore) {
          prepared.set(stepKey, restore);
          continue;
        }
        budget -= restore.hit.cache.size;
        staged.push(restore.dir);
        const entry: PreparedRestore = { hit: restore.hit, bytes: restore.bytes };
        prepared.set(stepKey, entry);
        caches.push({ step: stepKey, dir: restore.dir, dropped: (reason) => (entry.dropped = reason) });
      }
    }
    return {
      ...(atPrepare ? { caches } : {}),
      dispose: async () => {
        for (const dir of staged.splice(0))
          await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      },
      beforeStep: async (stage, step, handle, signal) => {
        const stepKey = `${stage}/${step.name}`;
        const resolved = keys.get(stepKey);
        if (!step.cache || !resolved) return;
        const log = (text: string) => input.log(stage, step.name, `cache: ${text}`);
        if ('error' in resolved) return log(`not used: ${resolved.error}`);
        const early = prepared.get(stepKey);
        const hit = early
          ? await this.reportPrepared(early, log)
          : atPrepare
            ? (log('not restored: the build was prepared by an earlier server process'), undefined)
            : await this.restore(input, step, stepKey, resolved.key, branches, handle, log, signal);
        const exact = hit?.exact ?? false;
        found.set(stepKey, { key: resolved.key, exact });
        const home = step.cache.paths.filter(isHomePath);
        if (input.executor.cacheFiles?.home && home.length > 0)
          return { cacheHome: { save: exact || input.fork ? [] : home } };
      },
      afterStep: async (stage, step, handle, exit, signal) => {
        const state = found.get(`${stage}/${step.name}`);
        if (!step.cache || !state) return exit;
        const log = (text: string) => input.log(stage, step.name, `cache: ${text}`);
        if (state.exact) log(`${state.key} was restored; nothing to save`);
        else if (input.fork) log(`not saved: builds of pull requests from forks only read caches`);
        else await this.save(input, step, `${stage}/${step.name}`, state.key, handle, log, signal);
        return exit;
      },
    };
  }

  /**
   * Looks up a step's cache and unpacks it (checked) into a staging directory beside `where`;
   * a miss, or an archive over what is left of `budget` (restores at prepare), says why.
   */
  private async fetchAndUnpack(
    input: BuildCacheInput,
    step: StepPlan,
    key: string,
    branches: string[],
    where: Where,
    signal: AbortSignal | undefined,
    budget?: number,
  ): Promise<{ hit: CacheHit; dir: string; bytes: number } | { miss: string }> {
    let dir: string | undefined;
    try {
      const hit = await findCache(this.deps.db, input.projectId, branches, key, step.cache!.restoreKeys);
      if (!hit) return { miss: `miss (${key})` };
      if (budget !== undefined && hit.cache.size > budget)
        return {
          miss:
            `not restored: ${hit.cache.key} (${formatBytes(hit.cache.size)}) is more than the ${input.executor.name} ` +
            `executor passes into a build (${formatBytes(budget)} left of ${formatBytes(input.executor.cacheFiles!.restoreAtPrepare!.maxBytes)}); the step runs without it`,
        };
      const body = await this.deps.blobs.get(hit.cache.blobKey);
      if (!body) return { miss: `miss: the archive of ${hit.cache.key} is gone from the blob store` };
      dir = await this.stageDir(where);
      const { bytes } = await unpackToStage(body, dir, this.limits(), signal);
      return { hit, dir, bytes };
    } catch (error) {
      if (dir) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      return { miss: notRestored(error) };
    }
  }

  private async reportPrepared(
    prepared: PreparedRestore | { miss: string },
    log: (text: string) => void,
  ): Promise<{ exact: boolean } | undefined> {
    if ('miss' in prepared) {
      log(prepared.miss);
      return undefined;
    }
    const { hit, bytes, dropped } = prepared;
    if (dropped !== undefined) {
      log(`not restored: ${dropped}; the step runs without it`);
      return undefined;
    }
    await touchCache(this.deps.db, hit.cache.id, this.now()).catch(() => undefined);
    log(this.restoredLine(hit, bytes));
    return { exact: hit.exact };
  }

  private restoredLine(hit: CacheHit, bytes: number): string {
    const how = hit.exact ? '' : ' (restore key)';
    return `restored ${hit.cache.key}${how} (${formatBytes(hit.cache.size)}, ${formatBytes(bytes)} unpacked) from branch ${hit.cache.branch}`;
  }

  /** Removes caches (rows first, then their archives); a blob that cannot be removed is left for nobody to read. */
  async remove(projectId: number, which: Parameters<typeof deleteCaches>[2]): Promise<CacheRow[]> {
    const rows = await deleteCaches(this.deps.db, projectId, which);
    await this.removeBlobs(rows);
    if (which === 'all') await this.deps.blobs.deletePrefix(`caches/${projectId}/`).catch(() => 0);
    return rows;
  }

  /**
   * Removes the archives of projects that are gone (their rows went with them: a foreign key),
   * at most once an hour, after a save. Resolves with how many archives were removed.
   */
  async sweep(force = false): Promise<number> {
    if (!force && this.now() - this.lastSweep < 3_600_000) return 0;
    this.lastSweep = this.now();
    const projects = new Set<string>();
    for await (const blob of this.deps.blobs.list('caches/')) projects.add(blob.key.split('/')[1] ?? '');
    let removed = 0;
    for (const id of projects) {
      if (!/^[1-9][0-9]*$/.test(id)) continue;
      const exists = await projectExists(this.deps.db, Number(id));
      if (!exists) removed += await this.deps.blobs.deletePrefix(`caches/${id}/`);
    }
    return removed;
  }

  private async removeBlobs(rows: readonly CacheRow[]): Promise<void> {
    for (const row of rows) await this.deps.blobs.deletePrefix(row.blobKey).catch(() => 0);
  }

  private async restore(
    input: BuildCacheInput,
    step: StepPlan,
    stepKey: string,
    key: string,
    branches: string[],
    handle: BuildHandle,
    log: (text: string) => void,
    signal: AbortSignal,
  ): Promise<{ exact: boolean } | undefined> {
    const where = this.where(input.executor, handle, step, log);
    if (!where) return undefined;
    const staged = await this.fetchAndUnpack(input, step, key, branches, where, signal);
    if ('miss' in staged) {
      log(staged.miss);
      return undefined;
    }
    const { hit, dir, bytes } = staged;
    try {
      if ('roots' in where) await placeStaged(dir, where.roots);
      else await this.placeInVolume(input.executor, handle, stepKey, dir, log, signal);
      await touchCache(this.deps.db, hit.cache.id, this.now());
      log(this.restoredLine(hit, bytes));
      return { exact: hit.exact };
    } catch (error) {
      log(notRestored(error));
      return undefined;
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async save(
    input: BuildCacheInput,
    step: StepPlan,
    stepKey: string,
    key: string,
    handle: BuildHandle,
    log: (text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const where = this.where(input.executor, handle, step, log);
    if (!where) return;
    const dir = await mkdir(this.scratch, { recursive: true }).then(() =>
      mkdtemp(join(this.scratch, 'save-')),
    );
    try {
      const file = join(dir, 'cache.tgz');
      let roots: CacheRoots;
      let paths = step.cache!.paths;
      if ('roots' in where) roots = where.roots;
      else {
        const files = input.executor.cacheFiles!;
        if (!files.home) paths = paths.filter((p) => !isHomePath(p));
        const copied = await files.out(handle, stepKey, paths, join(dir, 'c'), this.limits(), signal);
        paths = paths.filter((p) => copied.includes(p));
        roots = { workspace: join(dir, 'c', 'w'), home: join(dir, 'c', 'h') };
      }
      const packed =
        paths.length === 0 ? [] : await packCache(roots, paths, file, dir, signal, this.limits());
      if (packed.length === 0) {
        log(`not saved: none of ${step.cache!.paths.join(', ')} exists`);
        return;
      }
      const size = await fileSize(file);
      if (size > this.options.maxProjectBytes) {
        log(
          `not saved: ${formatBytes(size)} is more than a project may keep (${formatBytes(this.options.maxProjectBytes)})`,
        );
        return;
      }
      const blobKey = `caches/${input.projectId}/${randomUUID()}.tgz`;
      await this.deps.blobs.put(blobKey, createReadStream(file), {
        size,
        contentType: 'application/gzip',
        signal,
      });
      const row = await insertCache(this.deps.db, {
        projectId: input.projectId,
        branch: input.branch,
        key,
        blobKey,
        size,
        now: this.now(),
      }).catch(async (error: unknown) => {
        await this.deps.blobs.deletePrefix(blobKey).catch(() => 0);
        throw error;
      });
      if (!row) {
        await this.deps.blobs.deletePrefix(blobKey).catch(() => 0);
        log(`not saved: another build saved ${key} first`);
        return;
      }
      log(`saved ${key} (${formatBytes(size)}) for branch ${input.branch}`);
      const evicted = await evictCaches(this.deps.db, input.projectId, this.options, this.now());
      await this.removeBlobs(evicted);
      await this.sweep().catch(() => 0);
      if (evicted.length > 0) log(`evicted ${evicted.length} least recently used cache(s) of the project`);
    } catch (error) {
      log(`not saved: ${message(error)}`);
    } finally {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** Where the step's paths are: host directories, or a volume reached by copies; undefined (logged) when neither. */
  private where(
    executor: Executor,
    handle: BuildHandle,
    step: StepPlan,
    log: (text: string) => void,
  ): Where | undefined {
    if (executor.cacheRoots) {
      const roots = executor.cacheRoots(handle);
      const home = step.cache!.paths.filter(isHomePath);
      if (roots.home === undefined && home.length > 0)
        log(`${home.join(', ')} skipped: steps of this build have no HOME the server may write`);
      return { roots };
    }
    if (executor.cacheFiles) {
      const home = step.cache!.paths.filter(isHomePath);
      if (home.length > 0 && !executor.cacheFiles.home)
        log(
          `${home.join(', ')} skipped: the ${executor.name} executor keeps no HOME between steps; cache paths in the workspace instead`,
        );
      return { volume: true };
    }
    log(`not supported by the ${executor.name} executor yet; the step runs without it`);
    return undefined;
  }

  /** Staging next to the workspace when it is a host directory (one rename puts a path in place). */
  private async stageDir(where: Where): Promise<string> {
    const parent = 'roots' in where ? dirname(where.roots.workspace) : this.scratch;
    await mkdir(parent, { recursive: true });
    return mkdtemp(join(parent, '.cache-restore-'));
  }

  private async placeInVolume(
    executor: Executor,
    handle: BuildHandle,
    stepKey: string,
    stage: string,
    log: (text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const files = executor.cacheFiles!;
    const home = join(stage, 'h');
    if (
      !files.home &&
      (await fileSize(home).then(
        () => true,
        () => false,
      ))
    ) {
      log('~/ paths of the archive skipped: this executor has no HOME to restore them to');
      await rm(home, { recursive: true, force: true });
    }
    await mkdir(join(stage, 'w'), { recursive: true });
    await files.in!(handle, stepKey, stage, signal);
  }

  private limits() {
    return { maxBytes: this.options.maxExpandedBytes, maxEntries: this.options.maxEntries };
  }
}

/** Where a step's cache paths are: host directories, or a volume reached by copies. */
type Where = { roots: HostDirs } | { volume: true };

/** Why a cache was not restored; the step runs on. */
function notRestored(error: unknown): string {
  const what = error instanceof ArchiveError ? 'archive refused' : 'not restored';
  return `${what}: ${message(error)}; the step runs without it`;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
