/**
 * JSON shapes of the REST API (`/api/v1`) as TypeBox schemas, and their static types: the
 * same objects validate requests and shape responses on the server, make its OpenAPI
 * document, and type the CLI's and the web UI's clients. Times are ISO-8601 strings;
 * durations milliseconds.
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
 *   POST   /api/v1/builds/{id}/rerun    {failedOnly?}        → 201 Build             member
 *   GET    /api/v1/builds/{id}/logs?after&limit              → LogPage (JSON)        viewer
 *   GET    /api/v1/builds/{id}/logs?follow=1  (SSE; Last-Event-ID or ?after resumes)   viewer
 *          events: `lines` (data: LogBatch, id: last seq), `status` (data: Build), `lag`, `end`;
 *          with `&format=line` one `line` event per line (data: LogLine, id: seq) instead
 *   GET    /api/v1/builds/{id}/steps/{stage}/{step}/log      → text/plain            viewer
 *   GET    /api/v1/builds/{id}/artifacts                     → Artifact[]            viewer
 *   GET    /api/v1/executors                                 → ExecutorInfo[]        viewer
 *   GET    /api/v1/queue                                     → Queue                 viewer
 *   GET    /api/v1/tokens                                    → TokenInfo[]           admin
 *   POST   /api/v1/tokens                   TokenCreate      → 201 TokenCreated      admin
 *   DELETE /api/v1/tokens/{id}                               → 204                   admin
 *   GET    /api/v1/whoami                                    → TokenInfo             viewer
 *   GET    /api/v1/[projects/{owner}/{name}/]secrets          → SecretInfo[]          viewer
 *   PUT    /api/v1/[projects/{owner}/{name}/]secrets/{name}   SecretSet → SecretInfo  admin
 *
 * Errors: `{ error: { code, message, details? } }` with a 4xx/5xx status (`api-errors.ts`).
 */
import { Type } from '@sinclair/typebox';
import type { Static, TNull, TSchema, TUnion, TUnsafe } from '@sinclair/typebox';
import { PROJECT_EXECUTORS } from './executors.js';
import {
  BUILD_TRIGGERS,
  CONCURRENCY_POLICIES,
  EVENTS,
  MAX_SECRET_BYTES,
  MAX_SLUG_PART_LENGTH,
  SECRET_NAME_PATTERN,
  SLUG_PATTERN,
} from './project.js';
import { REASON_CODES } from './reasons.js';
import { ROLES } from './roles.js';
import { STATUSES } from './status.js';

export const nullable = <T extends TSchema>(schema: T): TUnion<[T, TNull]> =>
  Type.Union([schema, Type.Null()]);

/**
 * `"a" | "b" | …` as a union of literals. `Unsafe` only gives the static type; it keeps the
 * union's kind, so TypeBox's compiler still checks it.
 */
export function literals<const T extends readonly string[]>(
  values: T,
  options: { description?: string } = {},
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>(
    Type.Union(
      values.map((v) => Type.Literal(v)),
      options,
    ),
  );
}

const Time = Type.String({ format: 'date-time' });
const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

export const StatusSchema = literals(STATUSES);
export const RoleSchema = literals(ROLES);
export const ConcurrencyPolicySchema = literals(CONCURRENCY_POLICIES, {
  description: '`queue`: a newer build of a branch waits (FIFO); `supersede`: it cancels older ones.',
});
export const ExecutorSchema = literals(PROJECT_EXECUTORS);

/**
 * An error answer. `code` is one of `API_ERROR_CODES` (webhooks add `HOOK_ERROR_CODES`); the
 * schema takes any string so that a client keeps working when a newer server adds one.
 */
export const ApiErrorSchema = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Unknown()),
    }),
  },
  { title: 'ApiError' },
);
export type ApiError = Static<typeof ApiErrorSchema>;

export const ReasonSchema = Type.Object({ code: literals(REASON_CODES), message: Type.String() });

/**
 * An approval stage's record. A build `waiting` whose approval is decided but not `resumedAt`
 * waits for a running slot (it gets the next one, ahead of queued builds).
 */
