import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import { dialectOf, inheritDialect, walSyncOf } from './db.js';
import { StoreError } from './errors.js';
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
  options: WriteOptions = {},
): Promise<T> {
  if (insideTransaction.has(db)) return fn(db);
  const relaxed = options.durability === 'relaxed';
  if (dialectOf(db) === 'postgres') {
    return db.transaction().execute(async (trx) => {
      adopt(trx, db);
      if (relaxed) await sql`set local synchronous_commit = off`.execute(trx);
      return fn(trx);
    });
  }
  // In WAL mode a full commit is a relaxed one and then the WAL's fsync, made off the event loop.
  const wal = walSyncOf(db);
  const unsynced = relaxed || wal !== undefined;
  const committed = await db.connection().execute(async (conn) => {
    adopt(conn, db);
    // A connection setting, set back at once: nothing else runs on the connection meanwhile.
    if (unsynced) await sql`pragma synchronous = normal`.execute(conn);
    try {
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
    } finally {
      if (unsynced) await sql`pragma synchronous = full`.execute(conn);
    }
  });
  if (!relaxed && wal !== undefined) {
    await wal.sync().catch((cause: unknown) => {
      throw new StoreError('unavailable', `cannot sync the database's write-ahead log: ${String(cause)}`, {
        cause,
      });
    });
  }
  return committed;
}

/** `writeTransaction` with `durability: 'relaxed'`. */
export function relaxedTransaction<T>(
  db: Kysely<Database>,
  fn: (trx: Kysely<Database>) => Promise<T>,
): Promise<T> {
  return writeTransaction(db, fn, { durability: 'relaxed' });
}

export interface WriteOptions {
  /**
   * `full` (default): the transaction is on disk when it returns; a power cut cannot take it.
   * (SQLite in WAL mode: committed unsynced, then the WAL file's fsync is awaited off the event
   * loop, shared with the full commits waiting at the same time; see `WalSync`.)
   * `relaxed`: it is written (a crash of the process loses nothing) but not synced: a power cut
   * or kernel crash may take it with the other relaxed commits since the last full one (which
   * syncs them all). For records a successor can do without: a build's progress, which
   * reconciliation ends `lost` or re-queues when it is gone (SQLite `synchronous=NORMAL` for
   * the transaction, PostgreSQL `synchronous_commit = off`). Ignored when joining a transaction.
   */
  durability?: 'full' | 'relaxed';
}

function adopt(trx: Kysely<Database>, parent: Kysely<Database>): void {
  inheritDialect(trx, parent);
  insideTransaction.add(trx);
}
