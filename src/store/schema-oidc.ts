import type { Generated } from 'kysely';
import type { TokenRole } from './types.js';

/** Tables of migration `0016_oidc_users`; read and written by `oidc-users.ts`. */
export interface OidcUsersTable {
  id: Generated<number>;
  /** The identity provider's issuer URL; with `subject`, who the person is. */
  issuer: string;
  /** The `sub` claim: stable per person at one issuer (names and e-mails change). */
  subject: string;
  /** What builds and approvals record: "Name <e-mail>", or whichever of them the IdP gave. */
  name: string;
  email: string | null;
  created_at: number;
  signed_in_at: number;
}

export interface UserSessionsTable {
  /** Hex SHA-256 of the session id; the id itself lives only in the browser's cookie. */
  hash: string;
  user_id: number;
  /** Decided at sign-in from the role mapping. */
  role: TokenRole;
  created_at: number;
}

export interface OidcLoginsTable {
  /** Hex SHA-256 of the sign-in cookie's value. */
  hash: string;
  state: string;
  nonce: string;
  code_verifier: string;
  /** Path of the web UI to return to once signed in. */
  return_to: string;
  created_at: number;
}
