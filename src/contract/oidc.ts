/**
 * Sign-in with OpenID Connect: the settings `slipway server` is started with (made by the CLI
 * from `--oidc-*`, used by the server) and the paths of its routes.
 */
import type { Role } from './roles.js';

/** Who gets which role: groups (from the groups claim) and e-mail addresses, per role. */
export interface RoleRules {
  /** Group names, exact. `*` matches every person the IdP signs in. */
  groups: string[];
  /** Addresses (any case), or `@example.com` for every address at that domain. */
  emails: string[];
}

export type RoleMapping = Record<Role, RoleRules>;

/** How `slipway server` signs people in with an OpenID Provider (`--oidc-*`). */
export interface OidcSettings {
  /** The issuer URL; its `/.well-known/openid-configuration` is read at the first sign-in. */
  issuer: URL;
  clientId: string;
  /** Absent: a public client (PKCE alone, no client authentication). */
  clientSecret?: string;
  /** Where the IdP sends the browser back: `<public URL>/auth/oidc/callback` unless set. */
  redirectUrl: URL;
  /** Scopes asked for; always includes `openid`. */
  scopes: string[];
  /** Claim holding the groups; a dotted path (`realm_access.roles`) reaches into objects. */
  groupsClaim: string;
  roles: RoleMapping;
}

/** The path of the callback route; the default redirect URL is the public URL plus this. */
export const CALLBACK_PATH = '/auth/oidc/callback';
/** Where a browser begins a sign-in (`?return_to=/path` to come back there). */
export const LOGIN_PATH = '/auth/oidc/login';

/** Hosts an `http:` issuer may have: this machine only, where nobody can read the traffic. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}
