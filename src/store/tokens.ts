import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { StoreError } from './errors.js';
import { toToken } from './rows.js';
import { serialize } from './serialize.js';
import type { Database } from './schema.js';
import { writeTransaction } from './transaction.js';
import { TOKEN_ROLES } from './types.js';
import type { TokenInfo, TokenRole } from './types.js';

/** Prefix of every token, so secret scanners and people can recognise one. */
export const TOKEN_PREFIX = 'slw_';

/** `last_used_at` is written at most this often per token, not on every request. */
const LAST_USED_RESOLUTION_MS = 60_000;

export interface NewToken {
  name: string;
  role: TokenRole;
}

export interface CreatedToken {
  /** The secret itself: shown once, never stored, not recoverable. */
  token: string;
  info: TokenInfo;
}

/** Creates an API token: 256 random bits; only its SHA-256 is stored. */
export async function createToken(
  db: Kysely<Database>,
  input: NewToken,
  now: number = Date.now(),
): Promise<CreatedToken> {
  if (input.name.trim() === '')
    throw new StoreError('invalid', 'token name is empty', { details: { field: 'name' } });
  if (!TOKEN_ROLES.includes(input.role)) {
    throw new StoreError('invalid', `token role must be one of ${TOKEN_ROLES.join(', ')}`, {
      details: { field: 'role' },
    });
  }
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const row = await db
    .insertInto('tokens')
    .values({
      name: input.name,
      role: input.role,
      hash: hashToken(token),
      created_at: now,
      last_used_at: null,
      revoked_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return { token, info: toToken(row) };
}

/**
 * Creates the first admin token, only if no token exists yet (revoked ones count): what
 * the first start of a server prints once. Returns undefined on every later start. Two
 * servers starting together on one database cannot both create one.
 */
export async function createInitialAdminToken(
  db: Kysely<Database>,
  name = 'initial admin',
  now: number = Date.now(),
): Promise<CreatedToken | undefined> {
  return writeTransaction(db, async (trx) => {
    await serialize(trx, 'tokens');
    const any = await trx.selectFrom('tokens').select('id').limit(1).executeTakeFirst();
    if (any !== undefined) return undefined;
    return createToken(trx, { name, role: 'admin' }, now);
  });
}

/**
 * The token's identity if it is valid and not revoked, else undefined. Looked up by hash,
 * so the comparison never touches the secret, and timing reveals nothing about it.
 */
export async function verifyToken(
  db: Kysely<Database>,
  token: string,
  now: number = Date.now(),
): Promise<TokenInfo | undefined> {
  if (!token.startsWith(TOKEN_PREFIX)) return undefined;
  const row = await db
    .selectFrom('tokens')
    .selectAll()
    .where('hash', '=', hashToken(token))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS) {
    await db.updateTable('tokens').set({ last_used_at: now }).where('id', '=', row.id).execute();
    row.last_used_at = now;
  }
  return toToken(row);
}

/** All tokens, revoked ones included, oldest first. Never the secrets. */
export async function listTokens(db: Kysely<Database>): Promise<TokenInfo[]> {
  const rows = await db.selectFrom('tokens').selectAll().orderBy('id').execute();
  return rows.map(toToken);
}

/** Revokes a token for good. Returns false if there is no such token or it was revoked already. */
export async function revokeToken(
  db: Kysely<Database>,
  id: number,
  now: number = Date.now(),
): Promise<boolean> {
  const result = await db
    .updateTable('tokens')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
