import type { ColumnDataType, CreateTableBuilder, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Test reports (`reports: { junit: … }` of a step): per build and step the totals of its last
 * attempt, and its test cases, each with the identity `test_key` (a hash of suite, classname
 * and name) that the flaky mark and a project's test history are found by. Both cascade with
 * their build, so retention deletes them with it. `builds (project_id, commit_sha)` finds the
 * earlier builds of a commit (a re-run that passes what failed before marks it flaky).
 */
export function testReports(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  const id = <T extends string>(table: CreateTableBuilder<T>) =>
    pg
      ? table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
      : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
  return {
    async up(db: Kysely<unknown>) {
      await id(db.schema.createTable('test_reports'))
        .addColumn('build_id', big, (c) => c.notNull().references('builds.id').onDelete('cascade'))
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('files', 'integer', (c) => c.notNull())
        .addColumn('tests', 'integer', (c) => c.notNull())
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('errors', 'integer', (c) => c.notNull())
        .addColumn('skipped', 'integer', (c) => c.notNull())
        .addColumn('flaky', 'integer', (c) => c.notNull())
        .addColumn('time_ms', big, (c) => c.notNull())
        .addColumn('problems', 'text', (c) => c.notNull())
        .addColumn('created_at', big, (c) => c.notNull())
        .addUniqueConstraint('test_reports_build_step_key', ['build_id', 'step'])
        .execute();
      await id(db.schema.createTable('test_cases'))
        .addColumn('build_id', big, (c) => c.notNull().references('builds.id').onDelete('cascade'))
        .addColumn('project_id', big, (c) => c.notNull())
        .addColumn('step', 'text', (c) => c.notNull())
        .addColumn('test_key', 'text', (c) => c.notNull())
        .addColumn('suite', 'text', (c) => c.notNull())
        .addColumn('classname', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('file', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('duration_ms', big)
        .addColumn('message', 'text')
        .addColumn('output', 'text')
        .addColumn('flaky', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('test_cases_build_idx')
        .on('test_cases')
        .columns(['build_id', 'step'])
        .execute();
      await db.schema
        .createIndex('test_cases_project_build_idx')
        .on('test_cases')
        .columns(['project_id', 'build_id'])
        .execute();
      await db.schema
        .createIndex('test_cases_project_key_idx')
        .on('test_cases')
        .columns(['project_id', 'test_key', 'build_id'])
        .execute();
      await db.schema
        .createIndex('builds_project_commit_idx')
        .on('builds')
        .columns(['project_id', 'commit_sha', 'id'])
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('builds_project_commit_idx').execute();
      await db.schema.dropTable('test_cases').execute();
      await db.schema.dropTable('test_reports').execute();
    },
  };
}
