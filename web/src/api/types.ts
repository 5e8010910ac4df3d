/**
 * The REST contract, taken from the server's own DTO module so the UI and the server cannot
 * drift apart (type-only: nothing of the server ends up in the bundle).
 */
export type {
  ApiError as ApiErrorBody,
  Build,
  BuildDetail,
  ConcurrencyPolicy,
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
  Reason,
  Role,
  Stage,
  Step,
  TokenCreate,
  TokenCreated,
  TokenInfo,
  TriggerRequest,
} from '../../../src/server/api/dto.js';
export type { Status } from '../../../src/pipeline/types.js';

/** One stored artifact (`GET /api/v1/builds/{id}/artifacts`, issue 5); not in the DTO module yet. */
export interface ArtifactInfo {
  path: string;
  size: number;
}

/** Statuses after which nothing about a build changes any more. */
export const FINAL_STATUSES = ['success', 'failure', 'error', 'cancelled', 'skipped', 'lost'] as const;

export const ALL_STATUSES = [
  'queued',
  'pending',
  'running',
  'waiting',
  'success',
  'failure',
  'error',
  'cancelled',
  'skipped',
  'lost',
] as const;
