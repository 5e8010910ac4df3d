import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getProject, getProjectBySlug, type Project } from '../../store/index.js';
import { HookError, errorBody } from './errors.js';
import { generic } from './forges/generic.js';
import { gitea } from './forges/gitea.js';
import { github } from './forges/github.js';
import { gitlab } from './forges/gitlab.js';
import { header, text, urls } from './forges/payload.js';
import type { ForgeAdapter, Verdict } from './forges/types.js';
import { receiveDelivery, type ReceiveDeps } from './receive.js';
import { repoKey } from './repo-url.js';
import { refreshScripts, type RefreshOptions } from './scripts.js';
import { checkHexHmac, checkPrefixedHmac, checkToken } from './signatures.js';
import { hookSecret, pruneDeliveries, scriptsProjects } from './store.js';

export interface HookRouteDeps extends ReceiveDeps {
  /** Largest delivery in bytes; default 25 MiB (GitHub's own cap, so no real delivery is refused). */
  bodyLimit?: number;
  /** Where `/hooks/scripts` fetches scripts repositories to; default the OS temp dir. */
  scriptsWorkRoot?: string;
  /** How long deliveries are remembered for idempotency; default 30 days. */
  deliveryRetentionMs?: number;
}

export const DEFAULT_HOOK_BODY_LIMIT = 25 * 1024 * 1024;
const DAY = 24 * 60 * 60 * 1000;

const FORGES: readonly ForgeAdapter[] = [github, gitlab, gitea, generic];

/**
 * Registers the webhook endpoints, in a plugin scope of their own:
 * `POST /hooks/github`, `/hooks/gitlab`, `/hooks/gitea` (also Forgejo and Gogs),
 * `/hooks/generic` and `/hooks/scripts`. They take no Slipway token: each delivery is
 * authenticated by its forge's signature with the project's webhook secret. Bodies are kept
 * as raw bytes (signatures cover exactly those), whatever their content type. Answers:
 * 201 `{build}` started, 200 `{build, duplicate}` for a repeated delivery or `pong`,
 * 202 `{ignored}` with the reason, errors `{error:{code,message,details}}`.
 */
export function registerHookRoutes(app: FastifyInstance, deps: HookRouteDeps): void {
  const limit = deps.bodyLimit ?? DEFAULT_HOOK_BODY_LIMIT;
  void app.register((scope, _options, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      const forge = forgeOfUrl(request.url);
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
        deps.metrics?.webhookRejected(forge, 'too_large');
        return reply
          .code(413)
          .send(errorBody('payload_too_large', `the delivery is larger than the ${limit} bytes accepted`));
      }
      if (error.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') {
        deps.metrics?.webhookRejected(forge, 'invalid_payload');
        return reply
          .code(400)
          .send(errorBody('invalid_request', 'the request body does not match its Content-Length'));
      }
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
        // Fastify's own refusals (an empty Content-Type header, a malformed request).
        deps.metrics?.webhookRejected(forge, 'invalid_payload');
        return reply.code(error.statusCode).send(errorBody('invalid_request', error.message));
      }
      request.log.error({ err: error }, 'webhook delivery failed');
      return reply.code(500).send(
        errorBody('internal', 'internal server error; the server log has the details', {
          requestId: request.id,
        }),
      );
    });

    const options = { bodyLimit: limit, config: { auth: 'public' as const } };
    let lastPrune = 0;
    const prune = () => {
      const now = Date.now();
      if (now - lastPrune < 60 * 60 * 1000) return;
      lastPrune = now;
      pruneDeliveries(deps.db, now - (deps.deliveryRetentionMs ?? 30 * DAY)).catch((error: unknown) =>
        scope.log.warn({ err: error }, 'pruning old webhook deliveries failed'),
      );
    };

    for (const forge of FORGES) {
      scope.post(
        `/hooks/${forge.name}`,
        options,
        async (request: FastifyRequest<{ Querystring: { project?: string } }>, reply: FastifyReply) => {
          prune();
          const answer = await receiveDelivery(deps, forge, {
            headers: request.headers,
            raw: Buffer.isBuffer(request.body) ? request.body : undefined,
            query: { project: typeof request.query.project === 'string' ? request.query.project : undefined },
          });
          return reply.code(answer.status).send(answer.body);
        },
      );
    }

    scope.post(
      '/hooks/scripts',
      options,
      async (request: FastifyRequest<{ Querystring: { project?: string } }>, reply: FastifyReply) => {
        const refresh: RefreshOptions =
          deps.scriptsWorkRoot === undefined ? {} : { workRoot: deps.scriptsWorkRoot };
        try {
          const answer = await scriptsHook(deps, refresh, request);
          return reply.code(answer.status).send(answer.body);
        } catch (error) {
          if (!(error instanceof HookError)) throw error;
          if (error.reason !== undefined) deps.metrics?.webhookRejected('scripts', error.reason);
          return reply.code(error.statusCode).send(errorBody(error.code, error.message, error.details));
        }
      },
    );
    done();
  });
}

/**
 * `/hooks/scripts`: a push to a build-scripts repository. Every project following that
 * repository (or the one named by `?project=`) whose webhook secret verifies the delivery
 * is refreshed, unless the push went to another branch than the one it follows. Accepted
 * signatures: `X-Slipway-Signature`/`X-Hub-Signature-256` (`sha256=<hex>`), `X-Gitea-Signature`
 * (bare hex) or `X-Gitlab-Token`, so any forge's push webhook works.
 */
