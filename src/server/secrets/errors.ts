export type SecretErrorCode =
  /** `SLIPWAY_SECRET_KEY` or the key file does not hold a 32-byte key. */
  | 'invalid_key'
  /** The key file can be read by group or others. */
  | 'key_file_permissions'
  /** The key file cannot be read or created. */
  | 'key_file'
  /** A sealed value does not open: another key sealed it, or it was altered. */
  | 'tampered'
  /** A secret name or value that cannot be stored. */
  | 'invalid';

/** A failure of the secrets machinery, with a message that says what to do. */
export class SecretError extends Error {
  override readonly name = 'SecretError';

  constructor(
    readonly code: SecretErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
