import type { Kysely, Migration } from 'kysely';

/**
 * What a successor process needs to resume a build its predecessor was running (a restart,
 * `kill -9`, another replica taking over): the compiled plan (no checkout to compile again),
 * and for each step the durable reference of its running attempt (a container id, a process
 * record) with the time that attempt began to run (its timeout counts from there).
 */
export function resume(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('builds').addColumn('plan', 'text').execute();
      await db.schema.alterTable('steps').addColumn('ref', 'text').execute();
      await db.schema.alterTable('steps').addColumn('attempt_started_at', 'bigint').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('steps').dropColumn('attempt_started_at').execute();
      await db.schema.alterTable('steps').dropColumn('ref').execute();
      await db.schema.alterTable('builds').dropColumn('plan').execute();
    },
  };
}
