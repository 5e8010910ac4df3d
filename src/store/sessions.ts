import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { toToken } from './rows.js';
import type { Database } from './schema.js';
import type { TokenInfo } from './types.js';

/** Prefix of a session id, so one is never mistaken for (or accepted as) an API token. */
export const SESSION_PREFIX = 'slws_';

/**
 * How long a session lasts at most. The cookie itself dies with the browser session; this
 * bounds a browser that is never closed, and a cookie copied off a machine.
 */
export const SESSION_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

export interface CreatedSession {
  /** The session id for the cookie: shown to the browser once, only its SHA-256 is stored. */
  id: string;
  info: TokenInfo;
}

/**
 * Opens a browser session for a verified token: 256 random bits, stored as a hash like the
 * tokens. Also forgets the expired sessions, so the table holds only live ones.
 */
export async function createSession(
  db: Kysely<Database>,
  token: TokenInfo,
  now: number = Date.now(),
): Promise<CreatedSession> {
  await db
    .deleteFrom('sessions')
    .where('created_at', '<=', now - SESSION_MAX_AGE_MS)
    .execute();
  const id = SESSION_PREFIX + randomBytes(32).toString('base64url');
  await db
    .insertInto('sessions')
    .values({ hash: hashSession(id), token_id: token.id, created_at: now })
    .execute();
  return { id, info: token };
}

/**
 * The token a session id stands for, if the session is open and not expired and the token
 * not revoked; else undefined. Revoking a token thus ends every session it opened.
 */
export async function verifySession(
  db: Kysely<Database>,
  id: string,
  now: number = Date.now(),
): Promise<TokenInfo | undefined> {
  if (!id.startsWith(SESSION_PREFIX)) return undefined;
  const row = await db
    .selectFrom('sessions')
    .innerJoin('tokens', 'tokens.id', 'sessions.token_id')
    .selectAll('tokens')
    .where('sessions.hash', '=', hashSession(id))
    .where('sessions.created_at', '>', now - SESSION_MAX_AGE_MS)
    .where('tokens.revoked_at', 'is', null)
    .executeTakeFirst();
  return row === undefined ? undefined : toToken(row);
}

/** Ends a session (sign-out). Returns false if there was no such session. */
export async function deleteSession(db: Kysely<Database>, id: string): Promise<boolean> {
  const result = await db.deleteFrom('sessions').where('hash', '=', hashSession(id)).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

function hashSession(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}
