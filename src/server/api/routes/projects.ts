import type { Kysely } from 'kysely';
import {
  createProject,
  deleteProject,
  getBuildByNumber,
  listBuilds,
  listProjects,
  projectStats,
  updateProject,
} from '../../../store/index.js';
import type { Build, Database, Project } from '../../../store/index.js';
import { ADMIN, VIEWER, projectOr404 } from '../context.js';
import type { App, RouteContext } from '../context.js';
import { splitRepoCredentials, storeRepoUrl } from '../../secrets/repo-credentials.js';
import { toProject } from '../convert.js';
import {
  PageQuery,
  ProjectCreateSchema,
  ProjectParams,
  ProjectSchema,
  ProjectStatsSchema,
  ProjectUpdateSchema,
  pageOf,
} from '../schemas.js';

const tags = ['projects'];

/** Projects CRUD and stats. Reading needs a viewer token, changing one an admin token. */
export function projectRoutes(api: App, { db, logs, cipher }: RouteContext): void {
  api.get(
    '/projects',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: 'List projects by slug, with their newest build',
        querystring: PageQuery,
        response: { 200: pageOf(ProjectSchema) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 100;
      // One more than asked tells whether another page follows.
      const rows = await listProjects(db, {
        limit: limit + 1,
        ...(request.query.before !== undefined && { after: request.query.before }),
      });
      const page = rows.slice(0, limit);
      const items = await Promise.all(page.map(async (p) => toProject(p, await lastBuildOf(db, p))));
      return { items, nextCursor: rows.length > limit ? page.at(-1)!.slug : null };
    },
  );

  api.post(
    '/projects',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Create a project',
        body: ProjectCreateSchema,
        response: { 201: ProjectSchema },
      },
    },
    async (request, reply) => {
      // Credentials in the URL become a sealed secret of the project, which needs its id first.
      const { url } = splitRepoCredentials(request.body.repoUrl);
      const project = await createProject(db, {
        ...request.body,
        repoUrl: cipher ? url : request.body.repoUrl,
      });
      const repoUrl = await storeRepoUrl(db, cipher, project.id, request.body.repoUrl);
      const stored = repoUrl === project.repoUrl ? project : await updateProject(db, project.id, { repoUrl });
      return reply.code(201).send(toProject(stored, null));
    },
  );

  api.get(
    '/projects/:owner/:name',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: 'A project with its newest build',
        params: ProjectParams,
        response: { 200: ProjectSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return toProject(project, await lastBuildOf(db, project));
    },
  );

  api.patch(
    '/projects/:owner/:name',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Change project settings (the slug cannot change)',
        params: ProjectParams,
        body: ProjectUpdateSchema,
        response: { 200: ProjectSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const patch = request.body;
      const updated = await updateProject(
        db,
        project.id,
        patch.repoUrl === undefined
          ? patch
          : { ...patch, repoUrl: await storeRepoUrl(db, cipher, project.id, patch.repoUrl) },
      );
      return toProject(updated, await lastBuildOf(db, updated));
    },
  );

  api.delete(
    '/projects/:owner/:name',
    {
      config: ADMIN,
      schema: {
        tags,
        summary: 'Delete a project with its builds and logs (409 while a build of it is active)',
        params: ProjectParams,
        response: { 204: { type: 'null', description: 'Deleted' } },
      },
    },
    async (request, reply) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const buildIds = await allBuildIds(db, project.id);
      await deleteProject(db, project.id);
      // The records are gone; logs are only storage now. A failure leaves garbage, not an error.
      for (const id of buildIds) {
        await logs
          .remove(id)
          .catch((error: unknown) =>
            request.log.warn({ err: error, buildId: id }, 'removing the log of a deleted build failed'),
          );
      }
      return reply.code(204).send();
    },
  );

  api.get(
    '/projects/:owner/:name/stats',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: 'Average duration of the last 20 successful builds (for progress bars and ETAs)',
        params: ProjectParams,
        response: { 200: ProjectStatsSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const stats = await projectStats(db, project.id);
      return { averageDurationMs: stats.avgDurationMs, sampleSize: stats.samples };
    },
  );
}

async function lastBuildOf(db: Kysely<Database>, project: Project): Promise<Build | null> {
  if (project.lastNumber === 0) return null;
  return (await getBuildByNumber(db, project.id, project.lastNumber)) ?? null;
}

async function allBuildIds(db: Kysely<Database>, projectId: number): Promise<number[]> {
  const ids: number[] = [];
  let before: number | undefined;
  do {
    const page = await listBuilds(db, { projectId, limit: 500, ...(before !== undefined && { before }) });
    ids.push(...page.builds.map((b) => b.id));
    before = page.nextBefore ?? undefined;
  } while (before !== undefined);
  return ids;
}
