import type { FinalStatus, Reason } from '../contract/index.js';
import type {
  BuildHandle,
  BuildSpec,
  OutputPosition,
  OutputStream,
  StepExit,
  StepRef,
  StepSpec,
} from '../executors/types.js';
import type { StepPlan } from '../pipeline/types.js';
import type { SourceSeed } from '../executors/workspace-seed.js';
import type { ReuseState } from './reuse.js';

/** Why a step, stage or build ended as it did: the shared words of src/contract/. */
export type { Reason, ReasonCode } from '../contract/index.js';

export interface StepResult {
  name: string;
  status: FinalStatus;
  exitCode: number | null;
  durationMs: number;
  attempts: number;
  reason?: Reason;
  allowFailure: boolean;
}

export interface StageResult {
  name: string;
  status: FinalStatus;
  durationMs: number;
  reason?: Reason;
  steps: StepResult[];
}

export interface BuildResult {
  status: FinalStatus;
  durationMs: number;
  reason?: Reason;
  stages: StageResult[];
  /**
   * The run was detached (`RunOptions.detach`): its steps were left running for a successor
   * process, and `status`, `reason` and `stages` mean nothing.
   */
  detached?: boolean;
}

export interface LogLine {
  stream: OutputStream;
  text: string;
  /** Milliseconds since epoch, taken when the orchestrator received the line. */
  time: number;
  /**
   * Step output only: how far the executor's output of this stream of this attempt had been
   * read when this line was emitted (pieces, as in `OutputPosition`). Lines held back by the
   * masker (the first pieces of a cut line) are emitted with the count after their last
   * piece, so the highest stored `pieces` per stream is where a successor resumes: no line
   * repeats and none is skipped.
   */
  position?: { attempt: number; stream: OutputStream; pieces: number };
}

/** Where an attempt of a step stands: how many it may take, and how the one before ended. */
export interface AttemptInfo {
  /** 1 + the step's `retries`. */
  maxAttempts: number;
  /** The previous attempt's end, from attempt 2 on (only failures are retried). */
  previous?: { exitCode: number | null; reason?: Reason };
}

/**
 * What the orchestrator tells the outside world while a build runs. The CLI prints these;
 * the server persists them and fans them out. Handlers must not throw and should be fast:
 * they are called synchronously on the hot path of log output.
 */
export interface BuildObserver {
  stageStarted?(stage: string): void;
  stageWaiting?(stage: string): void;
  stageFinished?(stage: string, result: StageResult): void;
  stepStarted?(stage: string, step: string, attempt: number, info: AttemptInfo): void;
  /**
   * Progress of an attempt's pending phase (pulling the image, scheduling), before it runs:
   * not part of the step's timeout.
   */
  stepPending?(stage: string, step: string, text: string): void;
  stepLog?(stage: string, step: string, line: LogLine): void;
  stepFinished?(stage: string, step: string, result: StepResult): void;
  serviceLog?(service: string, line: LogLine): void;
}

export type ApprovalDecision =
  | { decision: 'approve'; by?: string }
  | { decision: 'reject'; by?: string; message?: string }
  /** Nobody can approve here: the stage and the rest are skipped. */
  | { decision: 'skip'; message: string };

/** Decides approval stages. The server waits for a person; `slipway run` answers at once. */
export interface Approver {
  request(stage: string, signal: AbortSignal): Promise<ApprovalDecision>;
}

/** Resolves `from_secret` names to values at run time. */
export interface SecretSource {
  get(name: string): Promise<string | undefined>;
}

/** What `beforeStep` adds to a step's attempts. */
export type StepAdditions = Pick<StepSpec, 'cacheHome'>;

