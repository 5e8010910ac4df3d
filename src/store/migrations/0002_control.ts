import type { Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Durable control requests: a cancel asked of an active build (acted on by whichever server
 * process owns it), and approval state of stages that wait for a person.
 */
export function control(dialect: DialectName): Migration {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('builds').addColumn('cancel_requested_at', big).execute();
      await db.schema.alterTable('builds').addColumn('cancel_reason_code', 'text').execute();
      await db.schema.alterTable('builds').addColumn('cancel_reason_message', 'text').execute();
      await db.schema.alterTable('stages').addColumn('approval', 'text').execute();
      await db.schema.alterTable('stages').addColumn('approval_by', 'text').execute();
      await db.schema.alterTable('stages').addColumn('approval_message', 'text').execute();
      await db.schema.alterTable('stages').addColumn('approval_at', big).execute();
    },
    async down(db: Kysely<unknown>) {
      for (const column of ['approval', 'approval_by', 'approval_message', 'approval_at']) {
        await db.schema.alterTable('stages').dropColumn(column).execute();
      }
      for (const column of ['cancel_requested_at', 'cancel_reason_code', 'cancel_reason_message']) {
        await db.schema.alterTable('builds').dropColumn(column).execute();
      }
    },
  };
}