export const ApprovalSchema = Type.Object(
  {
    stage: Type.String(),
    decision: literals(['waiting', 'approved', 'rejected'] as const),
    by: nullable(Type.String({ description: "Who decided (the caller's token name); null while waiting" })),
    at: nullable(
      Type.String({ format: 'date-time', description: 'When it was decided; null while waiting' }),
    ),
    comment: nullable(Type.String()),
    requestedAt: nullable(Type.String({ format: 'date-time', description: 'When the stage began to wait' })),
    resumedAt: nullable(
      Type.String({
        format: 'date-time',
        description: 'When the build went on after the decision (it had a running slot again)',
      }),
    ),
  },
  { title: 'Approval' },
);
export type Approval = Static<typeof ApprovalSchema>;

export const BuildSchema = Type.Object(
  {
    id: Type.Integer(),
    project: Type.String({ description: '`owner/name` of the project' }),
    number: Type.Integer({ description: 'Per-project build number, 1, 2, …' }),
    status: StatusSchema,
    reason: nullable(ReasonSchema),
    branch: Type.String(),
    commit: nullable(Type.String()),
    commitMessage: Type.Optional(
      nullable(
        Type.String({ description: "The commit's whole message; null until known (the checkout fills it)" }),
      ),
    ),
    commitAuthor: Type.Optional(
      nullable(Type.String({ description: 'Who wrote the commit: `Name <e-mail>`, or the name alone' })),
    ),
    pullRequest: Type.Optional(
      nullable(Type.Integer({ description: 'Pull-request builds: the number of the pull (merge) request' })),
    ),
    tag: nullable(Type.String()),
    event: literals(EVENTS),
    trigger: literals(BUILD_TRIGGERS),
    triggeredBy: nullable(Type.String()),
    rerunOf: nullable(Type.Integer()),
    rerunFailed: Type.Optional(
      Type.Boolean({ description: 'It re-runs only what failed in `rerunOf`, reusing what succeeded there' }),
    ),
    createdAt: Time,
    startedAt: nullable(Time),
    finishedAt: nullable(Time),
    durationMs: nullable(Type.Integer()),
    approvals: Type.Optional(
      Type.Array(ApprovalSchema, {
        description: 'Its approval stages, in order (build lists, details, actions and the queue carry them)',
      }),
    ),
  },
  { title: 'Build' },
);
export type Build = Static<typeof BuildSchema>;

export const StepSchema = Type.Object({
  name: Type.String(),
  status: StatusSchema,
  exitCode: nullable(Type.Integer()),
  attempts: Type.Integer(),
  reason: nullable(ReasonSchema),
  startedAt: nullable(Time),
  finishedAt: nullable(Time),
  durationMs: nullable(Type.Integer()),
  logLines: Type.Integer(),
  allowFailure: Type.Boolean({ description: 'Its failure does not fail the stage (`allow_failure`)' }),
  maxAttempts: Type.Integer({ description: 'Attempts it may take: 1 + its `retries`' }),
  reusedFrom: Type.Optional(
    nullable(
      Type.Object(
        { buildId: Type.Integer(), number: Type.Integer() },
        {
          description:
            'Re-run failed: the step did not run here, the result of its run in this build is reused (log and artifacts copied)',
        },
      ),
    ),
  ),
});
export type Step = Static<typeof StepSchema>;

export const StageSchema = Type.Object({
  name: Type.String(),
  status: StatusSchema,
  reason: nullable(ReasonSchema),
  startedAt: nullable(Time),
  finishedAt: nullable(Time),
  durationMs: nullable(Type.Integer()),
  approval: Type.Optional(nullable(ApprovalSchema)),
  steps: Type.Array(StepSchema),
});
export type Stage = Static<typeof StageSchema>;

export const BuildDetailSchema = Type.Composite(
  [BuildSchema, Type.Object({ stages: Type.Array(StageSchema) })],
  {
    title: 'BuildDetail',
  },
);
export type BuildDetail = Static<typeof BuildDetailSchema>;

export const ProjectSchema = Type.Object(
  {
    id: Type.Integer(),
    slug: Type.String(),
    repoUrl: Type.String(),
    branchFilter: Type.String(),
    defaultExecutor: nullable(Type.String()),
    defaultImage: nullable(Type.String()),
    concurrencyPolicy: ConcurrencyPolicySchema,
    maxRunning: nullable(Type.Integer()),
    maxLogBytes: nullable(
      Type.Integer({ description: "Cap on one build's log in bytes; null: the server's default" }),
    ),
    pipelinePath: Type.String(),
    createdAt: Time,
    updatedAt: Time,
    lastBuild: Type.Optional(nullable(BuildSchema)),
  },
  { title: 'Project' },
);
export type Project = Static<typeof ProjectSchema>;

