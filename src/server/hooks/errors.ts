/** The `code` of a webhook error answer; the same words as the REST API where they mean the same. */
export type HookErrorCode =
  /** The payload is JSON but not what the forge sends for this event (missing ref, wrong types). */
  | 'invalid_request'
  /** The body is empty, or not JSON (nor GitHub's form-encoded `payload=`). */
  | 'invalid_json'
  | 'payload_too_large'
  /** Missing or wrong signature/token, or no secret to check it against. */
  | 'unauthorized'
  /** No project builds the repository the payload names (or the `?project=` given). */
  | 'not_found'
  /** Several projects build the repository: the hook URL must name one with `?project=`. */
  | 'conflict'
  /** A branch, tag or commit that is not a plain git name (shell metacharacters, `..`, …). */
  | 'invalid_ref'
  /** A build-scripts repository's `project.json` or `build.sh` is missing or invalid. */
  | 'invalid_descriptor'
  /** The build-scripts repository could not be fetched. */
  | 'scripts_unavailable'
  | 'internal';

/**
 * A webhook delivery refused, with its HTTP status, and the `reason` label it counts under in
 * `slipway_webhook_rejected_total` (none: not counted).
 */
export class HookError extends Error {
  override readonly name = 'HookError';

  constructor(
    readonly statusCode: number,
    readonly code: HookErrorCode,
    message: string,
    readonly reason?: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** The answer body of every webhook error. */
export function errorBody(code: HookErrorCode, message: string, details: Record<string, unknown> = {}) {
  return { error: { code, message, details } };
}
