import { Type } from '@sinclair/typebox';
import type { Static, TNull, TSchema, TUnion, TUnsafe } from '@sinclair/typebox';
import type { Status } from '../../pipeline/types.js';
import { MAX_SLUG_PART_LENGTH, SLUG_PATTERN } from '../../store/projects.js';
import type * as Dto from './dto.js';

/**
 * TypeBox schemas of the JSON the API takes and gives: the same objects validate requests,
 * shape responses and make the OpenAPI document. `dto.ts` is the hand-written contract the
 * CLI compiles against; the checks at the bottom of this file fail the type-check when a
 * schema and its DTO drift apart.
 */

const nullable = <T extends TSchema>(schema: T): TUnion<[T, TNull]> => Type.Union([schema, Type.Null()]);

/**
 * `"a" | "b" | …` as a union of literals. `Unsafe` only gives the static type; it keeps the
 * union's kind, so TypeBox's compiler still checks it.
 */
function literals<const T extends readonly string[]>(
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

/** Every build/stage/step status (DESIGN.md "status"). */
export const STATUSES = [
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
] as const satisfies readonly Status[];

const Time = Type.String({ format: 'date-time' });
const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });

export const StatusSchema = literals(STATUSES);
export const RoleSchema = literals(['admin', 'member', 'viewer'] as const);
export const ConcurrencyPolicySchema = literals(['queue', 'supersede'] as const, {
  description: '`queue`: a newer build of a branch waits (FIFO); `supersede`: it cancels older ones.',
});
const ExecutorSchema = literals(['local', 'docker', 'kubernetes'] as const);

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

export const ReasonSchema = Type.Object({ code: Type.String(), message: Type.String() });

export const ApprovalSchema = Type.Object(
  {
    stage: Type.String(),
    decision: literals(['waiting', 'approved', 'rejected'] as const),
    by: nullable(Type.String()),
    at: nullable(Time),
    comment: nullable(Type.String()),
    requestedAt: nullable(Time),
    resumedAt: nullable(Time),
  },
  { title: 'Approval' },
);

export const BuildSchema = Type.Object(
  {
    id: Type.Integer(),
    project: Type.String({ description: '`owner/name` of the project' }),
    number: Type.Integer({ description: 'Per-project build number, 1, 2, …' }),
    status: StatusSchema,
    reason: nullable(ReasonSchema),
    branch: Type.String(),
    commit: nullable(Type.String()),
    tag: nullable(Type.String()),
    event: Type.String(),
    trigger: Type.String(),
    triggeredBy: nullable(Type.String()),
    rerunOf: nullable(Type.Integer()),
    createdAt: Time,
    startedAt: nullable(Time),
    finishedAt: nullable(Time),
    durationMs: nullable(Type.Integer()),
    approvals: Type.Optional(Type.Array(ApprovalSchema)),
  },
  { title: 'Build' },
);

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
});

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

export const BuildDetailSchema = Type.Composite(
  [BuildSchema, Type.Object({ stages: Type.Array(StageSchema) })],
  {
    title: 'BuildDetail',
  },
);

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
    maxLogBytes: nullable(Type.Integer()),
    pipelinePath: Type.String(),
    createdAt: Time,
    updatedAt: Time,
    lastBuild: Type.Optional(nullable(BuildSchema)),
  },
  { title: 'Project' },
);

/*
 * The store's slug rule (SLUG_PATTERN, imported), stated in the schemas so that the OpenAPI
 * document says it and a bad slug is reported with its field path before anything reaches
 * the store (which checks it again).
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

export const ProjectUpdateSchema = Type.Object(
  { ...projectSettings, repoUrl: Type.Optional(projectSettings.repoUrl) },
  { additionalProperties: false, title: 'ProjectUpdate' },
);

export const ProjectStatsSchema = Type.Object({
  averageDurationMs: nullable(Type.Integer()),
  sampleSize: Type.Integer(),
});

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

export const EmptyBodySchema = Type.Object({}, { additionalProperties: false });

/** One line of text: no control characters (it goes into the build log and notifications). */
const Comment = Type.String({
  maxLength: 1000,
  pattern: '^[^\\u0000-\\u001f\\u007f]*$',
  description: 'Why, for the record: one line, at most 1000 characters',
  errorMessage: 'must be one line of at most 1000 characters, without control characters',
});

export const ApprovalRequestSchema = Type.Object(
  { comment: Type.Optional(Comment) },
  { additionalProperties: false, title: 'ApprovalRequest' },
);

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

export const LogPageSchema = Type.Object(
  {
    lines: Type.Array(LogLineSchema),
    last: Type.Integer(),
    complete: Type.Boolean(),
  },
  { title: 'LogPage' },
);

export const QueueEntrySchema = Type.Composite([
  BuildSchema,
  Type.Object({
    waitingFor: nullable(literals(['approval', 'branch_lock', 'project_limit', 'global_limit'] as const)),
  }),
]);

export const QueueSchema = Type.Object(
  {
    running: Type.Array(BuildSchema),
    queued: Type.Array(QueueEntrySchema),
    limits: Type.Object({ global: Type.Integer() }),
  },
  { title: 'Queue' },
);

export const TokenInfoSchema = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    role: RoleSchema,
    createdAt: Time,
    lastUsedAt: nullable(Time),
  },
  { title: 'TokenInfo' },
);

export const TokenCreateSchema = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), role: RoleSchema },
  { additionalProperties: false, title: 'TokenCreate' },
);

export const TokenCreatedSchema = Type.Composite([TokenInfoSchema, Type.Object({ token: Type.String() })], {
  title: 'TokenCreated',
});

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

// The schemas must describe exactly the DTOs of the contract.

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
function same<_T extends true>(): void {}
same<Same<Static<typeof BuildSchema>, Dto.Build>>();
same<Same<Static<typeof BuildDetailSchema>, Dto.BuildDetail>>();
same<Same<Static<typeof ProjectSchema>, Dto.Project>>();
same<Same<Static<typeof ProjectStatsSchema>, Dto.ProjectStats>>();
same<Same<Static<typeof LogLineSchema>, Dto.LogLine>>();
same<Same<Static<typeof LogPageSchema>, Dto.LogPage>>();
same<Same<Static<typeof TokenInfoSchema>, Dto.TokenInfo>>();
same<Same<Static<typeof TokenCreatedSchema>, Dto.TokenCreated>>();
same<Same<Static<typeof TokenCreateSchema>, Dto.TokenCreate>>();
same<Same<Static<typeof TriggerRequestSchema>, Dto.TriggerRequest>>();
same<Same<Static<typeof ApprovalSchema>, Dto.Approval>>();
same<Same<Static<typeof ApprovalRequestSchema>, Dto.ApprovalRequest>>();
same<Same<Static<typeof ApiErrorSchema>, Dto.ApiError>>();
// Requests may be narrower than the DTO (executors are a closed list here), never wider.
same<Static<typeof ProjectCreateSchema> extends Dto.ProjectCreate ? true : false>();
same<Static<typeof ProjectUpdateSchema> extends Dto.ProjectUpdate ? true : false>();
// Responses may be narrower too: `waitingFor` is a closed list in the schema, a string in the DTO.
same<Static<typeof QueueSchema> extends Dto.Queue ? true : false>();
