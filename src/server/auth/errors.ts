import type { TokenRole } from '../../store/index.js';

export type AuthErrorCode =
  /** No token, a malformed `Authorization` header, or a token that is unknown or revoked. */
  | 'unauthorized'
  /** A valid token whose role is below what the route needs. */
  | 'forbidden';

/** A request refused by authentication; the API's error handler turns it into 401/403. */
export class AuthError extends Error {
  override readonly name = 'AuthError';

  constructor(
    readonly code: AuthErrorCode,
    message: string,
    /** The role the route needs (for 403). */
    readonly needed?: TokenRole,
  ) {
    super(message);
  }
}
