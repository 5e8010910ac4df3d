import type { Kysely, Migration } from 'kysely';

/**
 * How a step's running attempt ended, stored once its output is stored and before the executor
 * releases it (the container and its exit code go then): a process that dies in between
 * leaves its successor the exit instead of a step it can no longer find.
 */
export function attemptExit(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('steps').addColumn('attempt_exit', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('steps').dropColumn('attempt_exit').execute();
    },
  };
}
