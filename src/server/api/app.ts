import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { FastifyRequest, FastifyServerOptions, RouteOptions } from 'fastify';
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
import { HttpError, toErrorReply } from './errors.js';
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

  app.setErrorHandler((error, request, reply) => {
    const answer = toErrorReply(error, request.id);
    if (answer.serverFault) request.log.error({ err: error }, 'request failed');
    if (reply.sent) return;
    return reply
      .code(answer.statusCode)
      .headers(answer.headers ?? {})
      .send(answer.body);
  });

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

/** API routes and the operations endpoints never fall back to the web UI. */
function isServerPath(path: string): boolean {
  return (
    path.startsWith('/api/') ||
    path === '/api' ||
    path.startsWith('/hooks/') ||
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

function loggerOptions(option: boolean | LoggerOptions): boolean | LoggerOptions {
  if (option === false) return false;
  const base = option === true ? {} : option;
  return {
    ...base,
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

/** Replaces the value of `?access_token=` in a URL. */
export function redactQueryToken(url: string): string {
  return url.replace(new RegExp(`([?&]${QUERY_TOKEN_PARAM}=)[^&#]*`, 'g'), '$1[redacted]');
}
