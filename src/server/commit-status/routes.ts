import { Type, type Static } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import {
  deleteCommitStatusSettings,
  getCommitStatusSettings,
  listCommitStatusDeliveries,
  putCommitStatusSettings,
  type CommitStatusSettings,
} from '../../store/commit-status.js';
import { getBuildByNumber, type Database, type Project } from '../../store/index.js';
import { findSecretForProject } from '../../store/secrets.js';
import { ADMIN, VIEWER, projectOr404 } from '../api/context.js';
import type { App } from '../api/context.js';
import { HttpError, notFound } from '../api/errors.js';
import { ProjectBuildParams, ProjectParams } from '../api/schemas.js';
import { SECRET_NAME_PATTERN } from '../secrets/store.js';
import { CONTEXT_MODES, FORGE_KINDS, resolveForgeRepo } from './forges.js';

const ForgeSchema = Type.Union(
  FORGE_KINDS.map((k) => Type.Literal(k)),
  { description: '`gitea` also means Forgejo' },
);
const ChecksSchema = Type.Union([Type.Literal('auto'), Type.Literal('off')], {
  description:
    'GitHub only. `auto` (default): a check run per context where the token may create them (a GitHub App installation token), else commit statuses; `off`: commit statuses only',
});
const ContextsSchema = Type.Union(
  CONTEXT_MODES.map((k) => Type.Literal(k)),
  { description: '`build`: one context `slipway`; `stage`: `slipway` and `slipway/<stage>` per stage' },
);

export const CommitStatusSettingsSchema = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean({ description: 'Default true' })),
    forge: Type.Optional(
      Type.Union([ForgeSchema, Type.Null()], {
        description:
          "null or absent: from the repository URL's host (github.com, gitlab.com, codeberg.org, gitea.com)",
      }),
    ),
    apiUrl: Type.Optional(
      Type.Union([Type.String({ pattern: '^https?://', maxLength: 2048 }), Type.Null()], {
        description:
          'The API base (GitHub Enterprise `https://host/api/v3`, GitLab `https://host/api/v4`, Gitea `https://host/api/v1`); null: that default for the repository host',
      }),
    ),
    repository: Type.Optional(
      Type.Union([Type.String({ minLength: 3, maxLength: 512 }), Type.Null()], {
        description:
          'The repository on the forge, `owner/name` (GitLab: `group/sub/name`); null: from the repository URL (needed when it is a mirror or a local path)',
      }),
    ),
    tokenSecret: Type.String({
      pattern: SECRET_NAME_PATTERN,
      description: 'NAME of the project (or global) secret holding the forge token; the value is never shown',
    }),
    contexts: Type.Optional(ContextsSchema),
    checks: Type.Optional(ChecksSchema),
  },
  { additionalProperties: false, title: 'CommitStatusSettings' },
);

const CommitStatusViewSchema = Type.Object(
  {
    enabled: Type.Boolean(),
    forge: Type.Union([ForgeSchema, Type.Null()]),
    apiUrl: Type.Union([Type.String(), Type.Null()]),
    repository: Type.Union([Type.String(), Type.Null()]),
    tokenSecret: Type.Union([Type.String(), Type.Null()]),
    contexts: ContextsSchema,
    checks: ChecksSchema,
    /** What the settings resolve to for the project's repository, or why they do not. */
    resolved: Type.Union([
      Type.Object({ forge: ForgeSchema, apiUrl: Type.String(), repository: Type.String() }),
      Type.Object({ error: Type.String() }),
    ]),
    tokenSecretExists: Type.Boolean(),
  },
  { title: 'CommitStatusView' },
);

const DeliverySchema = Type.Object(
  {
    kind: Type.Union([Type.Literal('status'), Type.Literal('check')], {
      description:
        '`status`: a commit status; `check`: a GitHub check run (its state the status or conclusion)',
    }),
    forge: Type.String({
      description: '`github`, `gitlab`, `gitea`, or `unknown` when it could not be told',
    }),
    context: Type.String(),
    state: Type.String({ description: 'As the forge names it (GitHub has no `running`: `pending`)' }),
    outcome: Type.Union([Type.Literal('delivered'), Type.Literal('failed')]),
    httpStatus: Type.Union([Type.Integer(), Type.Null()]),
    attempts: Type.Integer(),
    message: Type.Union([Type.String(), Type.Null()]),
    at: Type.Integer({ description: 'Epoch ms' }),
  },
  { title: 'CommitStatusDelivery' },
);

