import type { IncomingMessage, ServerResponse } from 'node:http';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  FastifyTypeProvider,
  RawServerDefault,
} from 'fastify';
import type { Kysely } from 'kysely';
import { USER_SESSION_PREFIX, verifySession, verifyToken, verifyUserSession } from '../../store/index.js';
import type { Database, TokenInfo, TokenRole } from '../../store/index.js';
import { sessionIdOf } from './cookie.js';
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
    const caller = await authenticate(request, db, auth.queryToken === true);
    if (!hasRole(caller.role, auth.role)) {
      throw new AuthError(
        'forbidden',
        `this needs the ${auth.role} role or higher; ${'issuer' in caller ? '' : 'token '}"${caller.name}" has the ${caller.role} role`,
        auth.role,
      );
    }
    request.caller = caller;
  });
}

/**
 * Who sends the request: a bearer token (header, or the query where allowed) wins; without
 * one, the web UI's session cookie. Throws `unauthorized` when neither is valid.
 */
async function authenticate(
  request: FastifyRequest,
  db: Kysely<Database>,
  allowQuery: boolean,
): Promise<TokenInfo> {
  const sessionId = sessionIdOf(request);
  if (sessionId !== undefined && !hasTokenCredential(request)) {
    requireSameOrigin(request);
    const caller = await sessionCaller(db, sessionId);
    if (caller === undefined) {
      throw new AuthError(
        'unauthorized',
        'the session has ended (signed out, expired, or its token was revoked): sign in again',
      );
    }
    return caller;
  }
  const caller = await verifyToken(db, tokenOf(request, allowQuery));
  if (caller === undefined) throw new AuthError('unauthorized', 'the token is unknown or revoked');
  return caller;
}

/**
 * Who a session cookie signs in: a person signed in by OIDC (`slwu_`), or a browser that
 * traded a token (`slws_`); undefined when the session has ended. Also for routes that read
 * the cookie themselves (a status badge that is not public).
 */
export async function sessionCaller(db: Kysely<Database>, sessionId: string): Promise<TokenInfo | undefined> {
  return sessionId.startsWith(USER_SESSION_PREFIX)
    ? await verifyUserSession(db, sessionId)
    : await verifySession(db, sessionId);
}

function hasTokenCredential(request: FastifyRequest): boolean {
  const query = request.query as Record<string, unknown> | undefined;
  return request.headers.authorization !== undefined || query?.[QUERY_TOKEN_PARAM] !== undefined;
}

/** Header the web UI sends with every request; another site's page cannot send it to us. */
export const CSRF_HEADER = 'x-slipway-csrf';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * CSRF protection for requests the browser authenticates by itself (the cookie): a change
 * must carry {@link CSRF_HEADER}, which a cross-site form or script cannot set (a custom
 * header needs a CORS preflight, and this server grants none), and must not be marked
 * cross-site by the browser (`Sec-Fetch-Site`). SameSite=Strict already keeps the cookie off
 * cross-site requests; this holds even where it would not (old browsers, sibling subdomains).
 * Bearer-token requests are not affected: no browser attaches those on its own.
 */
export function requireSameOrigin(request: FastifyRequest): void {
  if (SAFE_METHODS.has(request.method)) return;
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new AuthError('forbidden', `refused a ${site} request signed in by cookie (CSRF protection)`);
  }
  if (request.headers[CSRF_HEADER] === undefined) {
    throw new AuthError(
      'forbidden',
      `a request signed in by cookie must send the ${CSRF_HEADER} header (CSRF protection); scripts should send "Authorization: Bearer <token>"`,
    );
  }
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