/*
 * The store's slug rule (SLUG_PATTERN), stated in the schemas so that the OpenAPI document
 * says it and a bad slug is reported with its field path before anything reaches the store
 * (which checks it again).
 */

const projectSettings = {
  repoUrl: Type.String({
    minLength: 1,
    maxLength: 2048,
    description:
      'Git URL the server clones. Credentials in it (`https://user:token@host/…`) are sealed as a project secret and shown as `***`; sending `***` back keeps them, a URL without any drops them',
  }),
  branchFilter: Type.Optional(
    Type.String({
      maxLength: 1000,
      description: 'Regular expression; webhook pushes of matching refs are built. Default `.*`.',
    }),
  ),
  defaultExecutor: Type.Optional(nullable(ExecutorSchema)),
  defaultImage: Type.Optional(nullable(Type.String({ minLength: 1, maxLength: 500 }))),
  concurrencyPolicy: Type.Optional(ConcurrencyPolicySchema),
  maxRunning: Type.Optional(
    nullable(
      Type.Integer({
        minimum: 1,
        maximum: 10_000,
        description: 'Running builds at once; null: global limit only',
      }),
    ),
  ),
  maxLogBytes: Type.Optional(
    nullable(
      Type.Integer({
        minimum: 1024,
        maximum: Number.MAX_SAFE_INTEGER,
        description: "Cap on one build's log in bytes; past it output is dropped. null: the server's default",
      }),
    ),
  ),
  pipelinePath: Type.Optional(
    Type.String({ minLength: 1, maxLength: 500, description: 'Default `.slipway.yml`' }),
  ),
};

export const ProjectCreateSchema = Type.Object(
  {
    slug: Type.String({
      pattern: SLUG_PATTERN,
      maxLength: 2 * MAX_SLUG_PART_LENGTH + 1,
      errorMessage: `must be of the form owner/name (letters, digits, ".", "_", "-"; owner and name at most ${MAX_SLUG_PART_LENGTH} characters each)`,
    }),
    ...projectSettings,
  },
  { additionalProperties: false, title: 'ProjectCreate' },
);
export type ProjectCreate = Static<typeof ProjectCreateSchema>;

export const ProjectUpdateSchema = Type.Object(
  { ...projectSettings, repoUrl: Type.Optional(projectSettings.repoUrl) },
  { additionalProperties: false, title: 'ProjectUpdate' },
);
export type ProjectUpdate = Static<typeof ProjectUpdateSchema>;

export const ProjectStatsSchema = Type.Object({
  averageDurationMs: nullable(
    Type.Integer({
      description: 'Average duration of the last 20 successful builds; null when there are none',
    }),
  ),
  sampleSize: Type.Integer(),
});
export type ProjectStats = Static<typeof ProjectStatsSchema>;

export const TriggerRequestSchema = Type.Object(
  {
    branch: Type.String({ minLength: 1, maxLength: 255 }),
    commit: Type.Optional(
      Type.String({
        pattern: '^[0-9a-fA-F]{7,64}$',
        errorMessage: 'must be a commit SHA (7 to 64 hexadecimal digits)',
      }),
    ),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  },
  { additionalProperties: false, title: 'TriggerRequest' },
);
export type TriggerRequest = Static<typeof TriggerRequestSchema>;

export const EmptyBodySchema = Type.Object({}, { additionalProperties: false });

export const RerunRequestSchema = Type.Object(
  {
    failedOnly: Type.Optional(
      Type.Boolean({
        description:
          'Run only the steps that did not succeed, those that need them and later stages; reuse the rest. Only for a finished build that did not succeed (409 otherwise)',
      }),
    ),
  },
  { additionalProperties: false, title: 'RerunRequest' },
);
export type RerunRequest = Static<typeof RerunRequestSchema>;

/** One line of text: no control characters (it goes into the build log and notifications). */
const Comment = Type.String({
  maxLength: 1000,
  pattern: '^[^\\u0000-\\u001f\\u007f]*$',
  description: 'Why, for the record: one line, at most 1000 characters',
  errorMessage: 'must be one line of at most 1000 characters, without control characters',
});

/** `POST /builds/{id}/approve` and `/reject`. */
export const ApprovalRequestSchema = Type.Object(
  { comment: Type.Optional(Comment) },
  { additionalProperties: false, title: 'ApprovalRequest' },
);
export type ApprovalRequest = Static<typeof ApprovalRequestSchema>;

