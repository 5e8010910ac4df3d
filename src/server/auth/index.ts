/** Bearer tokens (verified against the store's hashed tokens) and the role each route needs. */
export { registerAuth, callerOf, tokenOf, QUERY_TOKEN_PARAM } from './authenticate.js';
export type { RouteAuth } from './authenticate.js';
export { AuthError } from './errors.js';
export type { AuthErrorCode } from './errors.js';
export { ROLES, hasRole } from './roles.js';
