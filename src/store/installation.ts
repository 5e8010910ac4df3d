import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** The installation's id (8 hex digits), made by the migrations. */
export async function installationId(db: Kysely<Database>): Promise<string> {
  const row = await db.selectFrom('installation').select('id').executeTakeFirstOrThrow();
  return row.id;
}
