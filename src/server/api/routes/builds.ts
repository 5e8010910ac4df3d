import { getBuildByNumber, getBuildRecords, getProjectBySlug, listBuilds } from '../../../store/index.js';
import type { Build, Status } from '../../../store/index.js';
import { callerOf } from '../../auth/index.js';
import { MEMBER, VIEWER, buildOr404, projectOr404 } from '../context.js';
import type { App, RouteContext } from '../context.js';
import { toBuild, toBuildDetail } from '../convert.js';
import { notFound } from '../errors.js';
import {
  BuildDetailSchema,
  BuildSchema,
  BuildsQuery,
  EmptyBodySchema,
  IdParams,
  ProjectBuildParams,
  ProjectBuildsQuery,
  ProjectParams,
  RejectRequestSchema,
  TriggerRequestSchema,
  pageOf,
} from '../schemas.js';

const tags = ['builds'];

interface ListQuery {
  status?: string;
  branch?: string;
  limit?: number;
  before?: string;
}

/** Builds: lists, details with stage/step records, and the actions that go through `BuildControl`. */
export function buildRoutes(api: App, ctx: RouteContext): void {
  const { db, control } = ctx;

  const page = async (query: ListQuery, projectId?: number) => {
    const result = await listBuilds(db, {
      ...(projectId !== undefined && { projectId }),
      ...(query.status !== undefined && { status: query.status.split(',') as Status[] }),
      ...(query.branch !== undefined && { branch: query.branch }),
      ...(query.before !== undefined && { before: Number(query.before) }),
      limit: query.limit ?? 50,
    });
    return {
      items: result.builds.map(toBuild),
      nextCursor: result.nextBefore === null ? null : String(result.nextBefore),
    };
  };

  const detail = async (build: Build) => toBuildDetail(build, await getBuildRecords(db, build.id));

  api.get(
    '/projects/:owner/:name/builds',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A project's builds, newest first",
        params: ProjectParams,
        querystring: ProjectBuildsQuery,
        response: { 200: pageOf(BuildSchema) },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return page(request.query, project.id);
    },
  );

  api.post(
    '/projects/:owner/:name/builds',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Trigger a build of a branch (any branch: the branch filter applies to webhooks only)',
        params: ProjectParams,
        body: TriggerRequestSchema,
        response: { 201: BuildSchema },
      },
    },
    async (request, reply) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const { branch, commit, tag } = request.body;
      const build = await control.trigger(project, {
        branch,
        ...(commit !== undefined && { commit }),
        ...(tag !== undefined && { tag }),
        event: 'manual',
        trigger: 'manual',
        triggeredBy: callerOf(request).name,
      });
      return reply.code(201).send(toBuild(build));
    },
  );

  api.get(
    '/projects/:owner/:name/builds/:number',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: 'A build by its project number, with stages and steps',
        params: ProjectBuildParams,
        response: { 200: BuildDetailSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const build = await getBuildByNumber(db, project.id, request.params.number);
      if (build === undefined) throw notFound(`build ${project.slug} #${request.params.number}`);
      return detail(build);
    },
  );

  api.get(
    '/builds',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: 'Builds of all projects (or of `project`), newest first',
        querystring: BuildsQuery,
        response: { 200: pageOf(BuildSchema) },
      },
    },
    async (request) => {
      const { project: slug, ...query } = request.query;
      if (slug === undefined) return page(query);
      const project = await getProjectBySlug(db, slug);
      if (project === undefined) throw notFound(`project ${slug}`);
      return page(query, project.id);
    },
  );

  api.get(
    '/builds/:id',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: 'A build with stages and steps',
        params: IdParams,
        response: { 200: BuildDetailSchema },
      },
    },
    async (request) => detail(await buildOr404(db, request.params.id)),
  );

  api.post(
    '/builds/:id/cancel',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Cancel a queued build at once, or ask the server running it to stop it',
        params: IdParams,
        body: EmptyBodySchema,
        response: { 200: BuildSchema },
      },
    },
    async (request) => toBuild(await control.cancel(request.params.id, callerOf(request).name)),
  );

  api.post(
    '/builds/:id/approve',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Approve the stage a build waits on',
        params: IdParams,
        body: EmptyBodySchema,
        response: { 200: BuildSchema },
      },
    },
    async (request) => toBuild(await control.decide(request.params.id, 'approve', callerOf(request).name)),
  );

  api.post(
    '/builds/:id/reject',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Reject the stage a build waits on',
        params: IdParams,
        body: RejectRequestSchema,
        response: { 200: BuildSchema },
      },
    },
    async (request) =>
      toBuild(
        await control.decide(request.params.id, 'reject', callerOf(request).name, request.body.message),
      ),
  );

  api.post(
    '/builds/:id/rerun',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Queue a new build of the same project, ref and commit',
        params: IdParams,
        body: EmptyBodySchema,
        response: { 201: BuildSchema },
      },
    },
    async (request, reply) => {
      const build = await control.rerun(request.params.id, callerOf(request).name);
      return reply.code(201).send(toBuild(build));
    },
  );
}
