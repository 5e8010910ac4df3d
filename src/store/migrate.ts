import { Migrator } from 'kysely';
import type { Kysely, MigrationResult } from 'kysely';
import { dialectOf } from './db.js';
import { StoreError } from './errors.js';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

/**
 * Brings the schema up to the newest migration; a no-op when it is there already. Safe to
 * call from several server processes at once: Kysely's migrator serialises them with its
 * own lock table. Returns the names of the migrations it applied.
 */
export async function migrateToLatest(db: Kysely<Database>): Promise<string[]> {
  const all = migrations(dialectOf(db));
  const migrator = new Migrator({ db, provider: { getMigrations: () => Promise.resolve(all) } });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new StoreError('migration_failed', `database migration ${failed} failed: ${messageOf(error)}`, {
      cause: error,
      details: { migration: failed },
    });
  }
  return results.filter((r: MigrationResult) => r.status === 'Success').map((r) => r.migrationName);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
