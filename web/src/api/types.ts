/**
 * The REST contract, taken from the shared words of `src/contract/` so the UI, the CLI and the
 * server cannot drift apart (type-only here: nothing of it ends up in the bundle; modules that
 * need a value, such as the list of statuses, import it from `src/contract/` themselves).
 */
export type {
  ApiError as ApiErrorBody,
  Artifact as ArtifactInfo,
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
  Stage,
  Step,
  TokenCreate,
  TokenCreated,
  TokenInfo,
  TriggerRequest,
} from '../../../src/contract/dto.js';
export type { ConcurrencyPolicy } from '../../../src/contract/project.js';
export type { Reason } from '../../../src/contract/reasons.js';
export type { Role } from '../../../src/contract/roles.js';
export type { Status } from '../../../src/contract/status.js';
