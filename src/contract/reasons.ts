/**
 * Why a step, stage or build ended as it did: a typed code plus words for people. The same
 * codes are stored, sent by the API and shown by the CLI and the web UI.
 */
export const REASON_CODES = [
  'exit_code', // a command exited non-zero
  'timeout', // the step ran past its timeout and was killed
  'cancelled', // a person or signal cancelled the build
  'fail_fast', // a sibling step failed, so this one was cancelled
  'needs_failed', // a step it needs did not succeed
  'when', // the stage's `when` did not hold
  'earlier_failure', // an earlier stage failed
  'approval_required', // nobody approved (e.g. `slipway run` without --approve)
  'approval_rejected', // a person rejected the stage
  'executor', // the executor could not run it
  'secret', // a `from_secret` it needs is not defined or cannot be read
  // Why an executor could not run a step or lost it (see STEP_ERROR_CODES):
  'image_pull', // the image cannot be pulled (missing, no access, registry down)
  'engine_unavailable', // the engine / API server does not answer
  'oom_killed', // the step was killed for using more memory than it may
  'evicted', // the node evicted it (Kubernetes: disk or memory pressure, preemption)
  'unschedulable', // no node can take it (Kubernetes)
  'gone', // what ran it disappeared (container removed, engine reset, pid not ours any more)
  'workspace', // the workspace could not be set up or read
  // Set by the server around a run:
  'checkout', // the commit could not be fetched
  'pipeline_missing', // no pipeline file in the commit
  'pipeline_invalid', // the pipeline file does not compile
  'superseded', // a newer build of the branch replaced it
  'lost', // its server stopped while it ran
  'internal', // a bug in Slipway: the message says what
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

/** The codes an executor gives a step it could not run or lost (`StepExit` of kind `error`). */
export const STEP_ERROR_CODES = [
  'image_pull',
  'engine_unavailable',
  'oom_killed',
  'evicted',
  'unschedulable',
  'gone',
  'workspace',
  'internal',
] as const satisfies readonly ReasonCode[];
export type StepErrorCode = (typeof STEP_ERROR_CODES)[number];

export interface Reason {
  code: ReasonCode;
  message: string;
}

export function isReasonCode(value: unknown): value is ReasonCode {
  return (REASON_CODES as readonly unknown[]).includes(value);
}

/**
 * A reason read back from storage (two columns, or JSON from an older server). A code this
 * version does not know — written by a newer version, or by hand — becomes `internal`, with
 * the original code kept at the front of the message so that nothing is lost.
 */
export function parseReason(code: string, message?: string | null): Reason;
export function parseReason(code: string | null | undefined, message?: string | null): Reason | null;
export function parseReason(code: string | null | undefined, message?: string | null): Reason | null {
  if (code === null || code === undefined) return null;
  const text = message ?? '';
  if (isReasonCode(code)) return { code, message: text };
  return { code: 'internal', message: text === '' ? `[${code}]` : `[${code}] ${text}` };
}
