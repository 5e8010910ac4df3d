/**
 * Forge commit statuses (GitHub, GitLab, Gitea/Forgejo): a notifier for the hub's `extra`,
 * the per-project settings routes, and the pure request shapes per forge.
 */
export { CommitStatusNotifier, CommitStatusError } from './notifier.js';
export type { CommitStatusNotifierOptions } from './notifier.js';
export { registerCommitStatusRoutes, CommitStatusSettingsSchema } from './routes.js';
export { resolveForgeRepo, parseRepoLocation, statusRequest, forgeState, FORGE_KINDS } from './forges.js';
export type { ForgeRepo, StatusPost, StatusMoment } from './forges.js';
