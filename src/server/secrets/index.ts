/**
 * Secrets: per-project and global values sealed at rest (AES-256-GCM), set and listed
 * (never read back) through the API, and resolved for builds' `from_secret` — withheld from
 * pull requests of forks unless a secret allows them.
 */
export { SecretCipher, loadSecretKey, parseSecretKey, KEY_ENV, KEY_FILE } from './cipher.js';
export type { LoadedKey } from './cipher.js';
export { SecretError } from './errors.js';
export type { SecretErrorCode } from './errors.js';
export {
  listSecrets,
  setSecret,
  deleteSecret,
  findSecretForProject,
  checkSecretName,
  checkSecretValue,
} from './store.js';
export type { SecretInfo, SecretScope } from './store.js';
export { registerSecretRoutes, SecretInfoSchema } from './routes.js';
export type { SecretRouteDeps, SecretInfoDto } from './routes.js';
export { secretsFor } from './source.js';
export type { SecretsForDeps } from './source.js';