/** `message` is the older name of `comment`, still taken. */
export const RejectRequestSchema = Type.Object(
  { comment: Type.Optional(Comment), message: Type.Optional(Comment) },
  { additionalProperties: false, title: 'RejectRequest' },
);

export const LogLineSchema = Type.Object({
  seq: Type.Integer(),
  stage: Type.String(),
  step: Type.String(),
  stream: literals(['stdout', 'stderr', 'system'] as const),
  n: Type.Integer(),
  time: Time,
  text: Type.String(),
});
export type LogLine = Static<typeof LogLineSchema>;

/**
 * Consecutive lines of one step and stream, their columns given once (see `log-stream.ts`):
 * line `i` has seq `seq + i`, line number `n + i`, and the time of line `i - 1` plus `dt[i]`.
 */
export const LogRunSchema = Type.Object({
  seq: Type.Integer({ description: "Seq of the run's first line" }),
  stage: Type.String(),
  step: Type.String(),
  stream: literals(['stdout', 'stderr', 'system'] as const),
  n: Type.Integer({ description: "Line number of the run's first line within its step" }),
  time: Type.Integer({ description: "Time of the run's first line, milliseconds since the epoch" }),
  dt: Type.Array(Type.Integer(), { description: 'Per line, milliseconds after the line before (0 first)' }),
  text: Type.Array(Type.String(), { description: 'Per line, its text' }),
});
export type LogRun = Static<typeof LogRunSchema>;

/** Data of the live log's `lines` event: a batch of lines, in seq order. */
export const LogBatchSchema = Type.Object({ runs: Type.Array(LogRunSchema) }, { title: 'LogBatch' });
export type LogBatch = Static<typeof LogBatchSchema>;

export const LogPageSchema = Type.Object(
  {
    lines: Type.Array(LogLineSchema),
    last: Type.Integer({
      description: 'Seq of the last line returned (pass as `after`), or the given `after`',
    }),
    complete: Type.Boolean({ description: 'True when the build is finished and no lines follow' }),
  },
  { title: 'LogPage' },
);
export type LogPage = Static<typeof LogPageSchema>;

export const QueueEntrySchema = Type.Composite([
  BuildSchema,
  Type.Object({
    waitingFor: nullable(
      literals(['approval', 'branch_lock', 'project_limit', 'global_limit'] as const, {
        description:
          'Why it waits; null when about to start. `approval` for a `waiting` build until a person decides (then it waits for a slot)',
      }),
    ),
  }),
]);
export type QueueEntry = Static<typeof QueueEntrySchema>;

export const QueueSchema = Type.Object(
  {
    running: Type.Array(BuildSchema),
    queued: Type.Array(QueueEntrySchema),
    limits: Type.Object({ global: Type.Integer() }),
  },
  { title: 'Queue' },
);
export type Queue = Static<typeof QueueSchema>;

export const TokenInfoSchema = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    role: RoleSchema,
    createdAt: Time,
    lastUsedAt: nullable(Time),
    /** Set for a person signed in with OpenID Connect: the identity provider's issuer URL. */
    signedInWith: Type.Optional(
      Type.String({ description: 'The OIDC issuer of a person signed in with it (not a token)' }),
    ),
  },
  { title: 'TokenInfo' },
);
export type TokenInfo = Static<typeof TokenInfoSchema>;

export const TokenCreateSchema = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), role: RoleSchema },
  { additionalProperties: false, title: 'TokenCreate' },
);
export type TokenCreate = Static<typeof TokenCreateSchema>;

export const TokenCreatedSchema = Type.Composite(
  [
    TokenInfoSchema,
    Type.Object({
      token: Type.String({ description: 'The secret itself: shown once, stored only as a hash' }),
    }),
  ],
  { title: 'TokenCreated' },
);
export type TokenCreated = Static<typeof TokenCreatedSchema>;

/** `GET /api/v1/executors`: an executor this server knows, and whether builds can use it. */
export const ExecutorInfoSchema = Type.Object(
  {
    name: Type.String(),
    usable: Type.Boolean(),
    isDefault: Type.Boolean({ description: "The server's default executor" }),
    detail: Type.String({ description: 'What it is, or why it cannot be used' }),
  },
  { title: 'ExecutorInfo' },
);
export type ExecutorInfo = Static<typeof ExecutorInfoSchema>;

