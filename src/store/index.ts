/**
 * Slipway's metadata store: projects, builds with their stage/step records, the durable
 * build queue with branch locks and leases, and API tokens, on SQLite or PostgreSQL.
 *
 * Every function takes the `Kysely<Database>` from `openDatabase` first (or a transaction
 * from `writeTransaction`, which it then joins). Times are epoch milliseconds; `now`
 * parameters exist so tests and the scheduler can use their own clock.
 */
export { openDatabase, parseDatabaseUrl, dialectOf } from './db.js';
export type { DatabaseOptions, DatabaseTarget, DialectName } from './db.js';
export { migrateToLatest } from './migrate.js';
export { relaxedTransaction, writeTransaction, type WriteOptions } from './transaction.js';
export { StoreError, isStoreError } from './errors.js';
export type { StoreErrorCode, StoreErrorOptions } from './errors.js';
export type { Database } from './schema.js';
export * from './types.js';

export {
  createProject,
  getProject,
  getProjectBySlug,
  listProjects,
  updateProject,
  deleteProject,
} from './projects.js';
export type { NewProject, ProjectPatch, ProjectListOptions } from './projects.js';
export { createBuild, getBuild, getBuildByNumber, listBuilds, setBuildStatus } from './builds.js';
export type { NewBuild, BuildFilter, BuildPage, BuildStatusFields } from './builds.js';
export { createBuildRecords, getBuildRecords, updateStage, updateStep } from './records.js';
export type { NewStage, NewStep, RecordUpdate, StepUpdate } from './records.js';
export {
  claimNextBuilds,
  claimSlots,
  SLOT_STATUSES,
  renewLeases,
  findExpiredLeases,
  takeOverLease,
  supersede,
  runningCounts,
  queueDepth,
} from './queue.js';
export type { QueueLimits, Superseded, RunningCounts, ClaimResult } from './queue.js';
export { listLocks, releaseLock } from './locks.js';
export { projectStats, STATS_WINDOW } from './stats.js';
export type { ProjectStats } from './stats.js';
export {
  createToken,
  createInitialAdminToken,
  verifyToken,
  listTokens,
  revokeToken,
  TOKEN_PREFIX,
} from './tokens.js';
export type { NewToken, CreatedToken } from './tokens.js';
export {
  createSession,
  verifySession,
  deleteSession,
  SESSION_PREFIX,
  SESSION_MAX_AGE_MS,
} from './sessions.js';
export type { CreatedSession } from './sessions.js';
export {
  createUserSession,
  verifyUserSession,
  deleteUserSession,
  saveOidcLogin,
  takeOidcLogin,
  USER_SESSION_PREFIX,
  USER_SESSION_MAX_AGE_MS,
  OIDC_LOGIN_MAX_AGE_MS,
} from './oidc-users.js';
export type { OidcIdentity, OidcLogin, UserCaller } from './oidc-users.js';
export {
  requestCancel,
  openApproval,
  decideApproval,
  approvalsOf,
  pendingControl,
  listActiveBuilds,
  closeOpenRecords,
} from './control.js';
export type { ControlRequest, ApprovalRecord } from './control.js';
export { installationId } from './installation.js';
export { pingDatabase } from './health.js';
export {
  getHookSettings,
  writeHookSettings,
  storedHookSecret,
  saveScriptsSnapshot,
  scriptsProjects,
  claimDelivery,
  finishDelivery,
  releaseDelivery,
  findDelivery,
  pruneDeliveries,
  setHeadRepoFork,
  headRepoFork,
  DEFAULT_SCRIPTS_REF,
  STALE_PROCESSING_MS,
} from './hooks.js';
export type {
  HookSettings,
  HookSettingsWrite,
  ScriptsSource,
  ScriptsSnapshot,
  Delivery,
  DeliveryOutcome,
} from './hooks.js';
export {
  listSecrets,
  putSealedSecret,
  getSealedSecret,
  deleteSecret,
  findSecretForProject,
  projectRepoUrls,
  setProjectRepoUrl,
} from './secrets.js';
export type { SecretInfo, SecretScope } from './secrets.js';
export { recordArtifact, listArtifacts, getArtifact } from './artifacts.js';
export type { Artifact } from './artifacts.js';
export { NOTIFY_EVENTS, addNotifyTarget, listNotifyTargets, removeNotifyTarget } from './notify-targets.js';
export type { NewNotifyTarget, NotifyEvent, NotifyTarget } from './notify-targets.js';
export {
  projectRetentions,
  expiredBuilds,
  deleteFinishedBuild,
  getProjectRetention,
  setProjectRetention,
} from './retention.js';
export type { RetentionPolicy } from './retention.js';
export {
  createSchedule,
  getSchedule,
  listSchedules,
  updateSchedule,
  deleteSchedule,
  dueSchedules,
  claimScheduleTick,
  setScheduleBuild,
} from './schedules.js';
export type { Schedule, NewSchedule, SchedulePatch, DueSchedule } from './schedules.js';
