import type * as Store from '../../store/index.js';
import { redactRepoUrl } from '../secrets/repo-credentials.js';
import type { StoredLogLine } from '../logs/types.js';
import type * as Dto from './dto.js';

/*
 * Store records (epoch-ms times, internal fields such as leases) → the API's DTOs (ISO times,
 * public fields only). Responses are also shaped by their schemas, but mapping explicitly
 * keeps an internal field from ever reaching a client by a schema slip.
 */

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : iso(ms);
}

/** `lastBuild` undefined leaves the field out; null says there is none yet. */
export function toProject(project: Store.Project, lastBuild?: Store.Build | null): Dto.Project {
  return {
    id: project.id,
    slug: project.slug,
    // Credentials are sealed apart (see repo-credentials.ts); a URL stored before that is masked here.
    repoUrl: redactRepoUrl(project.repoUrl),
    branchFilter: project.branchFilter,
    defaultExecutor: project.defaultExecutor,
    defaultImage: project.defaultImage,
    concurrencyPolicy: project.concurrencyPolicy,
    maxRunning: project.maxRunning,
    maxLogBytes: project.maxLogBytes,
    pipelinePath: project.pipelinePath,
    createdAt: iso(project.createdAt),
    updatedAt: iso(project.updatedAt),
    ...(lastBuild !== undefined && { lastBuild: lastBuild === null ? null : toBuild(lastBuild) }),
  };
}

/**
 * `projectSlug` becomes `project`, `commitSha` `commit`; leases and attempts stay inside.
 * `approvals` (from the store's `approvalsOf`) adds the approval records.
 */
export function toBuild(build: Store.Build, approvals?: readonly Store.ApprovalRecord[]): Dto.Build {
  return {
    id: build.id,
    project: build.projectSlug,
    number: build.number,
    status: build.status,
    reason: build.reason,
    branch: build.branch,
    commit: build.commitSha,
    commitMessage: build.commitMessage,
    commitAuthor: build.commitAuthor,
    pullRequest: build.pullRequest,
    tag: build.tag,
    event: build.event,
    trigger: build.trigger,
    triggeredBy: build.triggeredBy,
    rerunOf: build.rerunOf,
    rerunFailed: build.rerunFailed,
    createdAt: iso(build.createdAt),
    startedAt: isoOrNull(build.startedAt),
    finishedAt: isoOrNull(build.finishedAt),
    durationMs: build.durationMs,
    ...(approvals !== undefined && { approvals: approvals.map(toApproval) }),
  };
}

export function toApproval(approval: Store.ApprovalRecord): Dto.Approval {
  return {
    stage: approval.stage,
    decision: approval.decision,
    by: approval.by,
    at: isoOrNull(approval.at),
    comment: approval.comment,
    requestedAt: isoOrNull(approval.requestedAt),
    resumedAt: isoOrNull(approval.resumedAt),
  };
}

/** A build with its stage/step records, in plan order, and its approval records. */
export function toBuildDetail(
  build: Store.Build,
  stages: readonly Store.StageRecord[],
  approvals: readonly Store.ApprovalRecord[] = [],
): Dto.BuildDetail {
  const byStage = new Map(approvals.map((a) => [a.stage, a]));
  return {
    ...toBuild(build, approvals),
    stages: stages.map((stage) => toStage(stage, byStage.get(stage.name))),
  };
}

function toStage(stage: Store.StageRecord, approval: Store.ApprovalRecord | undefined): Dto.Stage {
  return {
    name: stage.name,
    status: stage.status,
    reason: stage.reason,
    startedAt: isoOrNull(stage.startedAt),
    finishedAt: isoOrNull(stage.finishedAt),
    durationMs: stage.durationMs,
    approval: approval === undefined ? null : toApproval(approval),
    steps: stage.steps.map(toStep),
  };
}

function toStep(step: Store.StepRecord): Dto.Step {
  return {
    name: step.name,
    status: step.status,
    exitCode: step.exitCode,
    attempts: step.attempts,
    reason: step.reason,
    startedAt: isoOrNull(step.startedAt),
    finishedAt: isoOrNull(step.finishedAt),
    durationMs: step.durationMs,
    logLines: step.logLines,
    allowFailure: step.allowFailure,
    maxAttempts: step.maxAttempts,
    reusedFrom: step.reusedFrom,
  };
}

/** A stored line as clients see it (also the data of an SSE `line` event). */
export function toLogLine(line: StoredLogLine): Dto.LogLine {
  return {
    seq: line.seq,
    stage: line.stage,
    step: line.step,
    stream: line.stream,
    n: line.n,
    time: iso(line.time),
    text: line.text,
  };
}

/** Never the secret or its hash. */
export function toTokenInfo(token: Store.TokenInfo): Dto.TokenInfo {
  return {
    id: token.id,
    name: token.name,
    role: token.role,
    createdAt: iso(token.createdAt),
    lastUsedAt: isoOrNull(token.lastUsedAt),
    // A person signed in by OIDC (see `UserCaller`), not a token.
    ...('issuer' in token && typeof token.issuer === 'string' ? { signedInWith: token.issuer } : {}),
  };
}
