import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { ConnectionError, FastifyRequest, FastifyServerOptions, RouteOptions } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../../store/index.js';
import { QUERY_TOKEN_PARAM, SESSION_COOKIE, registerAuth } from '../auth/index.js';
import { sessionRoutes } from '../auth/session-routes.js';
import type { LogHub } from '../logs/log-hub.js';
import type { LogStore } from '../logs/types.js';
import type { Metrics } from '../metrics.js';
import type { BuildControl } from '../scheduler/types.js';
import { PUBLIC } from './context.js';
import type { CredentialCipher } from '../secrets/repo-credentials.js';
import type { App, RouteContext } from './context.js';
import { HttpError, answerError, toConnectionErrorReply } from './errors.js';
import { LiveLogs } from './live/build-feed.js';
import type { LiveLogTiming } from './live/build-feed.js';
import { buildRoutes } from './routes/builds.js';
import { healthRoutes } from './routes/health.js';
import { logRoutes } from './routes/logs.js';
import { projectRoutes } from './routes/projects.js';
import { queueRoutes } from './routes/queue.js';
import { tokenRoutes } from './routes/tokens.js';
import { ApiErrorSchema } from './schemas.js';
import { validatorCompiler } from './validation.js';

/** Prefix of the REST API. */
export const API_PREFIX = '/api/v1';

/**
 * Longest path segment the router matches. Far above every name a route parameter can hold
 * (an owner or project name of `MAX_SLUG_PART_LENGTH`, a step or stage name of 63, a secret
 * name of 128), so anything that exists is reachable; longer segments are answered 404 at once.
 */
export const MAX_PARAM_LENGTH = 512;

/** Default request body limit: far above any real request, far below a memory problem. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Pino options for the request log (Fastify's `logger` option without the boolean). */
export type LoggerOptions = Exclude<FastifyServerOptions['logger'], boolean | undefined>;

export interface AppDeps {
  db: Kysely<Database>;
  control: BuildControl;
  logs: LogStore;
  hub: LogHub;
  metrics: Metrics;
  /** Active builds allowed across all replicas: the scheduler's limit, shown by the queue route. */
  globalLimit: number;
  /** Seals credentials given in repository URLs (the server's secrets cipher). */
  cipher?: CredentialCipher;
  /** Request logging: false (default), true, or pino options. */
  logger?: boolean | LoggerOptions;
  /** Largest request body in bytes; default 1 MiB. */
  bodyLimit?: number;
  /** Directory of the built web UI, served at `/` with a single-page-app fallback. */
  webRoot?: string;
  /** Polling and heartbeat intervals of the live log (tests shorten them). */
  liveTiming?: LiveLogTiming;
  /** More `/api/v1` routes (secrets, artifacts, hook settings), registered in the API scope. */
  apiPlugins?: Array<(api: App) => void>;
  /** More routes outside the API (forge webhooks under `/hooks/`). */
  rootPlugins?: Array<(root: App) => void>;
}

/**
 * Builds the HTTP server of `slipway server` (not listening yet: call `listen` or `inject`).
 * Routes declare TypeBox schemas for their input and output, which validate requests, shape
 * responses and make the OpenAPI document at `/api/v1/openapi.json`. Every error answer is
 * `{error:{code,message,details}}` (see `errors.ts`); every API route needs a token of at
 * least the role it declares (see `../auth`).
 */
export function buildApp(deps: AppDeps): App {
  const app = Fastify({
    logger: loggerOptions(deps.logger ?? false),
    bodyLimit: deps.bodyLimit ?? DEFAULT_BODY_LIMIT,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // The router's own refusals (bad percent-encoding, an over-long segment) get the same answers.
    frameworkErrors: (error, request, reply) => {
      void answerError(error, request, reply);
    },
    clientErrorHandler: answerConnectionError,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  // JSON only: a text/plain body would otherwise reach the schemas as a string.
  app.removeContentTypeParser('text/plain');

  const live = new LiveLogs({
    db: deps.db,
    logs: deps.logs,
    hub: deps.hub,
    ...(deps.liveTiming !== undefined && { timing: deps.liveTiming }),
    onError: (error, buildId) => app.log.error({ err: error, buildId }, 'live log feed failed'),
  });
  const ctx: RouteContext = { ...deps, live };

  registerAuth(app, deps.db);
  app.addHook('onRoute', documentRoute);
  // Open event streams would keep `close()` waiting forever; their clients reconnect elsewhere.
  app.addHook('preClose', (done) => {
    live.closeAll();
    done();
  });

  app.setErrorHandler(answerError);

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (
      deps.webRoot !== undefined &&
      (request.method === 'GET' || request.method === 'HEAD') &&
      !isServerPath(path)
    ) {
      // Client-side routes of the web UI (/projects/acme/web/builds/4) all load the app.
      return reply.sendFile('index.html');
    }
    throw new HttpError(404, 'not_found', `no route ${request.method} ${path}`);
  });

  void app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Slipway API',
        version: '1',
        description:
          'REST API of the Slipway build server. Every route but health, metrics and this document needs ' +
          "`Authorization: Bearer <token>` (or the web UI's session cookie); roles are viewer < member < admin. " +
          'Errors are `{error:{code,message,details}}`.',
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'A Slipway API token (slw_…)' },
          sessionCookie: {
            type: 'apiKey',
            in: 'cookie',
            name: SESSION_COOKIE,
            description: "The web UI's session (POST /session); changes also need the header X-Slipway-CSRF",
          },
        },
      },
    },
  });

  // Routes go in plugins registered after the swagger plugin, so that it sees them all.
  void app.register((root, _options, done) => {
    healthRoutes(root, ctx);
    for (const plugin of deps.rootPlugins ?? []) plugin(root);
    done();
  });
  void app.register(
    (api, _options, done) => {
      api.get('/openapi.json', { config: PUBLIC, schema: { hide: true } }, () => app.swagger());
      projectRoutes(api, ctx);
      buildRoutes(api, ctx);
      logRoutes(api, ctx);
      queueRoutes(api, ctx);
      tokenRoutes(api, ctx);
      sessionRoutes(api, ctx);
      for (const plugin of deps.apiPlugins ?? []) plugin(api);
      done();
    },
    { prefix: API_PREFIX },
  );

  if (deps.webRoot !== undefined) {
    void app.register(fastifyStatic, { root: deps.webRoot, wildcard: true });
  }
  return app;
}

