import type { ColumnDataType, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Browser sessions of the web UI: one row per sign-in, keyed by the SHA-256 of the random
 * session id the browser holds in its cookie, pointing at the token that signed in (so
 * revoking the token ends its sessions) and deleted on sign-out.
 */
export function sessions(dialect: DialectName): Migration {
  const big: ColumnDataType = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('sessions')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('token_id', big, (c) => c.notNull().references('tokens.id').onDelete('cascade'))
        .addColumn('created_at', big, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('sessions_token_id').on('sessions').column('token_id').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropTable('sessions').execute();
    },
  };
}
