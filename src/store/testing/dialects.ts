import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { openDatabase } from '../db.js';
import type { DialectName } from '../db.js';
import { migrateToLatest } from '../migrate.js';
import type { Database } from '../schema.js';
import { createScratchDatabase, postgresUrlForTests } from './postgres.js';

/**
 * The dialects every store test runs on, Kysely style: SQLite always, PostgreSQL when
 * `postgresUrlForTests` finds one (and always in CI).
 */
export const DIALECTS: readonly DialectName[] =
  (await postgresUrlForTests()) === undefined ? ['sqlite'] : ['sqlite', 'postgres'];

/** A fresh, migrated database of one dialect, private to one test file. */
export interface TestDatabase {
  dialect: DialectName;
  url: string;
  db: Kysely<Database>;
  /**
   * Another instance on the same database (its own pool): a second server process as far
   * as PostgreSQL can tell. On SQLite do not let two instances of one process write at
   * once (see `openDatabase`).
   */
  openAnother(): Kysely<Database>;
  /** Deletes every row, for tests that need an empty queue. */
  reset(): Promise<void>;
  destroy(): Promise<void>;
}

export async function openTestDatabase(dialect: DialectName): Promise<TestDatabase> {
  let url: string;
  let cleanup: () => Promise<void>;
  if (dialect === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-store-'));
    url = `sqlite:${join(dir, 'slipway.db')}`;
    cleanup = () => rm(dir, { recursive: true, force: true });
  } else {
    const base = await postgresUrlForTests();
    if (base === undefined) throw new Error('PostgreSQL is not available');
    const scratch = await createScratchDatabase(base);
    url = scratch.url;
    cleanup = () => scratch.drop();
  }
  const instances: Kysely<Database>[] = [];
  const openAnother = () => {
    const db = openDatabase(url);
    instances.push(db);
    return db;
  };
  const db = openAnother();
  await migrateToLatest(db);
  return {
    dialect,
    url,
    db,
    openAnother,
    reset: async () => {
      for (const table of ['tokens', 'locks', 'steps', 'stages', 'builds', 'projects'] as const) {
        await db.deleteFrom(table).execute();
      }
    },
    destroy: async () => {
      await Promise.all(instances.map((i) => i.destroy()));
      await cleanup();
    },
  };
}