/** Fastify's default for malformed HTTP, in the API's error shape. */
function answerConnectionError(error: ConnectionError, socket: Socket): void {
  // A reset connection is gone: there is nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const answer = toConnectionErrorReply(error.code);
  const body = JSON.stringify(answer.body);
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${answer.statusCode} ${STATUS_CODES[answer.statusCode] ?? ''}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/** API routes and the operations endpoints never fall back to the web UI. */
function isServerPath(path: string): boolean {
  return (
    path.startsWith('/api/') ||
    path === '/api' ||
    path.startsWith('/hooks/') ||
    path.startsWith('/badges/') ||
    ['/healthz', '/readyz', '/metrics'].includes(path)
  );
}

/**
 * Adds what every route's OpenAPI entry should say and does not repeat in each route: the
 * bearer requirement with the least role, and the error answers.
 */
function documentRoute(route: RouteOptions): void {
  const schema = route.schema as Record<string, unknown> | undefined;
  if (schema === undefined || schema.hide === true) return;
  const auth = route.config?.auth;
  if (auth !== undefined && auth !== 'public') {
    schema.security = [{ bearerAuth: [] }, { sessionCookie: [] }];
    const note = `Needs a token with role ${auth.role} or higher.`;
    // GET routes pass by twice (their HEAD twin shares the schema object).
    if (typeof schema.description !== 'string') schema.description = note;
    else if (!schema.description.endsWith(note)) schema.description = `${schema.description}\n\n${note}`;
  }
  const response = (schema.response ?? {}) as Record<string, unknown>;
  schema.response = { ...response, '4xx': ApiErrorSchema, '5xx': ApiErrorSchema };
}

/**
 * Headers that carry credentials: the bearer token, the session cookie (and the CSRF token
 * bound to it), and the webhook signatures and tokens of every forge. The request serializer
 * below logs no header at all; these paths keep them out of any entry that logs headers anyway.
 */
const SECRET_HEADERS = [
  'authorization',
  'cookie',
  'set-cookie',
  'x-slipway-csrf',
  'x-slipway-signature',
  'x-hub-signature',
  'x-hub-signature-256',
  'x-gitlab-token',
  'x-gitea-signature',
  'x-forgejo-signature',
  'x-gogs-signature',
];
const REDACT_PATHS = ['req.headers', 'res.headers', 'headers', 'request.headers', 'err.headers'].flatMap(
  (at) => SECRET_HEADERS.map((name) => `${at}["${name}"]`),
);

function loggerOptions(option: boolean | LoggerOptions): boolean | LoggerOptions {
  if (option === false) return false;
  const base = option === true ? {} : option;
  const extra = base.redact === undefined ? [] : Array.isArray(base.redact) ? base.redact : base.redact.paths;
  return {
    ...base,
    redact: { paths: [...REDACT_PATHS, ...extra], censor: REDACTED },
    serializers: {
      ...base.serializers,
      // The live log route takes a token in the query; it must not end up in the log.
      req: (request: FastifyRequest) => ({
        method: request.method,
        url: redactQueryToken(request.url),
        host: request.host,
        remoteAddress: request.ip,
      }),
    },
  };
}

const REDACTED = '[redacted]';

/**
 * Replaces the value of every query parameter that names a credential, judged by the name as
 * the query parser reads it: percent-decoded (`access%5Ftoken` is `access_token` to the
 * server), `+` as a space, any case. Names that do not decode are redacted too, as are any
 * with `token`, `secret`, `password` or `signature` in them: a value logged by mistake cannot
 * be taken back, a redacted harmless one costs nothing.
 */
export function redactQueryToken(url: string): string {
  const start = url.indexOf('?');
  if (start < 0) return url;
  const hash = url.indexOf('#', start);
  const end = hash < 0 ? url.length : hash;
  const pairs = url
    .slice(start + 1, end)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const rawName = equals < 0 ? pair : pair.slice(0, equals);
      return isSecretParam(rawName) ? `${rawName}=${REDACTED}` : pair;
    });
  return `${url.slice(0, start + 1)}${pairs.join('&')}${url.slice(end)}`;
}

function isSecretParam(rawName: string): boolean {
  let name = rawName.replaceAll('+', ' ');
  // Decoded until stable (a few rounds at most), so double encoding hides nothing either.
  for (let round = 0; round < 3 && name.includes('%'); round++) {
    try {
      name = decodeURIComponent(name);
    } catch {
      return true;
    }
  }
  const plain = name.toLowerCase().replace(/[^a-z]/g, '');
  return (
    plain === QUERY_TOKEN_PARAM.replace('_', '') || /token|secret|password|signature|session/.test(plain)
  );
}
