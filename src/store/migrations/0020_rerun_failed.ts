import type { Kysely, Migration } from 'kysely';
import type { DialectName } from '../db.js';

/**
 * Re-running only what failed (issue 15). `builds.rerun_failed`: 1 when the build re-runs the
 * failed steps of `rerun_of` and reuses the rest. `steps.reused_from_build`/`_number`: the build
 * whose run of the step is reused (the first real run along a chain of re-runs), kept as a number
 * too so the mark survives that build's retention. `artifacts.blob_build_id`: the build whose
 * blob prefix holds the bytes of a reused artifact (null: the row's own build).
 */
export function rerunFailed(dialect: DialectName): Migration {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('builds')
        .addColumn('rerun_failed', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema.alterTable('steps').addColumn('reused_from_build', big).execute();
      await db.schema.alterTable('steps').addColumn('reused_from_number', 'integer').execute();
      await db.schema.alterTable('artifacts').addColumn('blob_build_id', big).execute();
      await db.schema
        .createIndex('artifacts_blob_build_idx')
        .on('artifacts')
        .column('blob_build_id')
        .execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.dropIndex('artifacts_blob_build_idx').execute();
      await db.schema.alterTable('artifacts').dropColumn('blob_build_id').execute();
      await db.schema.alterTable('steps').dropColumn('reused_from_number').execute();
      await db.schema.alterTable('steps').dropColumn('reused_from_build').execute();
      await db.schema.alterTable('builds').dropColumn('rerun_failed').execute();
    },
  };
}
