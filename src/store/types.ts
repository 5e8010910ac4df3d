import type { BuildEvent, Status } from '../pipeline/types.js';

export type { BuildEvent, Status };

/**
 * Statuses of a build that holds its project+branch lock and a lease. `waiting` counts: a
 * build paused for approval keeps its workspace and services, and its branch must not start a
 * second build meanwhile. It holds no running slot, though (see `SLOT_STATUSES` in queue.ts).
 */
export const ACTIVE_STATUSES = ['pending', 'running', 'waiting'] as const satisfies readonly Status[];
export type ActiveStatus = (typeof ACTIVE_STATUSES)[number];

/** Statuses a build never leaves (the store releases lease and lock on entering one). */
export const TERMINAL_STATUSES = [
  'success',
  'failure',
  'error',
  'cancelled',
  'skipped',
  'lost',
] as const satisfies readonly Status[];

export function isActiveStatus(status: Status): status is ActiveStatus {
  return (ACTIVE_STATUSES as readonly Status[]).includes(status);
}

export function isTerminalStatus(status: Status): boolean {
  return (TERMINAL_STATUSES as readonly Status[]).includes(status);
}

/** What a newer build of a branch does to older ones (see DESIGN.md "Scheduler"). */
export const CONCURRENCY_POLICIES = ['queue', 'supersede'] as const;
export type ConcurrencyPolicy = (typeof CONCURRENCY_POLICIES)[number];

/** How a build came to be. */
export const BUILD_TRIGGERS = ['manual', 'webhook', 'rerun'] as const;
export type BuildTrigger = (typeof BUILD_TRIGGERS)[number];

export const TOKEN_ROLES = ['admin', 'member', 'viewer'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

/**
 * Why a build, stage or step ended as it did. `code` is open here (the orchestrator's
 * `ReasonCode` plus server reasons such as `superseded` or `lost`); the store only keeps it.
 */
export interface Reason {
  code: string;
  message: string;
}

/** All times in the store are epoch milliseconds. */
export type EpochMs = number;

export interface Project {
  id: number;
  /** `owner/name`, unique. */
  slug: string;
  repoUrl: string;
  /** Regex source; refs that match it are built from webhooks. */
  branchFilter: string;
  defaultExecutor: string | null;
  defaultImage: string | null;
  concurrencyPolicy: ConcurrencyPolicy;
  /** Running builds allowed at once for this project; null = only the global limit applies. */
  maxRunning: number | null;
  /** Cap on one build's log in bytes; null: the server's default (`--max-log-bytes`). */
  maxLogBytes: number | null;
  pipelinePath: string;
  /** Number of the newest build (0 before the first). */
  lastNumber: number;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

export interface Build {
  /** Global id, increasing in creation order: the FIFO order of the queue and the list cursor. */
  id: number;
  projectId: number;
  projectSlug: string;
  /** Per-project number, 1, 2, … without gaps. */
  number: number;
  status: Status;
  reason: Reason | null;
  /** The ref the build locks on: one active build per project+branch. */
  branch: string;
  commitSha: string | null;
  commitMessage: string | null;
  tag: string | null;
  event: BuildEvent;
  trigger: BuildTrigger;
  triggeredBy: string | null;
  createdAt: EpochMs;
  /** When it last entered `queued` (creation, or a re-queue after its owner died). */
  queuedAt: EpochMs;
  startedAt: EpochMs | null;
  finishedAt: EpochMs | null;
  durationMs: number | null;
  rerunOf: number | null;
  executor: string | null;
  /** Server process that claimed it; null while queued or finished. */
  leaseOwner: string | null;
  leaseExpiresAt: EpochMs | null;
  /** How many times it was claimed; more than 1 means an owner died while it ran. */
  attempt: number;
}

export interface StageRecord {
  id: number;
  buildId: number;
  idx: number;
  name: string;
  status: Status;
  reason: Reason | null;
  startedAt: EpochMs | null;
  finishedAt: EpochMs | null;
  durationMs: number | null;
  steps: StepRecord[];
}

export interface StepRecord {
  id: number;
  stageId: number;
  buildId: number;
  idx: number;
  name: string;
  status: Status;
  exitCode: number | null;
  attempts: number;
  reason: Reason | null;
  startedAt: EpochMs | null;
  finishedAt: EpochMs | null;
  durationMs: number | null;
  /** Lines stored so far in the step's log (the log itself lives in the blob store). */
  logLines: number;
  /** The pipeline allows it to fail: its failure does not fail the stage. */
  allowFailure: boolean;
  /** Attempts it may take: 1 + its `retries`. */
  maxAttempts: number;
}

export interface TokenInfo {
  id: number;
  name: string;
  role: TokenRole;
  createdAt: EpochMs;
  lastUsedAt: EpochMs | null;
  revoked: boolean;
}

export interface BranchLock {
  projectId: number;
  branch: string;
  buildId: number;
  acquiredAt: EpochMs;
}
