import type { BuildEvent, BuildTrigger, ConcurrencyPolicy, Reason, Role, Status } from '../contract/index.js';

// The shared words (src/contract/), re-exported for the store's callers.
export {
  ACTIVE_STATUSES,
  BUILD_TRIGGERS,
  CONCURRENCY_POLICIES,
  ROLES as TOKEN_ROLES,
  TERMINAL_STATUSES,
  isActiveStatus,
  isTerminalStatus,
} from '../contract/index.js';
export type {
  ActiveStatus,
  BuildEvent,
  BuildTrigger,
  ConcurrencyPolicy,
  Reason,
  Role as TokenRole,
  Status,
} from '../contract/index.js';

type TokenRole = Role;

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
  /** Who wrote the commit: `Name <e-mail>`, or the name alone; null when unknown. */
  commitAuthor: string | null;
  /** The pull (merge) request a `pull_request` build is for; null when not one or not known. */
  pullRequest: number | null;
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
  /** It re-runs only what failed in `rerunOf`, reusing the steps that succeeded there. */
  rerunFailed: boolean;
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
  /** Not run here: the result of this build's run of it is reused (re-run failed). */
  reusedFrom: { buildId: number; number: number } | null;
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