/**
 * `GET|PUT|DELETE /projects/{owner}/{name}/commit-status` (the project's settings: reading
 * needs viewer, changing admin) and `GET /projects/{owner}/{name}/builds/{number}/commit-statuses`
 * (what was posted for a build and what failed), inside `/api/v1`.
 */
export function registerCommitStatusRoutes(api: App, deps: { db: Kysely<Database> }): void {
  const { db } = deps;
  const view = async (project: Project, settings: CommitStatusSettings | undefined) => {
    const own = settings ?? {
      enabled: false,
      forge: null,
      apiUrl: null,
      repository: null,
      tokenSecret: null,
      contexts: 'build' as const,
      checks: 'auto' as const,
    };
    const resolved = resolveForgeRepo(project.repoUrl, own);
    return {
      enabled: own.enabled,
      forge: own.forge,
      apiUrl: own.apiUrl,
      repository: own.repository,
      tokenSecret: own.tokenSecret,
      contexts: own.contexts,
      checks: own.checks ?? 'auto',
      resolved:
        'error' in resolved
          ? resolved
          : { forge: resolved.forge, apiUrl: resolved.apiUrl, repository: resolved.path },
      tokenSecretExists:
        own.tokenSecret !== null &&
        (await findSecretForProject(db, project.id, own.tokenSecret)) !== undefined,
    };
  };
  const tags = ['projects'];
  api.get(
    '/projects/:owner/:name/commit-status',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A project's forge commit-status settings",
        params: ProjectParams,
        response: { 200: CommitStatusViewSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return view(project, await getCommitStatusSettings(db, project.id));
    },
  );
  api.put(
    '/projects/:owner/:name/commit-status',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: "Set a project's forge commit-status settings",
        params: ProjectParams,
        body: CommitStatusSettingsSchema,
        response: { 200: CommitStatusViewSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const body: Static<typeof CommitStatusSettingsSchema> = request.body;
      const settings: CommitStatusSettings = {
        enabled: body.enabled ?? true,
        forge: body.forge ?? null,
        apiUrl: body.apiUrl?.replace(/\/+$/, '') ?? null,
        repository:
          body.repository
            ?.trim()
            .replace(/^\/+|\/+$/g, '')
            .replace(/\.git$/, '') ?? null,
        tokenSecret: body.tokenSecret,
        contexts: body.contexts ?? 'build',
        checks: body.checks ?? 'auto',
      };
      const resolved = resolveForgeRepo(project.repoUrl, settings);
      if ('error' in resolved)
        throw new HttpError(400, 'invalid_request', `commit status: ${resolved.error}`);
      await putCommitStatusSettings(db, project.id, settings);
      return view(project, settings);
    },
  );
  api.delete(
    '/projects/:owner/:name/commit-status',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: "Remove a project's commit-status settings (statuses stop)",
        params: ProjectParams,
      },
    },
    async (request, reply) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      if (!(await deleteCommitStatusSettings(db, project.id)))
        throw notFound(`commit-status settings of ${project.slug}`);
      return reply.code(204).send();
    },
  );
  api.get(
    '/projects/:owner/:name/builds/:number/commit-statuses',
    {
      config: VIEWER,
      schema: {
        tags: ['builds'],
        summary: "A build's commit statuses: each post to the forge and its outcome, oldest first",
        params: ProjectBuildParams,
        response: { 200: Type.Array(DeliverySchema) },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const build = await getBuildByNumber(db, project.id, request.params.number);
      if (build === undefined) throw notFound(`build ${project.slug} #${request.params.number}`);
      return (await listCommitStatusDeliveries(db, build.id)).map((d) => ({
        kind: d.kind ?? 'status',
        forge: d.forge,
        context: d.context,
        state: d.state,
        outcome: d.outcome,
        httpStatus: d.httpStatus,
        attempts: d.attempts,
        message: d.message,
        at: d.createdAt,
      }));
    },
  );
}
