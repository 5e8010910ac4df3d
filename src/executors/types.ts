/**
 * The executor contract. An executor runs steps somewhere (host processes, containers,
 * pods); the orchestrator drives it through this lifecycle only:
 *
 *   prepare(build)          → once per build: workspace, network/pod, services. On failure the
 *                             orchestrator still calls destroy(), so prepare must leave what it
 *                             created findable by destroy.
 *   runStep(handle, step)   → once per attempt; streams output lines to the sink in order and
 *                             resolves with the exit. Never rejects for a step's own failure:
 *                             a non-zero exit is a result, an engine fault is `{kind:'error'}`.
 *                             When `signal` aborts, the step is killed (grace, then force) and
 *                             runStep resolves with `{kind:'aborted'}` once it is gone.
 *   destroy(handle)         → once per build, always, even after a failed prepare/runStep or an
 *                             abort. Idempotent. Removes everything the build created.
 *   listResources()         → what the executor still has for any build (reconciliation, gc).
 *   removeResources(buildId)→ removes leftovers of a build it no longer runs. Idempotent.
 *   collectFiles(handle, …) → optional: reads files of the workspace between steps (artifacts).
 *
 * Executors label what they create with the build id, project and step so that orphans can be
 * found after a crash.
 */
import type { Readable } from 'node:stream';
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
}

export interface StepSpec {
  /** `stage/step` – unique within the build; used in labels and names. */
  key: string;
  stage: string;
  step: string;
  image?: string;
  commands: string[];
  env: Record<string, string>;
  attempt: number;
}

export type StepExit =
  | { kind: 'exited'; exitCode: number }
  /** Killed because the signal aborted (cancel or timeout – the orchestrator knows which). */
  | { kind: 'aborted'; exitCode?: number }
  /** The executor could not run the step (missing image, engine down). */
  | { kind: 'error'; message: string };

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

export interface Executor {
  readonly name: 'local' | 'docker' | 'kubernetes' | 'memory';
  /** Workspace path steps will see for a build, known before prepare (for `${SLIPWAY_WORKSPACE}`). */
  workspacePath(buildId: string): string;
  prepare(build: BuildSpec, signal?: AbortSignal): Promise<BuildHandle>;
  runStep(handle: BuildHandle, step: StepSpec, sink: OutputSink, signal: AbortSignal): Promise<StepExit>;
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
}

/** Thrown by prepare() when the build cannot start at all (engine down, image missing). */
export class ExecutorError extends Error {
  constructor(
    readonly code: 'engine_unavailable' | 'image_unavailable' | 'workspace' | 'service' | 'internal',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ExecutorError';
  }
}