export const SecretInfoSchema = Type.Object(
  {
    name: Type.String(),
    allowForks: Type.Boolean({
      description: 'Also given to pull-request builds whose head repository is a fork',
    }),
    createdAt: Time,
    updatedAt: Time,
  },
  { title: 'SecretInfo', description: 'A secret without its value: no route ever returns a value.' },
);
export type SecretInfo = Static<typeof SecretInfoSchema>;

export const SecretSetSchema = Type.Object(
  {
    value: Type.String({
      minLength: 1,
      maxLength: MAX_SECRET_BYTES,
      description: 'The value; stored sealed, never shown again',
    }),
    allowForks: Type.Optional(
      Type.Boolean({ description: 'Give it to pull-request builds from forks too (default false)' }),
    ),
  },
  { additionalProperties: false, title: 'SecretSet' },
);
export type SecretSet = Static<typeof SecretSetSchema>;

export const SecretNameSchema = Type.String({
  pattern: SECRET_NAME_PATTERN,
  description: 'Letters, digits, `_`, `.`, `-`',
});

export const ArtifactSchema = Type.Object(
  {
    path: Type.String({ description: 'Workspace-relative path, `/`-separated' }),
    size: Type.Integer({ description: 'Bytes' }),
    sha256: Type.String({ description: 'Hex SHA-256 of the bytes' }),
    step: Type.String({ description: '`stage/step` that published it' }),
    createdAt: Time,
  },
  { title: 'Artifact' },
);
export type Artifact = Static<typeof ArtifactSchema>;

/** One page of a list; pass `nextCursor` as `before` for the next one. */
export interface Page<T> {
  items: T[];
  /** null on the last page. */
  nextCursor: string | null;
}

export function pageOf<T extends TSchema>(item: T) {
  return Type.Object({
    items: Type.Array(item),
    nextCursor: nullable(
      Type.String({ description: 'Pass as `before` for the next page; null on the last page' }),
    ),
  });
}

// Path and query parameters.

export const IdParams = Type.Object({ id: Id });
export const ProjectParams = Type.Object({ owner: Type.String(), name: Type.String() });
export const ProjectBuildParams = Type.Object({ owner: Type.String(), name: Type.String(), number: Id });
export const StepLogParams = Type.Object({ id: Id, stage: Type.String(), step: Type.String() });

const Limit = (max: number, fallback: number) =>
  Type.Optional(Type.Integer({ minimum: 1, maximum: max, description: `Page size, default ${fallback}` }));

export const PageQuery = Type.Object(
  {
    limit: Limit(500, 100),
    before: Type.Optional(
      Type.String({ minLength: 1, description: 'The `nextCursor` of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

const StatusFilter = Type.String({
  pattern: `^(${STATUSES.join('|')})(,(${STATUSES.join('|')}))*$`,
  description: 'One status, or several separated by commas',
  errorMessage: `must be one or more of ${STATUSES.join(', ')}, separated by commas`,
});
const BuildCursor = Type.String({
  pattern: '^[1-9][0-9]{0,15}$',
  description: 'The `nextCursor` of the previous page',
  errorMessage: 'must be the nextCursor of a previous page',
});

export const ProjectBuildsQuery = Type.Object(
  {
    status: Type.Optional(StatusFilter),
    branch: Type.Optional(Type.String({ minLength: 1 })),
    limit: Limit(500, 50),
    before: Type.Optional(BuildCursor),
  },
  { additionalProperties: false },
);

export const BuildsQuery = Type.Object(
  { ...ProjectBuildsQuery.properties, project: Type.Optional(Type.String({ pattern: SLUG_PATTERN })) },
  { additionalProperties: false },
);

export const LogsQuery = Type.Object(
  {
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'Only lines with a greater seq' })),
    limit: Limit(5000, 1000),
    follow: Type.Optional(
      Type.Boolean({
        description: 'Stream as Server-Sent Events (also chosen by `Accept: text/event-stream`)',
      }),
    ),
    format: Type.Optional(
      literals(['batch', 'line'] as const, {
        description:
          'Event stream only: `batch` (default) sends `lines` events of many lines each; `line` one `line` event per line',
      }),
    ),
    access_token: Type.Optional(
      Type.String({
        description: 'The token, for EventSource clients that cannot set the Authorization header',
      }),
    ),
  },
  { additionalProperties: false },
);

export const LastEventIdHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      pattern: '^(0|[1-9][0-9]{0,15})$',
      description: 'Resume after this seq (what an EventSource sends when it reconnects)',
    }),
  ),
});
