import type { Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * The timeline of an approval, so that a build waiting for a person holds no running slot and
 * its waiting time can be told apart from its running time:
 * - `approval_requested_at`: when the stage began to wait (`approval_at` is the decision);
 * - `approval_resumed_at`: when the decided build got a running slot back and went on.
 */
export function approvalSlots(dialect: DialectName): Migration {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('stages').addColumn('approval_requested_at', big).execute();
      await db.schema.alterTable('stages').addColumn('approval_resumed_at', big).execute();
    },
    async down(db: Kysely<unknown>) {
      for (const column of ['approval_requested_at', 'approval_resumed_at']) {
        await db.schema.alterTable('stages').dropColumn(column).execute();
      }
    },
  };
}
