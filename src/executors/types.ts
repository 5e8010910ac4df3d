/**
 * The executor contract. An executor runs steps somewhere (host processes, containers,
 * pods). A step's life is split into calls that each stand alone, so that a step outlives
 * the process that started it: a server that restarts (crash, upgrade) finds the step again
 * from its durable {@link StepRef} and goes on tailing and waiting where its predecessor
 * stopped. The orchestrator drives it through this lifecycle only (`lifecycle.ts` composes
 * start → tail + wait → release for callers that want one call):
 *
 *   prepare(build)            → once per build: workspace, network/pod, services. On failure
 *                               the orchestrator still calls destroy(), so prepare must leave
 *                               what it created findable by destroy. Not idempotent.
 *   resumeBuild(build)        → in a later process: the handle of a build an earlier process
 *                               prepared (same `buildId`), found from labels / on-disk records.
 *                               Creates nothing, restarts no service. Idempotent. Rejects with
 *                               `ExecutorError('gone')` when the build's workspace is gone.
 *   startStep(handle, step)   → pulls/schedules (the pending phase: not part of the step's
 *                               `timeout`), creates and starts the step; resolves with its
 *                               durable ref once it runs, or with an exit when it never ran (an
 *                               image that cannot be pulled, an abort during pending).
 *                               Idempotent per (step.key, step.attempt): a second call returns
 *                               the ref of the step already started.
 *   findStep(handle, key, n)  → the ref of attempt n of step `key` if it was started (the server
 *                               died between startStep and storing the ref). Read-only.
 *   tailStep(handle, ref, at) → delivers the step's output lines after position `at`, in order,
 *                               until the step's output ends (it exited) or `signal` aborts.
 *                               Idempotent: tailing twice from the same position delivers the
 *                               same lines; lines before `at` are never delivered. Never rejects.
 *   waitStep(handle, ref)     → the step's exit once it ended (immediately if it already has:
 *                               an exit is kept until releaseStep). Resolves `undefined` when
 *                               `signal` aborts first: that only stops waiting, it kills nothing.
 *                               Never rejects: an engine fault is `{kind:'error'}`. Idempotent.
 *   stopStep(handle, ref)     → kills the step (SIGTERM, grace, SIGKILL) and resolves once it is
 *                               gone; its exit and output stay readable. Idempotent.
 *   releaseStep(handle, ref)  → forgets a step whose exit was read: removes its container,
 *                               process record or output files. Idempotent.
 *   destroy(handle)           → once per build, always, even after a failed prepare or an abort.
 *                               Idempotent. Removes everything the build created.
 *   listResources()           → what the executor still has for any build (reconciliation, gc).
 *   removeResources(buildId)  → removes leftovers of a build it no longer runs. Idempotent.
 *   collectFiles(handle, …)   → optional: reads files of the workspace between steps (artifacts).
 *
 * Adoption is checked: a ref is only ever followed when what it names still carries this
 * build's id, the step's key and attempt (labels, on-disk records with the process start
 * time), never a container of another installation or a recycled pid: then `tailStep`
 * delivers nothing and `waitStep` resolves `{kind:'error', code:'gone'}`.
 *
 * Executors label what they create with the build id, project and step so that orphans can be
 * found after a crash.
 */
import type { Readable } from 'node:stream';
import type { ExecutorName } from '../contract/executors.js';
import type { StepErrorCode } from '../contract/reasons.js';
import type { ServicePlan } from '../pipeline/types.js';
import type { SourceSeed } from './workspace-seed.js';

export type OutputStream = 'stdout' | 'stderr';

/** Receives a step's output, already split into lines (without the trailing newline). */
export interface OutputSink {
  /**
   * One line, or one piece of a line longer than `MAX_LINE_LENGTH` (lines.ts): then
   * `continues` is true and the next line of the same stream is the rest of it, so that the
   * masker can see the whole line (a secret cut in two is still found).
   */
  line(stream: OutputStream, text: string, continues?: boolean): void;
}

export interface BuildSpec {
  buildId: string;
  project: string;
  branch: string;
  /** Directory on the Slipway host whose contents seed the workspace (a checkout), if any. */
  sourceDir?: string;
  /**
   * Which files of `sourceDir` seed the workspace, listed by `listSeed` (the same on every
   * executor); default {@link WHOLE_DIRECTORY}, everything with `.git`.
   */
  sourceSeed?: SourceSeed;
  /** Default image of the pipeline (container executors). */
  image?: string;
  services: ServicePlan[];
  /** Output of services (their own logs), by service name. */
  serviceSink?: (service: string) => OutputSink;
  /**
   * Caches restored for steps, for executors that take them only here
   * (`cacheFiles.restoreAtPrepare`): each `dir` is an archive already checked and unpacked on
   * this host (`w/`: workspace paths, `h/`: `~/` paths). The executor stages it so that step
   * `step` (its key) puts it in place as its first attempt starts (`cacheHomeScript`). One that
   * does not fit in `restoreAtPrepare.maxBytes` is left out: `dropped` says why.
   */
  caches?: readonly PreparedCache[];
}