async function scriptsHook(
  deps: HookRouteDeps,
  refresh: RefreshOptions,
  request: FastifyRequest<{ Querystring: { project?: string } }>,
) {
  const raw = Buffer.isBuffer(request.body) ? request.body : undefined;
  if (raw === undefined || raw.length === 0)
    throw new HookError(400, 'invalid_json', 'the request body is empty', 'invalid_payload');
  let payload: unknown;
  try {
    payload = JSON.parse(raw.toString('utf8'));
  } catch (error) {
    throw new HookError(
      400,
      'invalid_json',
      `the request body is not valid JSON: ${(error as Error).message}`,
      'invalid_payload',
    );
  }
  const candidates = await scriptsCandidates(deps, payload, request.query.project);
  const verified: { project: Project; ref: string }[] = [];
  let missing = true;
  for (const candidate of candidates) {
    const secret = (await hookSecret(deps.db, candidate.project.id, deps.sealer)) ?? deps.defaultSecret;
    if (secret === undefined) continue;
    const verdict = anySignature(request.headers, raw, secret);
    if (verdict !== 'missing') missing = false;
    if (verdict === 'ok') verified.push(candidate);
  }
  if (verified.length === 0) {
    throw new HookError(
      401,
      'unauthorized',
      missing
        ? 'the delivery is not signed (expected X-Slipway-Signature, X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token) or the project has no webhook secret'
        : "the delivery's signature does not match the webhook secret of any project using this scripts repository",
      missing ? 'missing_signature' : 'bad_signature',
    );
  }
  const pushed = text(payload, 'ref');
  const refreshed: unknown[] = [];
  const skipped: unknown[] = [];
  const failed: unknown[] = [];
  for (const { project, ref } of verified) {
    if (pushed !== undefined && pushed !== `refs/heads/${ref}` && pushed !== ref) {
      skipped.push({ project: project.slug, why: `the push went to ${pushed}, the project follows ${ref}` });
      continue;
    }
    try {
      const result = await refreshScripts(deps.db, project, refresh);
      refreshed.push({
        project: project.slug,
        commit: result.snapshot.commit,
        image: result.project.defaultImage,
        branchFilter: result.project.branchFilter,
        repoUrl: result.project.repoUrl,
      });
    } catch (error) {
      if (!(error instanceof HookError)) throw error;
      deps.metrics?.webhookRejected('scripts', error.reason ?? 'refresh_failed');
      failed.push({
        project: project.slug,
        code: error.code,
        message: error.message,
        details: error.details,
      });
    }
  }
  if (failed.length > 0) {
    const first = failed[0] as { message: string; code: string };
    const message = `${failed.length} of ${verified.length} project(s) could not be refreshed; first: ${first.message}`;
    return {
      status: first.code === 'scripts_unavailable' ? 502 : 422,
      body: errorBody(first.code as 'invalid_descriptor', message, { refreshed, skipped, failed }),
    };
  }
  return { status: 200, body: { refreshed, skipped } };
}

async function scriptsCandidates(
  deps: HookRouteDeps,
  payload: unknown,
  slug: string | undefined,
): Promise<{ project: Project; ref: string }[]> {
  const all = await scriptsProjects(deps.db);
  if (slug !== undefined) {
    const project = await getProjectBySlug(deps.db, slug);
    const entry = project && all.find((e) => e.projectId === project.id);
    if (!project)
      throw new HookError(404, 'not_found', `project ${slug} not found`, 'unknown_project', {
        project: slug,
      });
    if (!entry)
      throw new HookError(
        400,
        'invalid_request',
        `project ${slug} has no build-scripts repository`,
        'invalid_payload',
      );
    return [{ project, ref: entry.source.ref }];
  }
  const named = urls(payload, [
    ['repository', 'clone_url'],
    ['repository', 'ssh_url'],
    ['repository', 'html_url'],
    ['repository', 'git_http_url'],
    ['repository', 'git_ssh_url'],
    ['project', 'git_http_url'],
    ['project', 'git_ssh_url'],
    ['repository'],
  ]);
  const keys = new Set(named.map(repoKey).filter((k) => k !== undefined));
  if (keys.size === 0) {
    throw new HookError(
      400,
      'invalid_request',
      'the payload names no repository; add ?project=owner/name to the hook URL',
      'invalid_payload',
    );
  }
  const found: { project: Project; ref: string }[] = [];
  for (const entry of all) {
    const key = repoKey(entry.source.repoUrl);
    if (key === undefined || !keys.has(key)) continue;
    const project = await getProject(deps.db, entry.projectId);
    if (project) found.push({ project, ref: entry.source.ref });
  }
  if (found.length === 0) {
    throw new HookError(
      404,
      'not_found',
      `no project uses ${named[0]} as its build-scripts repository`,
      'unknown_project',
      { repository: named },
    );
  }
  return found;
}

function anySignature(headers: FastifyRequest['headers'], raw: Buffer, secret: string): Verdict {
  const prefixed = header(headers, 'x-slipway-signature', 'x-hub-signature-256');
  if (prefixed !== undefined) return checkPrefixedHmac(prefixed, raw, secret);
  const hex = header(headers, 'x-gitea-signature', 'x-forgejo-signature', 'x-gogs-signature');
  if (hex !== undefined) return checkHexHmac(hex, raw, secret);
  return checkToken(header(headers, 'x-gitlab-token'), secret);
}

function forgeOfUrl(url: string): string {
  const name = /^\/hooks\/([a-z]+)/.exec(url)?.[1];
  return name !== undefined && (FORGES.some((f) => f.name === name) || name === 'scripts') ? name : 'unknown';
}
