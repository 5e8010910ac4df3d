import type { IncomingMessage } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { getProject, getProjectBySlug, type Project } from '../../store/index.js';
import { answerError } from '../api/errors.js';
import { DEFAULT_HOOK_BODY_LIMIT, DEFAULT_UNNAMED_PARSE_LIMIT, decodeBody, readCapped } from './body.js';
import { redactRepoUrl } from '../secrets/repo-credentials.js';
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
  /**
   * Largest delivery in bytes; default {@link DEFAULT_HOOK_BODY_LIMIT} (5 MiB). Read as a stream
   * and refused (413) as soon as it grows past this: nothing more is ever buffered.
   */
  bodyLimit?: number;
  /** Where `/hooks/scripts` fetches scripts repositories to; default the OS temp dir. */
  scriptsWorkRoot?: string;
  /** How long deliveries are remembered for idempotency; default 30 days. */
  deliveryRetentionMs?: number;
}

export { DEFAULT_HOOK_BODY_LIMIT, DEFAULT_UNNAMED_PARSE_LIMIT } from './body.js';
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
    // Raw bytes (signatures cover exactly those), whatever the content type, read with a hard cap.
    scope.addContentTypeParser('*', (request: FastifyRequest, payload: IncomingMessage) =>
      readCapped(payload, limit, request.headers['content-length']),
    );
    // The API's one error handler answers (also where the hooks run without the API, in
    // tests); here a refused delivery is only counted, by forge and reason.
    scope.setErrorHandler((error: FastifyError, request, reply) => {
      const refusal = asHookRefusal(error, limit);
      if (refusal?.reason !== undefined)
        deps.metrics?.webhookRejected(forgeOfUrl(request.url), refusal.reason);
      return answerError(refusal ?? error, request, reply);
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
        const answer = await scriptsHook(deps, refresh, request);
        return reply.code(answer.status).send(answer.body);
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
  const contentType = request.headers['content-type'];
  let payload: object | undefined;
  let candidates: { project: Project; ref: string }[];
  const slug = request.query.project;
  if (slug !== undefined) {
    candidates = await namedScriptsCandidate(deps, slug);
  } else {
    // As for forge hooks: without ?project= the payload is read before verification, bounded.
    const limit = deps.unnamedParseLimit ?? DEFAULT_UNNAMED_PARSE_LIMIT;
    if (raw.length > limit) {
      throw new HookError(
        413,
        'payload_too_large',
        `a delivery over ${limit} bytes must name its project in the hook URL: add ?project=owner/name`,
        'too_large',
      );
    }
    payload = decodeBody(raw, contentType);
    candidates = await scriptsCandidates(deps, payload);
  }
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
    // One answer for an unknown project and a wrong signature: it tells nobody what exists.
    throw new HookError(
      401,
      'unauthorized',
      'the delivery is not signed (X-Slipway-Signature, X-Hub-Signature-256, X-Gitea-Signature or X-Gitlab-Token) with the webhook secret of a project using this scripts repository (or there is no such project)',
      missing ? 'missing_signature' : 'bad_signature',
    );
  }
  payload ??= decodeBody(raw, contentType);
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
        repoUrl: redactRepoUrl(result.project.repoUrl),
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

/** The project `?project=` names, if it follows a build-scripts repository; else none. */
async function namedScriptsCandidate(
  deps: HookRouteDeps,
  slug: string,
): Promise<{ project: Project; ref: string }[]> {
  const project = await getProjectBySlug(deps.db, slug);
  if (!project) return [];
  const entry = (await scriptsProjects(deps.db)).find((e) => e.projectId === project.id);
  return entry ? [{ project, ref: entry.source.ref }] : [];
}

async function scriptsCandidates(
  deps: HookRouteDeps,
  payload: unknown,
): Promise<{ project: Project; ref: string }[]> {
  const all = await scriptsProjects(deps.db);
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
  return found;
}

function anySignature(headers: FastifyRequest['headers'], raw: Buffer, secret: string): Verdict {
  const prefixed = header(headers, 'x-slipway-signature', 'x-hub-signature-256');
  if (prefixed !== undefined) return checkPrefixedHmac(prefixed, raw, secret);
  const hex = header(headers, 'x-gitea-signature', 'x-forgejo-signature', 'x-gogs-signature');
  if (hex !== undefined) return checkHexHmac(hex, raw, secret);
  return checkToken(header(headers, 'x-gitlab-token'), secret);
}

/**
 * A refused delivery as a `HookError` with the reason it is counted under: the hooks' own,
 * and Fastify's refusals of a body (too large, a wrong Content-Length, an empty Content-Type
 * header) in the hooks' words. Undefined for the server's own failures.
 */
function asHookRefusal(error: FastifyError, limit: number): HookError | undefined {
  if (error instanceof HookError) return error;
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new HookError(
      413,
      'payload_too_large',
      `the delivery is larger than the ${limit} bytes accepted`,
      'too_large',
    );
  }
  if (error.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') {
    return new HookError(
      400,
      'invalid_request',
      'the request body does not match its Content-Length',
      'invalid_payload',
    );
  }
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    return new HookError(error.statusCode, 'invalid_request', error.message, 'invalid_payload');
  }
  return undefined;
}

function forgeOfUrl(url: string): string {
  const name = /^\/hooks\/([a-z]+)/.exec(url)?.[1];
  return name !== undefined && (FORGES.some((f) => f.name === name) || name === 'scripts') ? name : 'unknown';
}