/** See `BuildSpec.caches`. */
export interface PreparedCache {
  step: string;
  dir: string;
  dropped(reason: string): void;
}

export interface StepSpec {
  /** `stage/step` – unique within the build; used in labels and names. */
  key: string;
  stage: string;
  step: string;
  image?: string;
  commands: string[];
  /** Plain environment: may appear in a manifest, `inspect` output, a process listing. */
  env: Record<string, string>;
  /**
   * Environment entries filled from secrets, kept apart from `env` so that an executor can
   * hand them over as secrets (a Kubernetes Secret, a file only the step can read), never as
   * plain text in a manifest. Same names win over `env`.
   */
  secrets: Record<string, string>;
  attempt: number;
  /**
   * Caches, on executors with `cacheFiles.home`: the step has `~/` cache paths. Before its
   * commands, what was staged for its HOME (`cacheFiles.in`, or `BuildSpec.caches`) is copied
   * there; after they succeed, the `save` paths are kept where `cacheFiles.out` reads them.
   * The executor wraps the commands with `cacheHomeScript` (./cache-home.ts) for this.
   */
  cacheHome?: { save: readonly string[] };
}

/**
 * Why an executor could not run a step or lost it, as a code the UI and API show:
 * - `image_pull`: the image cannot be pulled (missing, no access, registry down);
 * - `engine_unavailable`: the engine / API server does not answer;
 * - `oom_killed`: the step was killed for using more memory than it may;
 * - `evicted`: the node evicted it (Kubernetes: disk or memory pressure, preemption);
 * - `unschedulable`: no node can take it (Kubernetes);
 * - `gone`: what ran it disappeared (container removed, engine reset, pid not ours any more);
 * - `workspace`: the workspace could not be set up or read;
 * - `internal`: anything else (a bug): the message says what.
 */
export type { StepErrorCode } from '../contract/reasons.js';

export type StepExit =
  | { kind: 'exited'; exitCode: number }
  /** Killed because the signal aborted (cancel or timeout – the orchestrator knows which). */
  | { kind: 'aborted'; exitCode?: number }
  /** The executor could not run the step, or lost it. `exitCode` when the step had one (137 for OOM). */
  | { kind: 'error'; code: StepErrorCode; message: string; exitCode?: number };

/**
 * The durable reference to a started step: plain JSON, stored with the step's record before
 * its output is read, so that a later process can find the step again.
 */
export interface StepRef {
  executor: ExecutorName;
  /** What runs the step: a container id, a pod name, a process record's path. */
  id: string;
  /** The executor build id, the step's key and attempt: checked again on every adoption. */
  buildId: string;
  key: string;
  attempt: number;
  /** When it started running (epoch ms, after the pending phase): timeouts count from here. */
  startedAt: number;
}

/**
 * Where a reader of a step's output stands: how many lines of each stream (pieces, exactly as
 * the sink receives them, so a cut line counts once per piece) it has been given already.
 */
export interface OutputPosition {
  stdout: number;
  stderr: number;
}

export const OUTPUT_START: OutputPosition = Object.freeze({ stdout: 0, stderr: 0 });

/** What `startStep` reports: the step runs, or it never ran and this is its exit. */
export type StepStart = { ref: StepRef } | { exit: StepExit };

/** Progress of a step's pending phase, for the build log (`pulling image alpine:3.20`). */
export interface StepEvents {
  pending?(text: string): void;
}

/** Opaque per-build state of an executor. */
export interface BuildHandle {
  readonly buildId: string;
  /** Workspace path as steps see it. */
  readonly workspace: string;
}

export interface ExecutorResource {
  kind: 'workspace' | 'process' | 'container' | 'volume' | 'network' | 'pod';
  id: string;
  buildId: string;
  project?: string;
  step?: string;
  running: boolean;
}

/**
 * A workspace file `collectFiles` selected, or one it refused. Paths are workspace-relative
 * with `/` separators; a refused entry's `path` may also be the pattern that was refused.
 */
export type WorkspaceEntry =
  | {
      kind: 'file';
      path: string;
      size: number;
      /**
       * The content: exactly `size` bytes. Call at most once, and consume (or destroy) the
       * stream before asking for the next entry; an entry never opened is skipped.
       */
      open(): Readable;
    }
  | { kind: 'rejected'; path: string; reason: string };

