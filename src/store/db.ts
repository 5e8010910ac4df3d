import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, type SqliteDatabase } from 'kysely';
import type PgModule from 'pg';
import { StoreError } from './errors.js';
import type { Database } from './schema.js';
import { WalSync } from './wal-sync.js';

export type DialectName = 'sqlite' | 'postgres';

/** Where a database URL points, after parsing. */
export type DatabaseTarget = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

export interface DatabaseOptions {
  /** PostgreSQL connections per pool; default 10. */
  poolSize?: number;
  /** How long SQLite waits for another process's write lock before failing; default 5000. */
  busyTimeoutMs?: number;
  /**
   * Errors of idle pooled PostgreSQL connections (server restart, network drop). They are
   * not fatal: the pool replaces the connection, and the next query reports real trouble.
   * Without a listener Node would crash on the pool's `error` event.
   */
  onPoolError?: (err: Error) => void;
}

const dialects = new WeakMap<Kysely<Database>, DialectName>();

/** The WAL fsync of each SQLite instance in WAL mode (see `WalSync`). */
const walSyncs = new WeakMap<Kysely<Database>, WalSync>();

/**
 * The WAL fsync of an instance from `openDatabase`: undefined for PostgreSQL, an in-memory
 * SQLite database, one not in WAL mode, and for transactions (`writeTransaction` asks the
 * instance it was given).
 */
export function walSyncOf(db: Kysely<Database>): WalSync | undefined {
  return walSyncs.get(db);
}

/**
 * The drivers are loaded by the dialect that uses them (a PostgreSQL server never loads the
 * SQLite addon, a SQLite one never `pg`); both are CommonJS, so opening stays synchronous.
 */
const loadDriver = createRequire(import.meta.url);

/**
 * Parses `sqlite:<path>`, `sqlite://<path>`, `:memory:`, a plain file path, or
 * `postgres://…` / `postgresql://…`.
 */
export function parseDatabaseUrl(url: string): DatabaseTarget {
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: 'postgres', url };
  if (/^sqlite:/i.test(url)) {
    const path = url.slice('sqlite:'.length).replace(/^\/\//, '');
    if (path === '') throw new StoreError('unsupported_url', `database URL ${url} names no file`);
    return { dialect: 'sqlite', path };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new StoreError(
      'unsupported_url',
      `unsupported database URL ${redact(url)}: use sqlite:<path> or postgres://…`,
    );
  }
  if (url === '') throw new StoreError('unsupported_url', 'database URL is empty');
  return { dialect: 'sqlite', path: url };
}

/**
 * Opens the metadata database. The caller owns the instance and ends it with `destroy()`.
 * Run `migrateToLatest` before using the repositories.
 *
 * SQLite: WAL (readers do not block the writer), `synchronous=FULL` (a build the API accepted
 * survives a power cut), foreign keys on, and a busy timeout so that another process's write
 * transaction is waited for. Open one instance per SQLite file per process: better-sqlite3 is
 * synchronous, so a second instance in the same process would block the event loop while
 * waiting for the first one's lock, which can then never be released.
 *
 * PostgreSQL: a `pg` pool whose `bigint` columns (ids, epoch-ms times, counts) are parsed to
 * `number`, failing loudly beyond 2^53 instead of losing precision.
 */
export function openDatabase(url: string, options: DatabaseOptions = {}): Kysely<Database> {
  const target = parseDatabaseUrl(url);
  const db =
    target.dialect === 'sqlite' ? openSqlite(target.path, options) : openPostgres(target.url, options);
  dialects.set(db, target.dialect);
  return db;
}

/**
 * The dialect of an instance from `openDatabase` (or a transaction from `writeTransaction`).
 * The store needs it where SQL differs: row locks, `BEGIN IMMEDIATE`, column types.
 */
export function dialectOf(db: Kysely<Database>): DialectName {
  const dialect = dialects.get(db);
  if (dialect === undefined) {
    throw new StoreError(
      'invalid',
      'this Kysely instance was not opened by openDatabase (nor is it a transaction of writeTransaction)',
    );
  }
  return dialect;
}

