import type { FinalStatus } from '../pipeline/types.js';
import type { OutputStream } from '../executors/types.js';
import type { SourceSeed } from '../executors/workspace-seed.js';

/** Why a step, stage or build ended as it did, as a typed code plus words for people. */
export type ReasonCode =
  | 'exit_code' // a command exited non-zero
  | 'timeout' // the step ran past its timeout and was killed
  | 'cancelled' // a person or signal cancelled the build
  | 'fail_fast' // a sibling step failed, so this one was cancelled
  | 'needs_failed' // a step it needs did not succeed
  | 'when' // the stage's `when` did not hold
  | 'earlier_failure' // an earlier stage failed
  | 'approval_required' // nobody approved (e.g. `slipway run` without --approve)
  | 'approval_rejected' // a person rejected the stage
  | 'executor' // the executor could not run it
  | 'secret' // a `from_secret` it needs is not defined or cannot be read
  // Set by the server around a run:
  | 'checkout' // the commit could not be fetched
  | 'pipeline_missing' // no pipeline file in the commit
  | 'pipeline_invalid' // the pipeline file does not compile
  | 'superseded' // a newer build of the branch replaced it
  | 'lost' // its server stopped while it ran
  | 'internal'; // a bug in Slipway: the message says what

export interface Reason {
  code: ReasonCode;
  message: string;
}

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
}

export interface LogLine {
  stream: OutputStream;
  text: string;
  /** Milliseconds since epoch, taken when the orchestrator received the line. */
  time: number;
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
}
