/**
 * JSON shapes of the REST API (`/api/v1`): defined once, as TypeBox schemas with their static
 * types, in `src/contract/dto.ts` (its doc comment lists the routes). Re-exported here for the
 * server's modules and tests.
 */
export type {
  ApiError,
  Approval,
  ApprovalRequest,
  Artifact,
  Build,
  BuildDetail,
  ExecutorInfo,
  LogLine,
  LogPage,
  Page,
  Project,
  ProjectCreate,
  ProjectStats,
  ProjectUpdate,
  Queue,
  QueueEntry,
  SecretInfo,
  SecretSet,
  Stage,
  Step,
  TokenCreate,
  TokenCreated,
  TokenInfo,
  TriggerRequest,
} from '../../contract/dto.js';
export type { ConcurrencyPolicy, Reason, Role } from '../../contract/index.js';
export { FINAL_STATUSES as FINAL } from '../../contract/status.js';
