import type { RoleMapping } from '../../../contract/oidc.js';
import type { TokenRole } from '../../../store/index.js';

export { CALLBACK_PATH, LOGIN_PATH, isLoopbackHost } from '../../../contract/oidc.js';
export type { OidcSettings, RoleMapping, RoleRules } from '../../../contract/oidc.js';

/** The person as the role mapping sees them (from the id_token, topped up by userinfo). */
export interface Claims {
  groups: string[];
  /** Only a verified address (an IdP that says `email_verified: false` gives none). */
  email: string | null;
}

const ORDER: TokenRole[] = ['admin', 'member', 'viewer'];

/**
 * The highest role any rule grants, or undefined when none does: such a person is refused
 * (a mapping that lets anyone in must say so with `*`).
 */
export function roleFor(mapping: RoleMapping, claims: Claims): TokenRole | undefined {
  const email = claims.email?.toLowerCase() ?? null;
  return ORDER.find((role) => {
    const rules = mapping[role];
    if (rules.groups.includes('*') || rules.groups.some((g) => claims.groups.includes(g))) return true;
    if (email === null) return false;
    return rules.emails.some((entry) => {
      const e = entry.toLowerCase();
      return e.startsWith('@') ? email.endsWith(e) : e === email;
    });
  });
}

/**
 * The groups in `claims[name]`: an array of strings, or one string. A dotted name reaches
 * into objects (Keycloak's `realm_access.roles`) when no claim has the whole name.
 */
export function groupsOf(claims: Record<string, unknown>, name: string): string[] {
  let value: unknown = claims[name];
  if (value === undefined && name.includes('.')) {
    value = name
      .split('.')
      .reduce<unknown>(
        (at, key) =>
          at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[key] : undefined,
        claims,
      );
  }
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((g): g is string => typeof g === 'string');
  return [];
}

/**
 * What builds, cancels and approvals record for a person: `Name <e-mail>` as in a git author,
 * or whichever the IdP gave (then the preferred username, then the subject).
 */
export function displayName(claims: Record<string, unknown>, email: string | null): string {
  const text = (key: string) => {
    const v = claims[key];
    return typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, 200) : undefined;
  };
  const name = text('name') ?? text('preferred_username');
  if (name !== undefined && email !== null && name !== email) return `${name} <${email}>`;
  return name ?? email ?? String(claims.sub);
}

/** The e-mail claim when present and not marked unverified. */
export function verifiedEmail(claims: Record<string, unknown>): string | null {
  const email = claims.email;
  if (typeof email !== 'string' || email.trim() === '' || claims.email_verified === false) return null;
  return email.trim();
}

/**
 * A path of this server to return to after sign-in: only a local absolute path, so the
 * sign-in cannot be turned into a redirect to another site (`//evil`, `/\evil`, `https:`).
 */
export function safeReturnPath(value: unknown): string {
  if (typeof value !== 'string' || !value.startsWith('/') || value.length > 2000) return '/';
  if (value.startsWith('//') || value.startsWith('/\\') || [...value].some((c) => c < ' ')) return '/';
  return value;
}
