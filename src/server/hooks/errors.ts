import type { HookErrorCode } from '../../contract/api-errors.js';

/**
 * The `code` of a webhook error answer; the same words as the REST API where they mean the
 * same (src/contract/api-errors.ts).
 */
export type { HookErrorCode };

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
