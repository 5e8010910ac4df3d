import type { ColumnDataType, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * E-mail notifications: each project's settings (`project_email`: when to mail, to the commit
 * author and/or a list) and every message's outcome (`email_deliveries`), so that a refused
 * message is seen by the project's people, not only in the server's log.
 */
export function email(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('project_email')
        .addColumn('project_id', big, (c) => c.primaryKey().references('projects.id').onDelete('cascade'))
        .addColumn('notify_when', 'text', (c) => c.notNull())
        .addColumn('to_author', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('recipients', 'text', (c) => c.notNull().defaultTo('[]'))
        .addColumn('updated_at', big, (c) => c.notNull())
        .execute();
      const table = db.schema.createTable('email_deliveries');
      await (
        pg
          ? table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
          : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      )
        .addColumn('build_id', big, (c) => c.notNull().references('builds.id').onDelete('cascade'))
        .addColumn('project_id', big, (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('recipients', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('created_at', big, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('email_deliveries_project_id_idx')
        .on('email_deliveries')
        .columns(['project_id', 'id'])
        .execute();
      await db.schema
        .createIndex('email_deliveries_build_id_idx')
        .on('email_deliveries')
        .column('build_id')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('email_deliveries').execute();
      await db.schema.dropTable('project_email').execute();
    },
  };
}
