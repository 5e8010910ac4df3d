import type { ColumnDataType, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Schedules: cron expressions per project and branch that start builds (event `cron`). The
 * tick a replica is about to run is claimed by moving `next_run_at` on in one
 * `UPDATE … WHERE next_run_at = <the tick it read>`: one replica wins, the others update
 * nothing (see `claimScheduleTick`).
 */
export function schedules(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      const table = pg
        ? db.schema
            .createTable('schedules')
            .addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
        : db.schema
            .createTable('schedules')
            .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
      await table
        .addColumn('project_id', big, (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('name', 'text')
        .addColumn('cron', 'text', (c) => c.notNull())
        .addColumn('timezone', 'text', (c) => c.notNull())
        .addColumn('branch', 'text', (c) => c.notNull())
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('next_run_at', big)
        .addColumn('last_run_at', big)
        .addColumn('last_build_id', big, (c) => c.references('builds.id').onDelete('set null'))
        .addColumn('created_at', big, (c) => c.notNull())
        .addColumn('updated_at', big, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('schedules_project_idx').on('schedules').column('project_id').execute();
      await db.schema.createIndex('schedules_next_run_idx').on('schedules').column('next_run_at').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('schedules').execute();
    },
  };
}
