import type { ColumnDataType, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Forge commit statuses: each project's settings (`project_commit_status`: which forge, its
 * API, the NAME of the secret holding the token, one context per build or per stage) and
 * every status post's outcome (`commit_status_deliveries`, shown with the build).
 */
export function commitStatus(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('project_commit_status')
        .addColumn('project_id', big, (c) => c.primaryKey().references('projects.id').onDelete('cascade'))
        .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('forge', 'text')
        .addColumn('api_url', 'text')
        .addColumn('repository', 'text')
        .addColumn('token_secret', 'text', (c) => c.notNull())
        .addColumn('contexts', 'text', (c) => c.notNull().defaultTo('build'))
        .addColumn('updated_at', big, (c) => c.notNull())
        .execute();
      const table = db.schema.createTable('commit_status_deliveries');
      await (
        pg
          ? table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
          : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      )
        .addColumn('build_id', big, (c) => c.notNull().references('builds.id').onDelete('cascade'))
        .addColumn('forge', 'text', (c) => c.notNull())
        .addColumn('context', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('http_status', 'integer')
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('created_at', big, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('commit_status_deliveries_build_id_idx')
        .on('commit_status_deliveries')
        .column('build_id')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('commit_status_deliveries').execute();
      await db.schema.dropTable('project_commit_status').execute();
    },
  };
}
