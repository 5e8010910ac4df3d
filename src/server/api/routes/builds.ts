import {
  approvalsOf,
  getBuildByNumber,
  getBuildRecords,
  getProjectBySlug,
  listBuilds,
} from '../../../store/index.js';
import type { Build, Status } from '../../../store/index.js';
import { callerOf } from '../../auth/index.js';
import { isCommitSha, isSafeRefName } from '../../sources/git-checkout.js';
import { checkRefExists } from '../../sources/ref-check.js';
import { MEMBER, VIEWER, buildOr404, projectOr404 } from '../context.js';
import { gitRepoUrl } from '../../secrets/repo-credentials.js';
import type { App, RouteContext } from '../context.js';
import { toBuild, toBuildDetail } from '../convert.js';
import { HttpError, notFound } from '../errors.js';
import {
  BuildDetailSchema,
  BuildSchema,
  ApprovalRequestSchema,
  BuildsQuery,
  EmptyBodySchema,
  IdParams,
  ProjectBuildParams,
  ProjectBuildsQuery,
  ProjectParams,
  RejectRequestSchema,
  RerunRequestSchema,
  TriggerRequestSchema,
  pageOf,
} from '../schemas.js';

const tags = ['builds'];

/** Response header of a trigger that went ahead although its ref could not be checked. */
export const WARNING_HEADER = 'x-slipway-warning';

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
    const approvals = await approvalsOf(
      db,
      result.builds.map((b) => b.id),
    );
    return {
      items: result.builds.map((b) => toBuild(b, approvals.get(b.id) ?? [])),
      nextCursor: result.nextBefore === null ? null : String(result.nextBefore),
    };
  };

  const detail = async (build: Build) =>
    toBuildDetail(
      build,
      await getBuildRecords(db, build.id),
      (await approvalsOf(db, [build.id])).get(build.id) ?? [],
    );
  /** A build after an action, with its approval records (the decision just taken among them). */
  const withApprovals = async (build: Build) =>
    toBuild(build, (await approvalsOf(db, [build.id])).get(build.id) ?? []);

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
        description:
          'The branch (or the tag, if given) must exist in the repository (`git ls-remote`, at most 30 s): ' +
          'a missing one is 400 with the field path. When the repository cannot be asked, the build is ' +
          'queued all the same and the answer carries an `X-Slipway-Warning` header saying why. Without ' +
          '`commit`, a branch build is of the commit the branch pointed at when asked (a later push does not change it).',
        params: ProjectParams,
        body: TriggerRequestSchema,
        response: { 201: BuildSchema },
      },
    },
    async (request, reply) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const { branch, commit, tag } = request.body;
      // The checkout builds the tag if one is given, else the branch: that ref must exist.
      const [kind, ref] = tag !== undefined ? (['tag', tag] as const) : (['branch', branch] as const);
      // The commit the repository named: built when the caller named none (as GitHub's
      // workflow_dispatch pins it), so a push after this answer does not change what is built,
      // and the build need not ask the repository again.
      let found: string | undefined;
      if (isSafeRefName(ref)) {
        const check = await checkRefExists(await gitRepoUrl(ctx.db, ctx.cipher, project), ref, kind);
        // A branch only: for an annotated tag ls-remote names the tag object, not a commit.
        if (kind === 'branch' && check.outcome === 'exists' && isCommitSha(check.commit))
          found = check.commit;
        if (check.outcome === 'missing') {
          throw new HttpError(400, 'invalid_request', check.message, {
            fields: [{ path: `body.${kind}`, message: check.message }],
          });
        }
        // A header carries printable ASCII only; the rest of the text is kept readable.
        if (check.outcome === 'unknown')
          void reply.header(WARNING_HEADER, check.warning.replace(/[^\x20-\x7e]/g, '?'));
      }
      const build = await control.trigger(project, {
        branch,
        ...(commit !== undefined ? { commit } : found !== undefined && { commit: found }),
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
    async (request) => withApprovals(await control.cancel(request.params.id, callerOf(request).name)),
  );

  api.post(
    '/builds/:id/approve',
    {
      config: MEMBER,
      schema: {
        tags,
        summary:
          'Approve the stage a build waits on; it goes on as soon as a running slot is free (ahead of queued builds)',
        params: IdParams,
        body: ApprovalRequestSchema,
        response: { 200: BuildSchema },
      },
    },
    async (request) =>
      withApprovals(
        await control.decide(request.params.id, 'approve', callerOf(request).name, request.body.comment),
      ),
  );

  api.post(
    '/builds/:id/reject',
    {
      config: MEMBER,
      schema: {
        tags,
        summary:
          'Reject the stage a build waits on (`when.status` stages may still run, once a running slot is free)',
        params: IdParams,
        body: RejectRequestSchema,
        response: { 200: BuildSchema },
      },
    },
    async (request) =>
      withApprovals(
        await control.decide(
          request.params.id,
          'reject',
          callerOf(request).name,
          request.body.comment ?? request.body.message,
        ),
      ),
  );

  api.post(
    '/builds/:id/rerun',
    {
      config: MEMBER,
      schema: {
        tags,
        summary: 'Queue a new build of the same project, ref and commit',
        description:
          'With `failedOnly`, the new build runs only what did not succeed (and what needs it, and later stages) and reuses the rest: its steps, logs and artifacts. 409 unless the build ended and did not succeed.',
        params: IdParams,
        body: RerunRequestSchema,
        response: { 201: BuildSchema },
      },
    },
    async (request, reply) => {
      const build = await control.rerun(request.params.id, callerOf(request).name, {
        failedOnly: request.body.failedOnly === true,
      });
      return reply.code(201).send(toBuild(build));
    },
  );
}
