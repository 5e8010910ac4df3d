/**
 * The compiled, backend-neutral plan of a pipeline file. Every `${VAR}` is already
 * substituted; every value is validated. Executors and the orchestrator consume only this.
 */

import type { BuildEvent, FinalStatus } from '../contract/index.js';

// The shared words (src/contract/), here too for the many modules that take them from here.
export { EVENTS, FINAL_STATUSES } from '../contract/index.js';
export type { BuildEvent, FinalStatus, Status } from '../contract/index.js';

/** Where a value came from in the pipeline file, for messages that point at it. */
export interface SourcePos {
  line: number;
  col: number;
}

export interface WhenPlan {
  /** Source of a regex anchored at both ends when evaluated. */
  branch?: string;
  event?: BuildEvent[];
  /** Build statuses (so far) that let this stage run; default: only `success`. */
  status?: FinalStatus[];
}

/** An env entry whose value comes from a secret store at run time, never from the file. */
export interface SecretRef {
  env: string;
  secret: string;
}

export interface StepPlan {
  name: string;
  /** Image for container executors; undefined = executor default. Ignored by `local`. */
  image?: string;
  /** Each runs in one `sh -e` script, in order. */
  commands: string[];
  /** Full environment of the step: built-ins, top-level, stage and step env merged. */
  env: Record<string, string>;
  secrets: SecretRef[];
  timeoutMs?: number;
  /** `cache:` of the step: restored before its first attempt, saved after it succeeded. */
  cache?: CachePlan;
  retries: number;
  allowFailure: boolean;
  /** Names of steps of the same stage that must succeed first. */
  needs: string[];
  artifacts: string[];
  /** `reports:` of the step, globs substituted; unset when it has none. */
  reports?: ReportsPlan;
  /** Set on each cell of a step with a `matrix`: the step is one of several made from one. */
  matrix?: MatrixCellPlan;
  pos: SourcePos;
}

/** Test reports a step writes: read from its workspace after each attempt. */
export interface ReportsPlan {
  /** Workspace-relative paths or globs of JUnit XML files, as artifact paths are. */
  junit: string[];
}

/** Which matrix a step is a cell of, and the cell's values. */
export interface MatrixCellPlan {
  /** The name of the step as written, which `needs` names: it stands for all its cells. */
  step: string;
  /** The cell's values by axis (and `include` key), in the order written, as written. */
  values: Record<string, string>;
  /** Most cells of this matrix running at once (`max_parallel`); unset: no limit of its own. */
  maxParallel?: number;
  /**
   * Set for the steps of a stage with a matrix: which cell of it (0, 1, …) the step belongs to.
   * `maxParallel` then counts cells with a step running, not steps.
   */
  stageCell?: number;
}

export interface StagePlan {
  name: string;
  when?: WhenPlan;
  approval: boolean;
  steps: StepPlan[];
  pos: SourcePos;
}

export interface ServicePlan {
  name: string;
  image?: string;
  env: Record<string, string>;
  secrets: SecretRef[];
  /** Run by `/bin/sh -e` instead of the image's own command. */
  commands?: string[];
  /** TCP port the steps wait for before starting. */
  waitFor?: number;
}

export interface PipelinePlan {
  /** The file it was compiled from, as given (for messages). */
  file: string;
  image?: string;
  /** Top-level env after substitution (also merged into each step's env). */
  env: Record<string, string>;
  services: ServicePlan[];
  stages: StagePlan[];
}

/**
 * A step's cache. The key is resolved before the build starts (`hashFiles` needs the
 * checkout); `restoreKeys` are prefixes tried in order when the exact key is missing.
 */
export interface CachePlan {
  key: CacheKeyPart[];
  restoreKeys: string[];
  /** Relative to the workspace, or `~/…` for the step's HOME; no `..`, never absolute. */
  paths: string[];
}

/** Text (variables substituted), or `hashFiles(globs…)`: a SHA-256 over the matching files of the checkout. */
export type CacheKeyPart = { text: string } | { hashFiles: string[] };

/** What the compiler needs to know about the build to substitute built-in variables. */
export interface BuildContext {
  buildId: string;
  buildNumber: number;
  project: string;
  branch: string;
  tag?: string;
  commit: string;
  event: BuildEvent;
  /** Workspace path as steps see it (executor dependent). */
  workspace: string;
}
