import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { dialectOf } from './db.js';
import type { Database } from './schema.js';

/**
 * Keys of the PostgreSQL advisory locks the store takes. Arbitrary numbers; they only have
 * to differ from each other and from other advisory locks taken on the same database.
 */
const KEYS = {
  /** Queue decisions: claiming builds, deleting a project. */
  queue: 0x51_1b_0a_01,
  /** Creating the first admin token. */
  tokens: 0x51_1b_0a_02,
} as const;

/**
 * Internal: serialises one kind of decision across every server process for the rest of
 * the current write transaction. PostgreSQL: a transaction-scoped advisory lock, released
 * by commit, rollback, or the server when the session dies, so a crashed process cannot
 * leave it held. SQLite: nothing to do, `BEGIN IMMEDIATE` already holds the only write lock.
 */
export async function serialize(trx: Kysely<Database>, what: keyof typeof KEYS): Promise<void> {
  if (dialectOf(trx) === 'postgres') await sql`select pg_advisory_xact_lock(${KEYS[what]})`.execute(trx);
}
