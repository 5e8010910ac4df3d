import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { TokenInfo, TokenRole } from './types.js';

/** Prefix of a session id of a person signed in by OIDC (a token's session is `slws_`). */
export const USER_SESSION_PREFIX = 'slwu_';

/**
 * How long a signed-in person's session lasts at most. Shorter than a token's session: the
 * role is decided at sign-in from the IdP's groups, so a person removed from a group keeps
 * the old role until this runs out (or they sign out).
 */
export const USER_SESSION_MAX_AGE_MS = 12 * 60 * 60 * 1000;

/** How long a sign-in may take between leaving for the IdP and coming back. */
export const OIDC_LOGIN_MAX_AGE_MS = 10 * 60 * 1000;

export interface OidcIdentity {
  issuer: string;
  subject: string;
  /** What builds and approvals record for this person. */
  name: string;
  email: string | null;
}

/**
 * A signed-in person as the API's caller: the same shape as a token's, so every route
 * records `name` alike. `id` is the user's id negated, so it never meets a token's id where
 * callers are told apart by id (the live log streams, closed when a token is revoked).
 */
export interface UserCaller extends TokenInfo {
  issuer: string;
}

/** Records (or updates) the person and opens a session with `role`. Returns the session id. */
export async function createUserSession(
  db: Kysely<Database>,
  identity: OidcIdentity,
  role: TokenRole,
  now: number = Date.now(),
): Promise<{ id: string; caller: UserCaller }> {
  await db
    .deleteFrom('user_sessions')
    .where('created_at', '<=', now - USER_SESSION_MAX_AGE_MS)
    .execute();
  const user = await db
    .insertInto('oidc_users')
    .values({
      issuer: identity.issuer,
      subject: identity.subject,
      name: identity.name,
      email: identity.email,
      created_at: now,
      signed_in_at: now,
    })
    .onConflict((oc) =>
      oc
        .columns(['issuer', 'subject'])
        .doUpdateSet({ name: identity.name, email: identity.email, signed_in_at: now }),
    )
    .returningAll()
    .executeTakeFirstOrThrow();
  const id = USER_SESSION_PREFIX + randomBytes(32).toString('base64url');
  await db
    .insertInto('user_sessions')
    .values({ hash: sha256(id), user_id: user.id, role, created_at: now })
    .execute();
  return { id, caller: toCaller(user, role, now) };
}

/** The person a session id stands for, if it is open and not expired; else undefined. */
export async function verifyUserSession(
  db: Kysely<Database>,
  id: string,
  now: number = Date.now(),
): Promise<UserCaller | undefined> {
  if (!id.startsWith(USER_SESSION_PREFIX)) return undefined;
  const row = await db
    .selectFrom('user_sessions')
    .innerJoin('oidc_users', 'oidc_users.id', 'user_sessions.user_id')
    .selectAll('oidc_users')
    .select(['user_sessions.role', 'user_sessions.created_at as session_created_at'])
    .where('user_sessions.hash', '=', sha256(id))
    .where('user_sessions.created_at', '>', now - USER_SESSION_MAX_AGE_MS)
    .executeTakeFirst();
  return row === undefined ? undefined : toCaller(row, row.role, row.session_created_at);
}

/** Ends a person's session (sign-out). Returns false if there was no such session. */
export async function deleteUserSession(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.deleteFrom('user_sessions').where('hash', '=', sha256(id)).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

export interface OidcLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
}

/** Keeps a sign-in under way, under the SHA-256 of the browser's cookie value `key`. */
export async function saveOidcLogin(
  db: Kysely<Database>,
  key: string,
  login: OidcLogin,
  now: number = Date.now(),
): Promise<void> {
  await db
    .deleteFrom('oidc_logins')
    .where('created_at', '<=', now - OIDC_LOGIN_MAX_AGE_MS)
    .execute();
  await db
    .insertInto('oidc_logins')
    .values({
      hash: sha256(key),
      state: login.state,
      nonce: login.nonce,
      code_verifier: login.codeVerifier,
      return_to: login.returnTo,
      created_at: now,
    })
    .execute();
}

/**
 * Takes the sign-in of cookie value `key` out of the store: once only, so a callback URL
 * replayed (even with its cookie) finds nothing. Undefined when unknown or too old.
 */
export async function takeOidcLogin(
  db: Kysely<Database>,
  key: string,
  now: number = Date.now(),
): Promise<OidcLogin | undefined> {
  const row = await db
    .deleteFrom('oidc_logins')
    .where('hash', '=', sha256(key))
    .returningAll()
    .executeTakeFirst();
  if (row === undefined || row.created_at <= now - OIDC_LOGIN_MAX_AGE_MS) return undefined;
  return { state: row.state, nonce: row.nonce, codeVerifier: row.code_verifier, returnTo: row.return_to };
}

function toCaller(
  user: { id: number; name: string; issuer: string; created_at: number },
  role: TokenRole,
  lastUsedAt: number,
): UserCaller {
  return {
    id: -user.id,
    name: user.name,
    role,
    createdAt: user.created_at,
    lastUsedAt,
    revoked: false,
    issuer: user.issuer,
  };
}

function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
