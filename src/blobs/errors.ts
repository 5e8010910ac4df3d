export type BlobErrorCode =
  /** A key that is empty, absolute, or has `.`/`..`/empty segments or a NUL. */
  | 'invalid_key'
  /** `--blobs` names no store this build knows (or is malformed). */
  | 'invalid_spec'
  /** The body's length differs from the size the caller announced. */
  | 'size_mismatch'
  /** The storage answered with a failure (disk full, bucket missing, access denied). */
  | 'storage';

/** A failure of a blob store, with a message fit for an operator. */
export class BlobError extends Error {
  override readonly name = 'BlobError';

  constructor(
    readonly code: BlobErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
