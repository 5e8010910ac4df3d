import type { ColumnDataType, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Step caches (issue 15): one row per archive in the blob store, by project, branch and key.
 * `last_used_at` orders the least recently used first when a project is over its size limit.
 */
export function caches(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      const table = db.schema.createTable('caches');
      await (
        pg
          ? table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
          : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      )
        .addColumn('project_id', big, (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('branch', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('blob_key', 'text', (c) => c.notNull())
        .addColumn('size', big, (c) => c.notNull())
        .addColumn('created_at', big, (c) => c.notNull())
        .addColumn('last_used_at', big, (c) => c.notNull())
        .addUniqueConstraint('caches_project_branch_key', ['project_id', 'branch', 'key'])
        .execute();
      await db.schema
        .createIndex('caches_project_used')
        .on('caches')
        .columns(['project_id', 'last_used_at'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('caches').execute();
    },
  };
}
