import type { ExpressionBuilder, Kysely } from 'kysely';
import type { Database } from './schema.js';
import { writeTransaction } from './transaction.js';

/**
 * Rows of the secrets: names, flags and values sealed by the server's cipher. Names and
 * values are checked, and values sealed, by `src/server/secrets` before they get here.
 */

/** What anyone may know about a secret: never its value. */
export interface SecretInfo {
  name: string;
  /** Also given to pull-request builds from forks. */
  allowForks: boolean;
  createdAt: number;
  updatedAt: number;
}

/** A project's secrets (by project id), or the global ones (`null`). */
export type SecretScope = number | null;

export async function listSecrets(db: Kysely<Database>, scope: SecretScope): Promise<SecretInfo[]> {
  const rows = await db
    .selectFrom('secrets')
    .select(['name', 'allow_forks', 'created_at', 'updated_at'])
    .where(inScope(scope))
    .orderBy('name')
    .execute();
  return rows.map((r) => ({
    name: r.name,
    allowForks: r.allow_forks === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}

/** Creates or replaces a secret whose value is already sealed; `created` tells which. */
export async function putSealedSecret(
  db: Kysely<Database>,
  scope: SecretScope,
  input: { name: string; valueSealed: string; allowForks: boolean },
  now: number = Date.now(),
): Promise<{ info: SecretInfo; created: boolean }> {
  const allowForks = input.allowForks ? 1 : 0;
  const write = () =>
    writeTransaction(db, async (tx) => {
      const existing = await tx
        .selectFrom('secrets')
        .select(['id', 'created_at'])
        .where(inScope(scope))
        .where('name', '=', input.name)
        .executeTakeFirst();
      if (existing) {
        await tx
          .updateTable('secrets')
          .set({ value_sealed: input.valueSealed, allow_forks: allowForks, updated_at: now })
          .where('id', '=', existing.id)
          .execute();
        return {
          info: {
            name: input.name,
            allowForks: input.allowForks,
            createdAt: existing.created_at,
            updatedAt: now,
          },
          created: false,
        };
      }
      await tx
        .insertInto('secrets')
        .values({
          project_id: scope,
          name: input.name,
          value_sealed: input.valueSealed,
          allow_forks: allowForks,
          created_at: now,
          updated_at: now,
        })
        .execute();
      return {
        info: { name: input.name, allowForks: input.allowForks, createdAt: now, updatedAt: now },
        created: true,
      };
    });
  try {
    return await write();
  } catch (error) {
    // Two first sets of one name at once: the loser finds the winner's row on a second try.
    if (!isUniqueViolation(error)) throw error;
    return write();
  }
}

/** Deletes a secret; false when there was none. */
export async function deleteSecret(db: Kysely<Database>, scope: SecretScope, name: string): Promise<boolean> {
  const result = await db
    .deleteFrom('secrets')
    .where(inScope(scope))
    .where('name', '=', name)
    .executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** The sealed value of one secret, if it exists. */
export async function getSealedSecret(
  db: Kysely<Database>,
  scope: SecretScope,
  name: string,
): Promise<string | undefined> {
  const row = await db
    .selectFrom('secrets')
    .select('value_sealed')
    .where(inScope(scope))
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.value_sealed;
}

/** The secret a build of `projectId` gets for `name`: the project's own, else the global one. */
export async function findSecretForProject(
  db: Kysely<Database>,
  projectId: number,
  name: string,
): Promise<{ scope: SecretScope; valueSealed: string; allowForks: boolean } | undefined> {
  const rows = await db
    .selectFrom('secrets')
    .select(['project_id', 'value_sealed', 'allow_forks'])
    .where('name', '=', name)
    .where((eb) => eb.or([eb('project_id', '=', projectId), eb('project_id', 'is', null)]))
    .execute();
  const row = rows.find((r) => r.project_id !== null) ?? rows[0];
  return row && { scope: row.project_id, valueSealed: row.value_sealed, allowForks: row.allow_forks === 1 };
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** `project_id = scope`, or `project_id is null` for globals, for any query's `where`. */
function inScope(scope: SecretScope) {
  return (eb: ExpressionBuilder<Database, 'secrets'>) =>
    scope === null ? eb('project_id', 'is', null) : eb('project_id', '=', scope);
}

// --- repository URLs, whose credentials are kept as a sealed secret ---------------------------

/** Every project's stored repository URL (start-up sealing of credentials stored in clear). */
export async function projectRepoUrls(db: Kysely<Database>): Promise<{ id: number; repoUrl: string }[]> {
  const rows = await db.selectFrom('projects').select(['id', 'repo_url']).orderBy('id').execute();
  return rows.map((r) => ({ id: r.id, repoUrl: r.repo_url }));
}

/** Replaces a project's stored repository URL, leaving its other settings and `updated_at` alone. */
export async function setProjectRepoUrl(
  db: Kysely<Database>,
  projectId: number,
  repoUrl: string,
): Promise<void> {
  await db.updateTable('projects').set({ repo_url: repoUrl }).where('id', '=', projectId).execute();
}
