/** Sign-in with an OpenID Provider (authorization code + PKCE) and the role mapping. */
export { OidcProvider } from './client.js';
export { oidcRoutes, authMethodRoutes, LOGIN_COOKIE } from './routes.js';
export type { OidcRouteDeps } from './routes.js';
export {
  CALLBACK_PATH,
  LOGIN_PATH,
  roleFor,
  groupsOf,
  displayName,
  verifiedEmail,
  safeReturnPath,
  isLoopbackHost,
} from './settings.js';
export type { OidcSettings, RoleMapping, RoleRules, Claims } from './settings.js';
