import { randomBytes } from 'node:crypto';

/**
 * Internal errors (bugs, failures nobody planned for) reach users as a short message with an
 * id, never with their text or stack, which may name hosts, paths or internals; the same id
 * is in the server's structured log next to the stack, so an operator finds it from what the
 * user quotes. Used by the HTTP API's error handler and by build runs (a build's reason).
 */

/** The part of a pino logger internal errors are reported to; pino's `Logger` fits. */
export interface ErrorLog {
  error(fields: Record<string, unknown>, message: string): void;
}

/** A fresh id for one internal error: 12 hex digits, short to quote, random enough never to repeat. */
export function newErrorId(): string {
  return randomBytes(6).toString('hex');
}

/** What users are told of an internal error. */
export function internalErrorMessage(errorId: string): string {
  return `internal error (id ${errorId})`;
}

/**
 * Logs `error` (with its stack, under pino's `err`) and `fields` at error level with a new
 * `errorId`; returns the id. Without a log the id still goes to the user: the report is lost,
 * the secrecy is not.
 */
export function reportInternalError(
  log: ErrorLog | undefined,
  error: unknown,
  message: string,
  fields: Record<string, unknown> = {},
): string {
  const errorId = newErrorId();
  log?.error({ ...fields, err: error, errorId }, message);
  return errorId;
}