/** Records the dialect of an instance derived from an opened one (transactions, connections). */
export function inheritDialect(child: Kysely<Database>, parent: Kysely<Database>): void {
  dialects.set(child, dialectOf(parent));
}

function openSqlite(path: string, options: DatabaseOptions): Kysely<Database> {
  const memory = path === ':memory:';
  let sqlite: BetterSqlite3.Database;
  let wal: WalSync | undefined;
  try {
    if (!memory) {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      makePrivateFile(path, true);
    }
    const Sqlite = loadDriver('better-sqlite3') as typeof BetterSqlite3;
    sqlite = new Sqlite(path, { timeout: options.busyTimeoutMs ?? 5000 });
    if (!memory) {
      // A file system without shared memory (some network mounts) stays in rollback-journal mode.
      if (String(sqlite.pragma('journal_mode = WAL', { simple: true })).toLowerCase() === 'wal')
        wal = new WalSync(`${path}-wal`);
      // SQLite gives these the database file's mode when it creates them; ones left by an
      // older version may still be looser.
      for (const suffix of ['-wal', '-shm']) makePrivateFile(path + suffix, false);
    }
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
  } catch (cause) {
    throw new StoreError('unavailable', `cannot open SQLite database ${path}: ${messageOf(cause)}`, {
      cause,
    });
  }
  const database = cachingStatements(sqlite);
  const db = new Kysely<Database>({
    dialect: new SqliteDialect({
      database: {
        ...database,
        close: () => {
          wal?.close();
          database.close();
        },
      },
    }),
  });
  if (wal !== undefined) walSyncs.set(db, wal);
  return db;
}

/** Prepared statements kept per SQLite connection (least recently used dropped first). */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely's SQLite driver prepares every query it runs; preparing (parsing and planning the SQL)
 * costs more than running most of ours. The store's queries are few shapes run again and again
 * (a lease renewal, a step's record), so a statement is kept by its text and reused. A kept
 * statement still iterating is not handed out again (better-sqlite3 refuses any query on the
 * connection meanwhile, so this is a guard, not a path). SQLite re-prepares a kept statement by
 * itself after a schema change.
 */
export function cachingStatements(sqlite: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => sqlite.close(),
    prepare: (text) => {
      const cached = cache.get(text);
      if (cached !== undefined) {
        if (cached.busy) return sqlite.prepare(text);
        cache.delete(text);
        cache.set(text, cached);
        return cached;
      }
      const statement = sqlite.prepare(text);
      cache.set(text, statement);
      if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      return statement;
    },
  };
}

/**
 * The database file is the server's alone (0600): it holds token hashes, sealed secrets and
 * every build's records, and builds run on the same host. Created so when `create`, tightened
 * when it exists looser; a file of another user (chmod refused) is left as it is.
 */
function makePrivateFile(path: string, create: boolean): void {
  let mode: number;
  try {
    mode = statSync(path).mode & 0o777;
  } catch {
    if (create) closeSync(openSync(path, 'a', 0o600));
    return;
  }
  if ((mode & 0o077) === 0) return;
  try {
    chmodSync(path, mode & 0o600);
  } catch {
    // Not ours to change; opening it reports real trouble.
  }
}

const INT8_OID = 20;

function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${value} does not fit a JavaScript number`);
  return n;
}

function openPostgres(url: string, options: DatabaseOptions): Kysely<Database> {
  const pg = loadDriver('pg') as typeof PgModule;
  // A per-pool parser, not pg.types.setTypeParser: that one is global to the process and
  // would change results for any other pg user in it.
  const getTypeParser: typeof pg.types.getTypeParser = (oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    const parser: unknown = pg.types.getTypeParser(oid, format);
    return parser;
  };
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize ?? 10, types: { getTypeParser } });
  const onPoolError = options.onPoolError ?? (() => undefined);
  pool.on('error', onPoolError);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Hides a password in a URL before it goes into a message. */
function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}
