import type { Kysely } from 'kysely';
import { MAX_SECRET_BYTES, SECRET_NAME_PATTERN } from '../../contract/project.js';
import { MIN_MASKED_LENGTH } from '../../orchestrator/masker.js';
import type { Database } from '../../store/index.js';
import { putSealedSecret, type SecretInfo, type SecretScope } from '../../store/secrets.js';
import type { SecretCipher } from './cipher.js';
import { SecretError } from './errors.js';

/** Secrets as the API sets them: names and values checked and sealed here, stored by `src/store/secrets.ts`. */
export { listSecrets, deleteSecret, findSecretForProject } from '../../store/secrets.js';
export type { SecretInfo, SecretScope } from '../../store/secrets.js';

/** Names as `from_secret` uses them, and the longest value: the shared words of src/contract/. */
export { MAX_SECRET_BYTES, SECRET_NAME_PATTERN };
const NAME = new RegExp(SECRET_NAME_PATTERN);
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
  return putSealedSecret(
    db,
    scope,
    { name: input.name, valueSealed: sealed, allowForks: input.allowForks },
    now,
  );
}
