import type { Kysely, Migration } from 'kysely';

/**
 * What the pipeline said of each step, kept with its record so that readers (web UI, CLI)
 * can tell an allowed failure from one that failed the build, and say "attempt 2 of 3".
 */
export function stepPolicy(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('steps')
        .addColumn('allow_failure', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .alterTable('steps')
        .addColumn('max_attempts', 'integer', (c) => c.notNull().defaultTo(1))
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('steps').dropColumn('max_attempts').execute();
      await db.schema.alterTable('steps').dropColumn('allow_failure').execute();
    },
  };
}
