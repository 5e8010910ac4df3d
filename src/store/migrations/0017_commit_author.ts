import type { Kysely, Migration } from 'kysely';

/**
 * Who wrote a build's commit, as git prints it: `Name <e-mail>`, or the name alone when the
 * forge's payload gives no address. Filled from the webhook's payload when the build is
 * queued, then from the checkout (what git says wins). And the number of the pull (merge)
 * request a pull-request build is for, from the webhook, so that pages can link to it.
 */
export function commitAuthor(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema.alterTable('builds').addColumn('commit_author', 'text').execute();
      await db.schema.alterTable('builds').addColumn('pull_request_number', 'integer').execute();
    },
    async down(db: Kysely<unknown>) {
      await db.schema.alterTable('builds').dropColumn('pull_request_number').execute();
      await db.schema.alterTable('builds').dropColumn('commit_author').execute();
    },
  };
}
