/**
 * Forge webhooks (`/hooks/<forge>`) and build-scripts repositories. The server wires:
 * - `registerHookRoutes(app, deps)` for the endpoints;
 * - `scriptsPipelineSource(db)` as the build runner's `pipelineSource`;
 * - `hookSettingsRoutes(api, deps)` inside the API's `/api/v1` scope for the settings.
 */
export { registerHookRoutes, DEFAULT_HOOK_BODY_LIMIT } from './routes.js';
export type { HookRouteDeps } from './routes.js';
export { hookSettingsRoutes } from './settings-routes.js';
export type { HookSettingsRouteDeps } from './settings-routes.js';
export type { ReceiveDeps, RejectionCounter, StartedBuild } from './receive.js';
export { HookError } from './errors.js';
export type { HookErrorCode } from './errors.js';
export { signBody } from './signatures.js';
export { repoKey, projectsForRepo } from './repo-url.js';
export {
  refreshScripts,
  scriptsPipelineSource,
  scriptsPipeline,
  parseDescriptor,
  DESCRIPTOR_FILE,
  SCRIPT_FILE,
  SCRIPT_DIR,
} from './scripts.js';
export type { ScriptsDescriptor, PipelineSource, RefreshOptions, RefreshResult } from './scripts.js';
export {
  getHookSettings,
  updateHookSettings,
  hookSecret,
  headRepoFork,
  setHeadRepoFork,
  pruneDeliveries,
  DEFAULT_SCRIPTS_REF,
} from './store.js';
export type {
  HookSettings,
  HookSettingsPatch,
  ScriptsSource,
  ScriptsSnapshot,
  SecretSealer,
} from './store.js';
