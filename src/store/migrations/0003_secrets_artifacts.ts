import { sql } from 'kysely';
import type { ColumnDataType, CreateTableBuilder, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Secrets (per project, or global with `project_id` null; values sealed with AES-256-GCM),
 * artifact metadata per build (the bytes live in the blob store), and per-project retention
 * overrides. Everything cascades with its project or build.
 */
export function secretsArtifacts(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  const id = <T extends string>(table: CreateTableBuilder<T>) =>
    pg
      ? table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
      : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

  return {
    async up(db: Kysely<unknown>) {
      await id(db.schema.createTable('secrets'))
        .addColumn('project_id', big, (c) => c.references('projects.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('value_sealed', 'text', (c) => c.notNull())
        .addColumn('allow_forks', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', big, (c) => c.notNull())
        .addColumn('updated_at', big, (c) => c.notNull())
        .addUniqueConstraint('secrets_project_name_key', ['project_id', 'name'])
        .execute();
      // NULLs are distinct in a unique constraint: globals need their own index to be unique.
      await db.schema
        .createIndex('secrets_global_name_key')
        .unique()
        .on('secrets')
        .column('name')
        .where(sql.ref('project_id'), 'is', null)
        .execute();

      await id(db.schema.createTable('artifacts'))
        .addColumn('build_id', big, (c) => c.notNull().references('builds.id').onDelete('cascade'))
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('path', 'text', (c) => c.notNull())
        .addColumn('size', big, (c) => c.notNull())
        .addColumn('sha256', 'text', (c) => c.notNull())
        .addColumn('created_at', big, (c) => c.notNull())
        .addUniqueConstraint('artifacts_build_path_key', ['build_id', 'path'])
        .execute();

      await db.schema
        .createTable('project_retention')
        .addColumn('project_id', big, (c) => c.primaryKey().references('projects.id').onDelete('cascade'))
        .addColumn('keep_builds', 'integer')
        .addColumn('keep_days', 'integer')
        .addColumn('updated_at', big, (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('project_retention').execute();
      await db.schema.dropTable('artifacts').execute();
      await db.schema.dropTable('secrets').execute();
    },
  };
}
