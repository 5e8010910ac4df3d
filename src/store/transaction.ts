import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { dialectOf, inheritDialect } from './db.js';
import type { Database } from './schema.js';

const insideTransaction = new WeakSet<Kysely<Database>>();

/**
 * Runs `fn` in a transaction that writes. Store functions that take `db` accept the
 * transaction too, and join it instead of opening a nested one, so several store writes
 * can be made atomic together.
 *
 * SQLite: `BEGIN IMMEDIATE` takes the database's write lock up front. A plain (deferred)
 * `BEGIN` that reads first and writes later can fail with SQLITE_BUSY when another process
 * wrote in between, without the busy timeout helping; taking the lock first makes such
 * transactions queue instead. Inside `fn`, use only the transaction: the SQLite driver has
 * one connection, so a query on the outer instance would wait for `fn` forever.
 *
 * PostgreSQL: a READ COMMITTED transaction. Every statement sees what committed before it
 * started, which the queue relies on after taking its advisory lock.
 */
export async function writeTransaction<T>(
  db: Kysely<Database>,
  fn: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  if (insideTransaction.has(db)) return fn(db);
  if (dialectOf(db) === 'postgres') {
    return db.transaction().execute((trx) => {
      adopt(trx, db);
      return fn(trx);
    });
  }
  return db.connection().execute(async (conn) => {
    adopt(conn, db);
    await sql`begin immediate`.execute(conn);
    try {
      const result = await fn(conn);
      await sql`commit`.execute(conn);
      return result;
    } catch (err) {
      // SQLite may already have rolled back by itself (e.g. disk full); the first error is
      // the one worth reporting.
      await sql`rollback`.execute(conn).catch(() => undefined);
      throw err;
    }
  });
}

function adopt(trx: Kysely<Database>, parent: Kysely<Database>): void {
  inheritDialect(trx, parent);
  insideTransaction.add(trx);
}
