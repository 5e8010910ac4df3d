import { sql } from 'kysely';
import type { ColumnDataType, CreateTableBuilder, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * The first schema: projects, builds (global id + per-project number), stages, steps,
 * branch locks and API tokens. Migrations see `Kysely<unknown>`: they must not depend on
 * the current `Database` type, which will move on while this file stays as it is.
 */
export function initial(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  // Ids and epoch-ms times need 64 bits on PostgreSQL; SQLite integers always have them.
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  const id = <T extends string>(table: CreateTableBuilder<T>) =>
    pg
      ? table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
      : // AUTOINCREMENT: ids of deleted rows are never reused, so a build id stays unique
        // forever (list cursors and log paths rely on that).
        table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

  return {
    async up(db: Kysely<unknown>) {
      await id(db.schema.createTable('projects'))
        .addColumn('slug', 'text', (c) => c.notNull().unique())
        .addColumn('repo_url', 'text', (c) => c.notNull())
        .addColumn('branch_filter', 'text', (c) => c.notNull().defaultTo('.*'))
        .addColumn('default_executor', 'text')
        .addColumn('default_image', 'text')
        .addColumn('concurrency_policy', 'text', (c) => c.notNull().defaultTo('queue'))
        .addColumn('max_running', 'integer')
        .addColumn('pipeline_path', 'text', (c) => c.notNull().defaultTo('.slipway.yml'))
        .addColumn('last_number', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', big, (c) => c.notNull())
        .addColumn('updated_at', big, (c) => c.notNull())
        .execute();

      await id(db.schema.createTable('builds'))
        .addColumn('project_id', big, (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('number', 'integer', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason_code', 'text')
        .addColumn('reason_message', 'text')
        .addColumn('branch', 'text', (c) => c.notNull())
        .addColumn('commit_sha', 'text')
        .addColumn('commit_message', 'text')
        .addColumn('tag', 'text')
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('trigger', 'text', (c) => c.notNull())
        .addColumn('triggered_by', 'text')
        .addColumn('created_at', big, (c) => c.notNull())
        .addColumn('queued_at', big, (c) => c.notNull())
        .addColumn('started_at', big)
        .addColumn('finished_at', big)
        .addColumn('duration_ms', big)
        .addColumn('rerun_of', big, (c) => c.references('builds.id').onDelete('set null'))
        .addColumn('executor', 'text')
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', big)
        .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
        .addUniqueConstraint('builds_project_number_key', ['project_id', 'number'])
        .execute();

      // Build lists are keyset-paged by id, newest first, optionally filtered by project,
      // status and branch: each index ends in `id` so that a page is an index range scan,
      // never a sort of the whole table.
      await db.schema
        .createIndex('builds_project_id_idx')
        .on('builds')
        .columns(['project_id', 'id'])
        .execute();
      await db.schema.createIndex('builds_status_id_idx').on('builds').columns(['status', 'id']).execute();
      await db.schema
        .createIndex('builds_project_status_id_idx')
        .on('builds')
        .columns(['project_id', 'status', 'id'])
        .execute();
      await db.schema
        .createIndex('builds_project_branch_id_idx')
        .on('builds')
        .columns(['project_id', 'branch', 'id'])
        .execute();
      // Only the queued builds: the claim asks "is there an older queued build on this
      // branch?" for each candidate, which must not walk the branch's whole history.
      await db.schema
        .createIndex('builds_queued_branch_idx')
        .on('builds')
        .columns(['project_id', 'branch', 'id'])
        .where(sql.ref('status'), '=', 'queued')
        .execute();

      await id(db.schema.createTable('stages'))
        .addColumn('build_id', big, (c) => c.notNull().references('builds.id').onDelete('cascade'))
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason_code', 'text')
        .addColumn('reason_message', 'text')
        .addColumn('started_at', big)
        .addColumn('finished_at', big)
        .addColumn('duration_ms', big)
        .addUniqueConstraint('stages_build_idx_key', ['build_id', 'idx'])
        .execute();

      await id(db.schema.createTable('steps'))
        .addColumn('stage_id', big, (c) => c.notNull().references('stages.id').onDelete('cascade'))
        .addColumn('build_id', big, (c) => c.notNull().references('builds.id').onDelete('cascade'))
        .addColumn('idx', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('exit_code', 'integer')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('reason_code', 'text')
        .addColumn('reason_message', 'text')
        .addColumn('started_at', big)
        .addColumn('finished_at', big)
        .addColumn('duration_ms', big)
        .addColumn('log_lines', 'integer', (c) => c.notNull().defaultTo(0))
        .addUniqueConstraint('steps_stage_idx_key', ['stage_id', 'idx'])
        .execute();
      await db.schema.createIndex('steps_build_id_idx').on('steps').column('build_id').execute();

      await db.schema
        .createTable('locks')
        .addColumn('project_id', big, (c) => c.notNull().references('projects.id').onDelete('cascade'))
        .addColumn('branch', 'text', (c) => c.notNull())
        .addColumn('build_id', big, (c) => c.notNull().unique().references('builds.id').onDelete('cascade'))
        .addColumn('acquired_at', big, (c) => c.notNull())
        .addPrimaryKeyConstraint('locks_pkey', ['project_id', 'branch'])
        .execute();

      await id(db.schema.createTable('tokens'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', big, (c) => c.notNull())
        .addColumn('last_used_at', big)
        .addColumn('revoked_at', big)
        .execute();
    },

    async down(db: Kysely<unknown>) {
      for (const table of ['tokens', 'locks', 'steps', 'stages', 'builds', 'projects']) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