export interface RunOptions {
  /** Steps of one stage running at once; default: number of CPUs. */
  parallelism?: number;
  observer?: BuildObserver;
  approver?: Approver;
  secrets?: SecretSource;
  /** Aborting cancels the build: running steps are killed, the rest is skipped. */
  signal?: AbortSignal;
  /** Directory whose contents seed the workspace. */
  sourceDir?: string;
  /** Which of its files, see `BuildSpec.sourceSeed`. */
  sourceSeed?: SourceSeed;
  clock?: () => number;
  /**
   * Go on with a build an earlier process was running: `executor.resumeBuild` instead of
   * `prepare`; what ended is reused, running steps are followed from their position.
   */
  resume?: ResumeState;
  /**
   * Re-run failed (`planReuse`): steps whose results an earlier build of the commit gave, taken
   * as they are: they do not run, and no observer event is sent for them (the caller records
   * them); `needs`, fail-fast and the stage's and build's status count them as any result. A
   * stage whose every step is reused is neither filtered by `when` nor approved again.
   */
  reuse?: ReuseState;
  /**
   * An attempt runs: awaited before any of its output is read, so that the ref can be stored
   * with the step's record (a successor follows it from there). A throw stops the step: it
   * ends `error` (`internal`). Not called for an attempt followed on resume (its ref is known).
   */
  onStepRunning?: (stage: string, step: string, attempt: number, ref: StepRef) => Promise<void>;
  /**
   * An attempt ended and its whole output was delivered to the observer: awaited before the
   * executor releases it (its exit code and output go with it), so that `exit` can be stored
   * with the step's record. A successor that finds the attempt running in the records with
   * this exit takes it as is (`StepResume.exit`), even when the executor no longer has the
   * step. A throw is ignored. Not called for a detached attempt.
   */
  onStepExited?: (stage: string, step: string, attempt: number, exit: StepExit) => Promise<void>;
  /**
   * Aborting detaches the run (the server is stopping): running steps are left running,
   * nothing new starts, approval waits end, the build is not destroyed, and runPipeline
   * resolves soon with `detached: true`. A step that ended before is still reported.
   */
  detach?: AbortSignal;
  /**
   * Called after each successful attempt (exit code 0, not aborted) while the workspace still
   * exists, e.g. to collect the step's artifacts; its result replaces the attempt's exit (an
   * `error` exit turns the step into `error`). `signal` aborts on cancel, timeout or fail-fast.
   * Must not reject (a rejection is taken as an `internal` error of the step).
   */
  afterStep?: (
    stage: string,
    step: StepPlan,
    handle: BuildHandle,
    exit: StepExit,
    signal: AbortSignal,
  ) => Promise<StepExit>;
  /**
   * Called after each attempt that ran to an exit, whatever its exit code (not when detached or
   * the build was cancelled), while the workspace still exists and before `afterStep`: e.g. to
   * read the step's test reports, which matter most when it failed. `signal` aborts when the
   * build is cancelled. It cannot change the attempt's result; a rejection is ignored.
   */
  afterAttempt?: (
    stage: string,
    step: StepPlan,
    attempt: number,
    handle: BuildHandle,
    exit: StepExit,
    signal: AbortSignal,
  ) => Promise<void>;
  /**
   * Called once per step before its first attempt starts (after its `stepStarted`), not for a
   * step followed on resume: e.g. to restore its cache into the workspace. The step starts
   * once it resolves; a rejection is ignored (the step runs without what it would have done).
   * `signal` aborts on cancel. What it resolves with is added to the spec of every attempt of
   * the step (`StepSpec.cacheHome`).
   */
  beforeStep?: (
    stage: string,
    step: StepPlan,
    handle: BuildHandle,
    signal: AbortSignal,
  ) => Promise<StepAdditions | void>;
  /** Restored caches for executors that take them only when the build is prepared (`BuildSpec.caches`). */
  caches?: BuildSpec['caches'];
}

/** The state of a build an earlier process was running, as its records say. */
export interface ResumeState {
  /** By stage name. A stage not listed has not started. */
  stages: Record<string, StageResume>;
}

export interface StageResume {
  /** Set when the stage ended: its result is taken as is (nothing re-runs, no observer event). */
  ended?: StageResult;
  /** The stage was waiting for approval: the approver is asked again. */
  waiting?: boolean;
  /** By step name; a step not listed has not started. */
  steps: Record<string, StepResume>;
}

export type StepResume =
  /** The step ended: its result is taken as is (no observer event). */
  | { kind: 'ended'; result: StepResult }
  /**
   * Attempt `attempt` was started (its `stepStarted` was seen). `ref` undefined: started but
   * the ref was never stored: `findStep`, else that attempt is started again (startStep is
   * idempotent per key and attempt). `position`: the output already stored for this attempt
   * (see `LogLine.position`). `startedAt`: when the attempt started running (epoch ms, the
   * ref's `startedAt`): the timeout counts from there. `previous`: how the attempt before it
   * ended, for the attempt info of a restarted attempt. `exit`: the attempt had ended, its
   * output stored, when its process died (`RunOptions.onStepExited`): it is taken as is and
   * the executor's step only released, not followed.
   */
  | {
      kind: 'running';
      attempt: number;
      ref?: StepRef;
      position: OutputPosition;
      startedAt: number;
      previous?: { exitCode: number | null; reason?: Reason };
      exit?: StepExit;
    };
