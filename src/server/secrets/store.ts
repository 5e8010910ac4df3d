import type { ExpressionBuilder, Kysely } from 'kysely';
import { MIN_MASKED_LENGTH } from '../../orchestrator/masker.js';
import { writeTransaction } from '../../store/index.js';
import type { Database } from '../../store/index.js';
import type { SecretCipher } from './cipher.js';
import { SecretError } from './errors.js';

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

/** Names as `from_secret` uses them: letters, digits, `_`, `.`, `-`; at most 128 characters. */
export const SECRET_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';
const NAME = new RegExp(SECRET_NAME_PATTERN);
/** Longest value: enough for a key file or a kubeconfig, far from a memory problem. */
export const MAX_SECRET_BYTES = 64 * 1024;

export function checkSecretName(name: string): void {
  if (!NAME.test(name)) {
    throw new SecretError(
      'invalid',
      `secret name "${name}" is invalid: use letters, digits, "_", "." and "-" (at most 128, not starting with "." or "-")`,
    );
  }
}

/**
 * Refuses values that could not be kept out of logs: the masker skips lines shorter than
 * {@link MIN_MASKED_LENGTH}, so a value made only of such lines would show in clear.
 */
export function checkSecretValue(value: string): void {
  if (Buffer.byteLength(value, 'utf8') > MAX_SECRET_BYTES) {
    throw new SecretError('invalid', `the value is longer than ${MAX_SECRET_BYTES} bytes`);
  }
  const maskable = value.split(/\r?\n/).some((line) => line.trim().length >= MIN_MASKED_LENGTH);
  if (!maskable) {
    throw new SecretError(
      'invalid',
      `the value must have at least ${MIN_MASKED_LENGTH} characters (on one line) so that it can be masked in logs`,
    );
  }
}

/** The authenticated context a value is sealed under: moving a sealed value to another secret breaks it. */
export function sealContext(scope: SecretScope, name: string): string {
  return `secret:${scope === null ? 'global' : `project:${scope}`}:${name}`;
}

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

/** Creates or replaces a secret; `created` tells which. The value is sealed before it is stored. */
export async function setSecret(
  db: Kysely<Database>,
  cipher: SecretCipher,
  scope: SecretScope,
  input: { name: string; value: string; allowForks: boolean },
  now = Date.now(),
): Promise<{ info: SecretInfo; created: boolean }> {
  checkSecretName(input.name);
  checkSecretValue(input.value);
  const sealed = cipher.seal(input.value, sealContext(scope, input.name));
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
          .set({ value_sealed: sealed, allow_forks: allowForks, updated_at: now })
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
          value_sealed: sealed,
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

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
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

/** `project_id = scope`, or `project_id is null` for globals, for any query's `where`. */
function inScope(scope: SecretScope) {
  return (eb: ExpressionBuilder<Database, 'secrets'>) =>
    scope === null ? eb('project_id', 'is', null) : eb('project_id', '=', scope);
}
