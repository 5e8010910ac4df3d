/**
 * Errors of the metadata store as data: a `code` to branch on (the API maps it to an HTTP
 * status in one place), words for people, optional details, and the driver error kept as
 * `cause` for logs. Store functions report an absent row on reads as `undefined`; they throw
 * only when a write cannot be done as asked.
 */
export type StoreErrorCode =
  /** The row a write refers to does not exist (unknown project id, build id, token id). */
  | 'not_found'
  /** The write clashes with existing data (duplicate slug, project with active builds). */
  | 'conflict'
  /** A value breaks a store invariant (bad slug, regex that does not compile, limit < 1). */
  | 'invalid'
  /** The database URL names no supported dialect. */
  | 'unsupported_url'
  /** The database could not be opened. */
  | 'unavailable'
  /** A schema migration failed; the schema is left at the last migration that succeeded. */
  | 'migration_failed';

export interface StoreErrorOptions {
  cause?: unknown;
  /** Machine-readable context, e.g. `{ field: 'slug' }`; safe to show to users. */
  details?: Record<string, unknown>;
}

/** The one error type store functions throw on purpose. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: StoreErrorCode, message: string, options: StoreErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** Narrows an unknown error to a store error, optionally of one code. */
export function isStoreError(err: unknown, code?: StoreErrorCode): err is StoreError {
  return err instanceof StoreError && (code === undefined || err.code === code);
}