export type { ExecutorName } from '../contract/executors.js';

export interface Executor {
  readonly name: ExecutorName;
  /** Workspace path steps will see for a build, known before prepare (for `${SLIPWAY_WORKSPACE}`). */
  workspacePath(buildId: string): string;
  prepare(build: BuildSpec, signal?: AbortSignal): Promise<BuildHandle>;
  resumeBuild(build: BuildSpec): Promise<BuildHandle>;
  startStep(
    handle: BuildHandle,
    step: StepSpec,
    signal: AbortSignal,
    events?: StepEvents,
  ): Promise<StepStart>;
  findStep(handle: BuildHandle, key: string, attempt: number): Promise<StepRef | undefined>;
  tailStep(
    handle: BuildHandle,
    ref: StepRef,
    from: OutputPosition,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<void>;
  waitStep(handle: BuildHandle, ref: StepRef, signal: AbortSignal): Promise<StepExit | undefined>;
  stopStep(handle: BuildHandle, ref: StepRef): Promise<void>;
  releaseStep(handle: BuildHandle, ref: StepRef): Promise<void>;
  destroy(handle: BuildHandle): Promise<void>;
  listResources(): Promise<ExecutorResource[]>;
  removeResources(buildId: string): Promise<void>;
  /**
   * Reads the regular files of a prepared build's workspace whose paths match `patterns`
   * (artifact globs, see `workspace-files.ts`; a pattern naming a directory takes everything
   * below it), between steps. Yields a `rejected` entry with the reason for each refused
   * pattern (absolute, `..`) and for each match it will not read: a symlink whose real path
   * leaves the workspace, a symlinked directory (never followed), anything not a regular file.
   * A matched symlink to a file inside the workspace yields the target's bytes under the
   * link's path. Optional: an executor without it publishes no artifacts.
   */
  collectFiles?(
    handle: BuildHandle,
    patterns: readonly string[],
    signal?: AbortSignal,
  ): AsyncIterable<WorkspaceEntry>;
  /**
   * Optional (caches): where a prepared build's workspace and its steps' HOME are on this host,
   * for executors whose steps write host directories (local). The server packs a step's cache
   * paths from there after it succeeded, and restores an archive there before it starts
   * (checked first, see server/caches/archive.ts), owned by `owner` when given. Without it
   * (and without `cacheFiles`), caches are skipped with a log line.
   */
  cacheRoots?(handle: BuildHandle): HostDirs;
  /**
   * Optional (caches), for executors whose workspace is not a host directory (a volume, a pod):
   * `out` copies the workspace-relative `paths` of step `step` (its key) that exist into
   * `dir/w` (same relative paths, symlinks as links, nothing else followed) and, with `home`,
   * its `~/` paths (as its attempt kept them, see `StepSpec.cacheHome`) into `dir/h`; it
   * resolves with the paths copied. It rejects once the files it copies pass `limits` (their
   * content bytes, their entries): what a step leaves (a sparse terabyte) must not fill the
   * server's disk. `in` (absent with `restoreAtPrepare`) copies `dir/w` into the workspace
   * (merged, its files win) and, with `home`, stages `dir/h` for the step's HOME. Without
   * `home`, `~/` paths are skipped with a log line.
   */
  cacheFiles?: {
    home?: boolean;
    /**
     * Restores can only be handed to `prepare` (`BuildSpec.caches`): a pod's volumes are fixed
     * when it is created. `maxBytes`: the compressed bytes all of a build's restores may take.
     */
    restoreAtPrepare?: { maxBytes: number };
    out(
      handle: BuildHandle,
      step: string,
      paths: readonly string[],
      dir: string,
      limits: { maxBytes: number; maxEntries: number },
      signal?: AbortSignal,
    ): Promise<string[]>;
    in?(handle: BuildHandle, step: string, dir: string, signal?: AbortSignal): Promise<void>;
  };
  /**
   * Optional: lets go of what the executor holds open (a watch on the cluster), once the
   * process is done with it. Steps keep running; nothing is removed.
   */
  close?(): Promise<void>;
}

/** Host directories of a build (`Executor.cacheRoots`). */
export interface HostDirs {
  workspace: string;
  /** The steps' HOME; undefined when they have none this process may write. */
  home?: string;
  /** Who files put there must belong to, when steps run as another user than this process. */
  owner?: { uid: number; gid: number };
}

/** Thrown by prepare() when the build cannot start at all (engine down, image missing). */
export class ExecutorError extends Error {
  constructor(
    /** `gone`: resumeBuild found nothing of the build (its workspace was removed, the engine reset). */
    readonly code: 'engine_unavailable' | 'image_unavailable' | 'workspace' | 'service' | 'gone' | 'internal',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ExecutorError';
  }
}
