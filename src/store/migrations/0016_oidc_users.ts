import type { ColumnDataType, Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * People who signed in with OpenID Connect: one row per (issuer, subject), the browser
 * sessions they hold (with the role decided at sign-in), and the sign-ins under way (state,
 * nonce and PKCE verifier kept here, keyed by the SHA-256 of a cookie the browser holds, so
 * any replica can finish a sign-in another one began).
 */
export function oidcUsers(dialect: DialectName): Migration {
  const pg = dialect === 'postgres';
  const big: ColumnDataType = pg ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      const users = db.schema.createTable('oidc_users');
      await (
        pg
          ? users.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
          : users.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
      )
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('email', 'text')
        .addColumn('created_at', big, (c) => c.notNull())
        .addColumn('signed_in_at', big, (c) => c.notNull())
        .addUniqueConstraint('oidc_users_issuer_subject', ['issuer', 'subject'])
        .execute();
      await db.schema
        .createTable('user_sessions')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('user_id', big, (c) => c.notNull().references('oidc_users.id').onDelete('cascade'))
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', big, (c) => c.notNull())
        .execute();
      await db.schema.createIndex('user_sessions_user_id').on('user_sessions').column('user_id').execute();
      await db.schema
        .createTable('oidc_logins')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('nonce', 'text', (c) => c.notNull())
        .addColumn('code_verifier', 'text', (c) => c.notNull())
        .addColumn('return_to', 'text', (c) => c.notNull())
        .addColumn('created_at', big, (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>) {
      for (const table of ['oidc_logins', 'user_sessions', 'oidc_users']) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}
