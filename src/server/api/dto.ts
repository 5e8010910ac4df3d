/**
 * JSON shapes of the REST API (`/api/v1`), shared by the server routes, the OpenAPI document
 * and the `slipway` CLI's remote verbs. Times are ISO-8601 strings; durations milliseconds.
 *
 * Routes (all but health, metrics and the OpenAPI document need `Authorization: Bearer <token>`):
 *   GET    /healthz | /readyz | /metrics | /api/v1/openapi.json
 *   GET    /api/v1/projects                                  → Page<Project>         viewer
 *   POST   /api/v1/projects                 ProjectCreate   → 201 Project           admin
 *   GET    /api/v1/projects/{owner}/{name}                   → Project               viewer
 *   PATCH  /api/v1/projects/{owner}/{name}  ProjectUpdate   → Project               admin
 *   DELETE /api/v1/projects/{owner}/{name}                   → 204                   admin
 *   GET    /api/v1/projects/{owner}/{name}/stats             → ProjectStats          viewer
 *   GET    /api/v1/projects/{owner}/{name}/builds?status&branch&limit&before → Page<Build>
 *   POST   /api/v1/projects/{owner}/{name}/builds TriggerRequest → 201 Build         member
 *   GET    /api/v1/projects/{owner}/{name}/builds/{number}   → BuildDetail           viewer
 *   GET    /api/v1/builds?project&status&branch&limit&before → Page<Build>           viewer
 *   GET    /api/v1/builds/{id}                               → BuildDetail           viewer
 *   POST   /api/v1/builds/{id}/cancel                        → Build                 member
 *   POST   /api/v1/builds/{id}/approve      {comment?}       → Build                 member
 *   POST   /api/v1/builds/{id}/reject       {comment?}       → Build                 member
 *   POST   /api/v1/builds/{id}/rerun                         → 201 Build             member
 *   GET    /api/v1/builds/{id}/logs?after&limit              → LogPage (JSON)        viewer
 *   GET    /api/v1/builds/{id}/logs?follow=1  (SSE; Last-Event-ID or ?after resumes)   viewer
 *          events: `line` (data: LogLine, id: seq), `status` (data: Build), `end`
 *   GET    /api/v1/builds/{id}/steps/{stage}/{step}/log      → text/plain            viewer
 *   GET    /api/v1/queue                                     → Queue                 viewer
 *   GET    /api/v1/tokens                                    → TokenInfo[]           admin
 *   POST   /api/v1/tokens                   TokenCreate      → 201 TokenCreated      admin
 *   DELETE /api/v1/tokens/{id}                               → 204                   admin
 *   GET    /api/v1/whoami                                    → TokenInfo             viewer
 *
 * Errors: `{ error: { code, message, details? } }` with a 4xx/5xx status.
 */
import type { FinalStatus, Status } from '../../pipeline/types.js';

export type Role = 'admin' | 'member' | 'viewer';
export type ConcurrencyPolicy = 'queue' | 'supersede';

export interface ApiError {
  error: { code: string; message: string; details?: unknown };
}

export interface Page<T> {
  items: T[];
  /** Pass as `before` for the next page; null on the last page. */
  nextCursor: string | null;
}

export interface Project {
  id: number;
  slug: string;
  repoUrl: string;
  branchFilter: string;
  defaultExecutor: string | null;
  defaultImage: string | null;
  concurrencyPolicy: ConcurrencyPolicy;
  maxRunning: number | null;
  /** Cap on one build's log in bytes; null: the server's default. */
  maxLogBytes: number | null;
  pipelinePath: string;
  createdAt: string;
  updatedAt: string;
  lastBuild?: Build | null;
}

export interface ProjectCreate {
  slug: string;
  repoUrl: string;
  branchFilter?: string;
  defaultExecutor?: string | null;
  defaultImage?: string | null;
  concurrencyPolicy?: ConcurrencyPolicy;
  maxRunning?: number | null;
  maxLogBytes?: number | null;
  pipelinePath?: string;
}

export type ProjectUpdate = Partial<Omit<ProjectCreate, 'slug'>>;

export interface ProjectStats {
  /** Average duration of the last 20 successful builds, or null when there are none. */
  averageDurationMs: number | null;
  sampleSize: number;
}

export interface Reason {
  code: string;
  message: string;
}

export interface Build {
  id: number;
  project: string;
  number: number;
  status: Status;
  reason: Reason | null;
  branch: string;
  commit: string | null;
  tag: string | null;
  event: string;
  trigger: string;
  triggeredBy: string | null;
  rerunOf: number | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  /** Its approval stages, in order (build lists, details, actions and the queue carry them). */
  approvals?: Approval[];
}

/**
 * An approval stage's record. A build `waiting` whose approval is decided but not `resumedAt`
 * waits for a running slot (it gets the next one, ahead of queued builds).
 */
export interface Approval {
  stage: string;
  decision: 'waiting' | 'approved' | 'rejected';
  /** Who decided (the caller's token name); null while waiting. */
  by: string | null;
  /** When it was decided; null while waiting. */
  at: string | null;
  comment: string | null;
  /** When the stage began to wait for a person. */
  requestedAt: string | null;
  /** When the build went on after the decision (it had a running slot again). */
  resumedAt: string | null;
}

/** `POST /builds/{id}/approve` and `/reject`. */
export interface ApprovalRequest {
  /** Why, for the record (one line, at most 1000 characters). */
  comment?: string;
}

export interface Step {
  name: string;
  status: Status;
  exitCode: number | null;
  attempts: number;
  reason: Reason | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  logLines: number;
  /** The pipeline allows it to fail (`allow_failure`): its failure did not fail the stage. */
  allowFailure: boolean;
  /** Attempts it may take: 1 + its `retries` ("attempt 2 of 3"). */
  maxAttempts: number;
}

/** `GET /api/v1/executors`: an executor this server knows, and whether builds can use it. */
export interface ExecutorInfo {
  name: string;
  usable: boolean;
  /** The server's default (what a project without its own choice gets). */
  isDefault: boolean;
  /** What it is, or why it cannot be used. */
  detail: string;
}

export interface Stage {
  name: string;
  status: Status;
  reason: Reason | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  /** Its approval record; null when the stage needs none. */
  approval?: Approval | null;
  steps: Step[];
}

export interface BuildDetail extends Build {
  stages: Stage[];
}

export interface TriggerRequest {
  branch: string;
  commit?: string;
  tag?: string;
}

export interface LogLine {
  seq: number;
  stage: string;
  step: string;
  stream: 'stdout' | 'stderr' | 'system';
  n: number;
  time: string;
  text: string;
}

export interface LogPage {
  lines: LogLine[];
  /** Seq of the last line returned (pass as `after`), or the given `after` when none. */
  last: number;
  /** True when the build is finished and no lines follow. */
  complete: boolean;
}

export interface QueueEntry extends Build {
  /**
   * Why it waits: `branch_lock`, `project_limit`, `global_limit`, or null when about to start;
   * `approval` for a `waiting` build until a person decides (then it waits for a slot).
   */
  waitingFor: string | null;
}

export interface Queue {
  running: Build[];
  queued: QueueEntry[];
  limits: { global: number };
}

export interface TokenInfo {
  id: number;
  name: string;
  role: Role;
  createdAt: string;
  lastUsedAt: string | null;
}

export interface TokenCreate {
  name: string;
  role: Role;
}

export interface TokenCreated extends TokenInfo {
  /** The secret itself: shown once, stored only as a hash. */
  token: string;
}

export const FINAL: readonly FinalStatus[] = ['success', 'failure', 'error', 'cancelled', 'skipped'];
