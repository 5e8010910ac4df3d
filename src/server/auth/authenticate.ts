import type { IncomingMessage, ServerResponse } from 'node:http';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  FastifyTypeProvider,
  RawServerDefault,
} from 'fastify';
import type { Kysely } from 'kysely';
import { verifyToken } from '../../store/index.js';
import type { Database, TokenInfo, TokenRole } from '../../store/index.js';
import { AuthError } from './errors.js';
import { hasRole } from './roles.js';

/**
 * What a route asks of its caller. Every route under `/api/` must declare it (registering
 * one that does not throws), so a forgotten declaration fails the start-up, never open.
 */
export type RouteAuth =
  | 'public'
  | {
      /** The least role that may call the route. */
      role: TokenRole;
      /**
       * Also take the token from `?access_token=`: only for the live log, because a
       * browser's EventSource cannot set headers. Tokens in URLs end up in logs and
       * histories, so no other route accepts them.
       */
      queryToken?: boolean;
    };

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    /** The verified token of the request; null on public routes. */
    caller: TokenInfo | null;
  }
}

/** Name of the query parameter the live log route accepts a token in. */
export const QUERY_TOKEN_PARAM = 'access_token';

/**
 * Installs authentication on `app` (the root instance, so it covers every route): routes
 * declare `config.auth`; an `onRequest` hook verifies the bearer token against the store and
 * checks the role before the body is even read, so a refused request never reaches a handler
 * and writes nothing.
 */
export function registerAuth<P extends FastifyTypeProvider>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, FastifyBaseLogger, P>,
  db: Kysely<Database>,
): void {
  app.decorateRequest('caller', null);
  app.addHook('onRoute', (route) => {
    if (route.url?.startsWith('/api/') && route.config?.auth === undefined) {
      throw new Error(`route ${String(route.method)} ${route.url} declares no auth (config.auth)`);
    }
  });
  app.addHook('onRequest', async (request) => {
    const auth = request.routeOptions.config.auth;
    if (auth === undefined || auth === 'public') return;
    const token = tokenOf(request, auth.queryToken === true);
    const caller = await verifyToken(db, token);
    if (caller === undefined) throw new AuthError('unauthorized', 'the token is unknown or revoked');
    if (!hasRole(caller.role, auth.role)) {
      throw new AuthError(
        'forbidden',
        `this needs the ${auth.role} role or higher; token "${caller.name}" has the ${caller.role} role`,
        auth.role,
      );
    }
    request.caller = caller;
  });
}

/** The caller of a route that declared a role; throws if auth did not run (a wiring bug). */
export function callerOf(request: FastifyRequest): TokenInfo {
  if (request.caller === null) throw new Error(`route ${request.url} has no authenticated caller`);
  return request.caller;
}

/**
 * The token a request carries: `Authorization: Bearer <token>`, or where allowed
 * `?access_token=`. Throws `unauthorized` with what is wrong when there is none.
 */
export function tokenOf(request: FastifyRequest, allowQuery: boolean): string {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(header);
    if (match === null)
      throw new AuthError('unauthorized', 'the Authorization header must be "Bearer <token>"');
    return match[1]!;
  }
  const fromQuery = (request.query as Record<string, unknown> | undefined)?.[QUERY_TOKEN_PARAM];
  if (fromQuery !== undefined) {
    if (!allowQuery) {
      throw new AuthError(
        'unauthorized',
        `${QUERY_TOKEN_PARAM} in the query is accepted only by the live log route; send "Authorization: Bearer <token>"`,
      );
    }
    if (typeof fromQuery !== 'string' || fromQuery === '') {
      throw new AuthError('unauthorized', `${QUERY_TOKEN_PARAM} must be given once, with a token`);
    }
    return fromQuery;
  }
  throw new AuthError('unauthorized', 'this request needs a token: send "Authorization: Bearer <token>"');
}
