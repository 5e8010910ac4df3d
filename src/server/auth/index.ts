/**
 * Bearer tokens (verified against the store's hashed tokens), the web UI's session cookie,
 * and the role each route needs.
 */
export {
  registerAuth,
  callerOf,
  tokenOf,
  sessionCaller,
  requireSameOrigin,
  QUERY_TOKEN_PARAM,
  CSRF_HEADER,
} from './authenticate.js';
export { SESSION_COOKIE, readCookie, sessionCookie, clearedSessionCookie } from './cookie.js';
export type { RouteAuth } from './authenticate.js';
export { AuthError } from './errors.js';
export type { AuthErrorCode } from './errors.js';
export { ROLES, hasRole } from './roles.js';
