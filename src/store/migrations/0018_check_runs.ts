import type { ColumnDataType, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * GitHub check runs next to commit statuses: a project's `checks` setting (`auto`: a check
 * run per context where the token may create them, else statuses; `off`: statuses only), the
 * kind of each delivery (`status` or `check`), and the id of each check run created for a
 * build's context, so that a restarted server updates that run instead of creating another.
 */
export function checkRuns(dialect: DialectName): Migration {
  const big: ColumnDataType = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('project_commit_status')
        .addColumn('checks', 'text', (c) => c.notNull().defaultTo('auto'))
        .execute();
      await db.schema
        .alterTable('commit_status_deliveries')
        .addColumn('kind', 'text', (c) => c.notNull().defaultTo('status'))
        .execute();
      await db.schema
        .createTable('commit_status_check_runs')
        .addColumn('build_id', big, (c) => c.notNull().references('builds.id').onDelete('cascade'))
        .addColumn('context', 'text', (c) => c.notNull())
        .addColumn('check_run_id', big, (c) => c.notNull())
        .addColumn('created_at', big, (c) => c.notNull())
        .addPrimaryKeyConstraint('commit_status_check_runs_pk', ['build_id', 'context'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('commit_status_check_runs').execute();
      await db.schema.alterTable('commit_status_deliveries').dropColumn('kind').execute();
      await db.schema.alterTable('project_commit_status').dropColumn('checks').execute();
    },
  };
}
