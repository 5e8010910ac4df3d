import type { Kysely, Migration } from 'kysely';

/**
 * Who wrote a build's commit, as git prints it: `Name <e-mail>`, or the name alone when the
 * forge's payload gives no address. Filled from the webhook's payload when the build is
 * queued, then from the checkout (what git says wins).
 */
export function commitAuthor(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('builds').addColumn('commit_author', 'text').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('builds').dropColumn('commit_author').execute();
    },
  };
}
