import type { Kysely, Migration } from 'kysely';

/** A project's cap on the bytes of one build's log; null: the server's default. */
export function logLimit(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('projects').addColumn('max_log_bytes', 'bigint').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('projects').dropColumn('max_log_bytes').execute();
    },
  };
}
