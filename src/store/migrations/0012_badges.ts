import type { Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Status badges: whether a project's badge (`/badges/{owner}/{name}.svg`) answers without a
 * token. A project without a row has a private badge: a badge names the project and its
 * state, which only its owners may decide to show the world.
 */
export function badges(dialect: DialectName): Migration {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('project_badges')
        .addColumn('project_id', big, (c) => c.primaryKey().references('projects.id').onDelete('cascade'))
        .addColumn('public', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('updated_at', big, (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('project_badges').execute();
    },
  };
}
