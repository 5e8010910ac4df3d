import { randomBytes } from 'node:crypto';
import type { Kysely, Migration } from 'kysely';

/**
 * A random id for this installation (one database, however many replicas). Executors label
 * what they create with it, so two Slipway installations sharing one container engine never
 * take each other's containers for their own leftovers.
 */
export function installation(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('installation')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await (db as Kysely<{ installation: { id: string; created_at: string } }>)
        .insertInto('installation')
        .values({ id: randomBytes(4).toString('hex'), created_at: new Date().toISOString() })
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('installation').execute();
    },
  };
}
