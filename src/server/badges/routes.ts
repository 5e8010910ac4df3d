import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { getProjectBySlug, verifyToken } from '../../store/index.js';
import type { Database, TokenInfo } from '../../store/index.js';
import { AuthError, hasRole, sessionCaller, tokenOf } from '../auth/index.js';
import { sessionIdOf } from '../auth/cookie.js';
import { MEMBER, PUBLIC, VIEWER, projectOr404, type App } from '../api/context.js';
import { notFound } from '../api/errors.js';
import { ProjectParams } from '../api/schemas.js';
import { branchStatus, isBadgePublic, setBadgePublic } from '../../store/badges.js';
import { badgeState, renderBadge } from './svg.js';

export interface BadgeRouteDeps {
  db: Kysely<Database>;
}

/** The branch a badge shows when the URL names none. */
export const DEFAULT_BADGE_BRANCH = 'main';

/** Where a project's badge is served, for READMEs (`/badges/acme/web.svg`). */
export function badgePath(slug: string): string {
  return `/badges/${slug}.svg`;
}

const BadgeSettingsSchema = Type.Object(
  {
    public: Type.Boolean({ description: 'The badge answers without a token' }),
    path: Type.String({ description: 'Where the badge is served (`/badges/{owner}/{name}.svg`)' }),
  },
  { title: 'BadgeSettings' },
);
const BadgeSettingsUpdateSchema = Type.Object(
  { public: Type.Boolean({ description: 'Serve the badge without a token' }) },
  { additionalProperties: false, title: 'BadgeSettingsUpdate' },
);

/**
 * `GET|PUT /projects/{owner}/{name}/badge` inside the `/api/v1` prefix: whether the project's
 * badge is public. Reading needs a viewer, changing a member (it is how a team shows its
 * project's state in its own README, like triggering a build is theirs to do).
 */
export function badgeSettingsRoutes(api: App, deps: BadgeRouteDeps): void {
  const { db } = deps;
  api.get(
    '/projects/:owner/:name/badge',
    {
      config: VIEWER,
      schema: {
        tags: ['projects'],
        summary: "Whether a project's status badge is public",
        params: ProjectParams,
        response: { 200: BadgeSettingsSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      return { public: await isBadgePublic(db, project.id), path: badgePath(project.slug) };
    },
  );
  api.put(
    '/projects/:owner/:name/badge',
    {
      config: MEMBER,
      schema: {
        tags: ['projects'],
        summary: "Make a project's status badge public, or not",
        params: ProjectParams,
        body: BadgeSettingsUpdateSchema,
        response: { 200: BadgeSettingsSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      await setBadgePublic(db, project.id, request.body.public);
      return { public: request.body.public, path: badgePath(project.slug) };
    },
  );
}

const BadgeQuery = Type.Object({
  branch: Type.Optional(
    Type.String({ minLength: 1, maxLength: 255, description: `Default ${DEFAULT_BADGE_BRANCH}` }),
  ),
});

/**
 * `GET /badges/{owner}/{name}.svg[?branch=B]` outside the API: the state of a branch's newest
 * finished build as an SVG badge (see `branchStatus` for which build). A public badge needs no
 * token; a private one needs any valid token or session, like every read. Without one, a
 * private project and one that does not exist get the same 404, so the badge URL tells nobody
 * what exists; a token that is not valid is a 401, whatever the project.
 *
 * Caching: `no-cache` with an ETag of the SVG itself (so it changes with the state), and 304
 * to an `If-None-Match` that names it: a README viewer revalidates at every view and costs one
 * small query when nothing changed.
 */
export function badgeRoutes(root: App, deps: BadgeRouteDeps): void {
  const { db } = deps;
  root.get(
    '/badges/:owner/:file',
    {
      config: PUBLIC,
      schema: {
        tags: ['projects'],
        summary: "A branch's build status as an SVG badge",
        description:
          'No token needed when the project made its badge public (PUT /api/v1/projects/{owner}/{name}/badge); ' +
          'otherwise it needs a token like other reads, and answers 404 without one.',
        params: Type.Object({
          owner: Type.String(),
          file: Type.String({ description: '`{name}.svg`' }),
        }),
        querystring: BadgeQuery,
      },
    },
    async (request, reply) => {
      const { owner, file } = request.params;
      const slug = `${owner}/${file.endsWith('.svg') ? file.slice(0, -'.svg'.length) : file}`;
      const what = `badge ${owner}/${file}`;
      if (!file.endsWith('.svg')) throw notFound(what);
      const project = await getProjectBySlug(db, slug);
      const isPublic = project !== undefined && (await isBadgePublic(db, project.id));
      // The caller is asked about even for an unknown project: both answers must be the same.
      if (!isPublic && ((await callerOf(request, db)) === undefined || project === undefined))
        throw notFound(what);
      if (project === undefined) throw notFound(what);
      const branch = request.query.branch ?? DEFAULT_BADGE_BRANCH;
      const state = badgeState(await branchStatus(db, project.id, branch));
      const svg = renderBadge({ label: 'build', state, title: `${project.slug} ${branch}: ${state}` });
      return sendCached(request, reply, svg, isPublic);
    },
  );
}

function sendCached(request: FastifyRequest, reply: FastifyReply, svg: string, isPublic: boolean) {
  const etag = `"${createHash('sha256').update(svg).digest('base64url').slice(0, 27)}"`;
  void reply
    .header('etag', etag)
    // Revalidate at every use; a private badge's answer depends on who asks, so only the browser keeps it.
    .header('cache-control', isPublic ? 'public, no-cache' : 'private, no-cache')
    .header('vary', 'Authorization, Cookie');
  if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send();
  return (
    reply
      .header('content-type', 'image/svg+xml; charset=utf-8')
      .header('x-content-type-options', 'nosniff')
      // Opened as a page, the SVG may do nothing: no script, no fetch, only its own inline styles.
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(svg)
  );
}

/** Whether an `If-None-Match` list names `etag` (weakly compared, as RFC 9110 says for it) or is `*`. */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

/**
 * Who asks for a private badge: a bearer token (a 401 when it is not valid), else the web UI's
 * session (one that ended counts as nobody: an image cannot sign in again), else nobody.
 */
async function callerOf(request: FastifyRequest, db: Kysely<Database>): Promise<TokenInfo | undefined> {
  if (request.headers.authorization !== undefined) {
    const caller = await verifyToken(db, tokenOf(request, false));
    if (caller === undefined) throw new AuthError('unauthorized', 'the token is unknown or revoked');
    return hasRole(caller.role, 'viewer') ? caller : undefined;
  }
  const session = sessionIdOf(request);
  if (session === undefined) return undefined;
  const caller = await sessionCaller(db, session);
  return caller !== undefined && hasRole(caller.role, 'viewer') ? caller : undefined;
}
