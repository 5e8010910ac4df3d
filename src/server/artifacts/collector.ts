import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { Kysely } from 'kysely';
import type { BlobStore } from '../../blobs/types.js';
import type { BuildHandle, Executor } from '../../executors/types.js';
import { artifactPathProblem, compileArtifactPatterns } from '../../executors/workspace-files.js';
import type { RunOptions } from '../../orchestrator/types.js';
import type { PipelinePlan } from '../../pipeline/types.js';
import type { Database } from '../../store/index.js';
import { seedReusedArtifacts } from './seed.js';
import { artifactKey, listArtifacts, recordArtifact } from './store.js';
import { formatBytes } from '../../contract/bytes.js';

const MiB = 1024 * 1024;

/** Size limits of artifacts; a file over either is refused with a log line, the step stays green. */
export interface ArtifactLimits {
  /** Largest single file; default 100 MiB. */
  maxFileBytes: number;
  /** All artifacts of one build together; default 1 GiB. */
  maxBuildBytes: number;
}

export const DEFAULT_ARTIFACT_LIMITS: ArtifactLimits = { maxFileBytes: 100 * MiB, maxBuildBytes: 1024 * MiB };

export interface ArtifactDeps {
  db: Kysely<Database>;
  blobs: BlobStore;
  limits?: Partial<ArtifactLimits>;
  now?: () => number;
}

/** Lines for a step's log (written as `system` lines of that step). */
export type ArtifactLog = (text: string) => void;

export interface CollectResult {
  published: number;
  bytes: number;
  rejected: number;
}

/**
 * What the scheduler's `BuildRunDeps.artifacts` needs: the orchestrator's `afterStep` hook of
 * one build run, which publishes each successful step's `artifacts:` right after the step,
 * while its workspace still exists. Undefined when no step of the plan publishes anything.
 */
export interface ArtifactCollector {
  afterStep(
    executor: Executor,
    buildId: number,
    plan: PipelinePlan,
    log: (stage: string, step: string, text: string) => void,
  ): RunOptions['afterStep'];
  /**
   * Re-run failed: puts the artifacts the build took over from reused steps into `dir`, the
   * checkout that seeds its workspace (see `seedReusedArtifacts`). Resolves with the count.
   */
  seedReused?(
    buildId: number,
    dir: string,
    log: (text: string) => void,
    signal?: AbortSignal,
  ): Promise<number>;
}

/**
 * The collector the lead wires into the scheduler: `new Scheduler({ …, artifacts: createArtifactCollector({ db, blobs }) })`.
 *
 * Rejections (a path that leaves the workspace, a symlink out of it, a file over a limit, a
 * path another step already published) are log lines and leave the step's result alone: the
 * step did its work. A failure to *store* an artifact (blob store or database down) turns the
 * step into an `error`, so a green build always has the artifacts it promised.
 */
export function createArtifactCollector(deps: ArtifactDeps): ArtifactCollector {
  return {
    seedReused: (buildId, dir, log, signal) => seedReusedArtifacts(deps, buildId, dir, log, signal),
    afterStep(executor, buildId, plan, log) {
      if (!plan.stages.some((stage) => stage.steps.some((step) => step.artifacts.length > 0)))
        return undefined;
      const state = new BuildArtifacts(deps, buildId);
      return async (stage, step, handle, exit, signal) => {
        if (step.artifacts.length === 0 || exit.kind !== 'exited' || exit.exitCode !== 0 || signal.aborted)
          return exit;
        try {
          await state.collect(
            executor,
            handle,
            `${stage}/${step.name}`,
            step.artifacts,
            (text) => log(stage, step.name, text),
            signal,
          );
          return exit;
        } catch (error) {
          if (signal.aborted) return { kind: 'aborted', exitCode: 0 };
          return {
            kind: 'error',
            code: 'internal',
            message: `artifacts could not be stored: ${errorText(error)}`,
          };
        }
      };
    },
  };
}

/**
 * Collects one step's artifacts from a prepared build's workspace into the blob store and
 * the database. `state` carries what earlier steps of the same build published (for the
 * per-build limit and for paths two steps both claim); without it the database is read.
 */
export async function collectArtifacts(
  deps: ArtifactDeps,
  input: {
    buildId: number;
    executor: Executor;
    handle: BuildHandle;
    /** `stage/step` */
    step: string;
    patterns: readonly string[];
    log: ArtifactLog;
    signal?: AbortSignal;
  },
  state: BuildArtifacts = new BuildArtifacts(deps, input.buildId),
): Promise<CollectResult> {
  return state.collect(input.executor, input.handle, input.step, input.patterns, input.log, input.signal);
}

