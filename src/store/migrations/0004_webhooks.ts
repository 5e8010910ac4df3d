import type { ColumnDataType, CreateTableBuilder, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Forge webhooks: per-project hook settings (signing secret, tag/pull-request switches,
 * build-scripts repository and its last snapshot), the deliveries received (for
 * idempotency), notification targets, and whether a pull-request build's head repository
 * is a fork (`builds.head_repo_fork`, null when unknown or not a pull request).
 */
export function webhooks(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  const id = <T extends string>(table: CreateTableBuilder<T>) =>
    pg
      ? table.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
      : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());

  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('project_hooks')
        .addColumn('project_id', big, (c) => c.primaryKey().references('projects.id').onDelete('cascade'))
        .addColumn('secret', 'text')
        .addColumn('secret_sealed', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('build_tags', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('build_pull_requests', 'integer', (c) => c.notNull().defaultTo(1))
        .addColumn('scripts_repo_url', 'text')
        .addColumn('scripts_path', 'text')
        .addColumn('scripts_ref', 'text')
        .addColumn('scripts_commit', 'text')
        .addColumn('scripts_descriptor', 'text')
        .addColumn('scripts_build_sh', 'text')
        .addColumn('scripts_refreshed_at', big)
        .addColumn('updated_at', big, (c) => c.notNull())
        .execute();

      await id(db.schema.createTable('webhook_deliveries'))
        .addColumn('forge', 'text', (c) => c.notNull())
        .addColumn('delivery_id', 'text', (c) => c.notNull())
        .addColumn('project_id', big, (c) => c.references('projects.id').onDelete('cascade'))
        .addColumn('event', 'text')
        .addColumn('received_at', big, (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('message', 'text')
        .addColumn('build_id', big, (c) => c.references('builds.id').onDelete('set null'))
        .addUniqueConstraint('webhook_deliveries_forge_delivery_key', ['forge', 'delivery_id'])
        .execute();
      await db.schema
        .createIndex('webhook_deliveries_received_at_idx')
        .on('webhook_deliveries')
        .column('received_at')
        .execute();

      await id(db.schema.createTable('notify_targets'))
        .addColumn('project_id', big, (c) => c.references('projects.id').onDelete('cascade'))
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('slack', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('events', 'text', (c) => c.notNull())
        .addColumn('created_at', big, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('notify_targets_project_id_idx')
        .on('notify_targets')
        .column('project_id')
        .execute();

      await db.schema.alterTable('builds').addColumn('head_repo_fork', 'integer').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('builds').dropColumn('head_repo_fork').execute();
      for (const table of ['notify_targets', 'webhook_deliveries', 'project_hooks']) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