/** What one build has published so far; one per build run, so parallel steps see each other. */
export class BuildArtifacts {
  private readonly limits: ArtifactLimits;
  private loaded: Promise<void> | undefined;
  private total = 0;
  private readonly owners = new Map<string, { step: string; size: number }>();

  constructor(
    private readonly deps: ArtifactDeps,
    private readonly buildId: number,
  ) {
    this.limits = { ...DEFAULT_ARTIFACT_LIMITS, ...deps.limits };
  }

  async collect(
    executor: Executor,
    handle: BuildHandle,
    step: string,
    patterns: readonly string[],
    log: ArtifactLog,
    signal?: AbortSignal,
  ): Promise<CollectResult> {
    const result: CollectResult = { published: 0, bytes: 0, rejected: 0 };
    if (!executor.collectFiles) {
      log(`artifacts: the ${executor.name} executor cannot read workspace files; nothing published`);
      return result;
    }
    this.loaded ??= this.load();
    await this.loaded;
    // Refused patterns come back from the executor as rejected entries; they need no "nothing matched".
    const { set, problems } = compileArtifactPatterns(patterns);
    const refusedPatterns = new Set(problems.map((p) => p.pattern));
    const hits = new Array<number>(patterns.length).fill(0);
    const reject = (path: string, reason: string) => {
      result.rejected += 1;
      log(`artifact ${path} rejected: ${reason}`);
    };

    for await (const entry of executor.collectFiles(handle, patterns, signal)) {
      signal?.throwIfAborted();
      if (entry.kind === 'rejected') {
        const index = set.match(entry.path);
        if (index !== -1) hits[index]! += 1;
        reject(entry.path, entry.reason);
        continue;
      }
      const index = set.match(entry.path);
      if (index !== -1) hits[index]! += 1;
      const problem = artifactPathProblem(entry.path);
      if (problem !== undefined) {
        reject(entry.path, problem);
        continue;
      }
      if (entry.size > this.limits.maxFileBytes) {
        reject(
          entry.path,
          `${formatBytes(entry.size)} is over the limit of ${formatBytes(this.limits.maxFileBytes)} per file`,
        );
        continue;
      }
      const previous = this.owners.get(entry.path);
      if (previous !== undefined && previous.step !== step) {
        reject(entry.path, `step ${previous.step} already published this path`);
        continue;
      }
      const totalAfter = this.total - (previous?.size ?? 0) + entry.size;
      if (totalAfter > this.limits.maxBuildBytes) {
        reject(
          entry.path,
          `it would bring the build's artifacts to ${formatBytes(totalAfter)}, over the limit of ${formatBytes(this.limits.maxBuildBytes)} per build`,
        );
        continue;
      }
      // Claimed before the upload, so a parallel step cannot take the same path meanwhile.
      this.owners.set(entry.path, { step, size: entry.size });
      this.total = totalAfter;
      try {
        const hash = new HashingPassThrough();
        const source = entry.open();
        source.once('error', (error) => hash.destroy(error));
        await this.deps.blobs.put(artifactKey(this.buildId, entry.path), source.pipe(hash), {
          size: entry.size,
          ...(signal ? { signal } : {}),
        });
        await recordArtifact(this.deps.db, {
          buildId: this.buildId,
          step,
          path: entry.path,
          size: entry.size,
          sha256: hash.digest(),
          createdAt: (this.deps.now ?? Date.now)(),
        });
      } catch (error) {
        if (previous === undefined) this.owners.delete(entry.path);
        else this.owners.set(entry.path, previous);
        this.total = this.total - entry.size + (previous?.size ?? 0);
        throw new Error(`${entry.path}: ${errorText(error)}`, { cause: error });
      }
      result.published += 1;
      result.bytes += entry.size;
      log(`artifact ${entry.path} published (${formatBytes(entry.size)})`);
    }
    patterns.forEach((pattern, i) => {
      if (hits[i] === 0 && !refusedPatterns.has(pattern)) log(`artifacts: nothing matched "${pattern}"`);
    });
    return result;
  }

  private async load(): Promise<void> {
    // A build taken over after its server died may already have artifacts from the first run.
    for (const artifact of await listArtifacts(this.deps.db, this.buildId)) {
      this.owners.set(artifact.path, { step: artifact.step, size: artifact.size });
      this.total += artifact.size;
    }
  }
}

class HashingPassThrough extends Transform {
  private readonly hash = createHash('sha256');

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
