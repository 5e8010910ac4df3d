/**
 * `slipway server`'s sign-in with an OpenID Provider: the `--oidc-*` options (each also an
 * environment variable) and the settings made from them. The client secret is never an
 * option: command lines are readable by every user of the machine (`/proc/<pid>/cmdline`).
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { CALLBACK_PATH, isLoopbackHost } from '../contract/oidc.js';
import type { OidcSettings, RoleMapping } from '../contract/oidc.js';
import { UsageError } from './errors.js';

export interface OidcCliOptions {
  oidcIssuer?: string;
  oidcClientId?: string;
  oidcClientSecretFile?: string;
  oidcRedirectUrl?: string;
  oidcScopes?: string;
  oidcGroupsClaim?: string;
  oidcAdminGroups?: string;
  oidcMemberGroups?: string;
  oidcViewerGroups?: string;
  oidcAdminEmails?: string;
  oidcMemberEmails?: string;
  oidcViewerEmails?: string;
}

/** Environment variable holding the client secret itself. */
export const CLIENT_SECRET_ENV = 'SLIPWAY_OIDC_CLIENT_SECRET';

const DEFAULT_SCOPES = ['openid', 'profile', 'email'];

/** Adds the `--oidc-*` options to `slipway server`. */
export function withOidcOptions(command: Command): Command {
  const env = (name: string) => `SLIPWAY_OIDC_${name}`;
  const option = (flags: string, text: string, envName: string) =>
    new Option(flags, `${text} (env ${env(envName)})`).env(env(envName));
  const options = [
    option('--oidc-issuer <url>', 'sign-in with OpenID Connect: the issuer URL (https)', 'ISSUER'),
    option('--oidc-client-id <id>', 'oidc: the client id registered at the IdP', 'CLIENT_ID'),
    option(
      '--oidc-client-secret-file <file>',
      `oidc: file holding the client secret (or env ${CLIENT_SECRET_ENV}; none: a public client, PKCE only)`,
      'CLIENT_SECRET_FILE',
    ),
    option(
      '--oidc-redirect-url <url>',
      `oidc: where the IdP sends people back (default: --public-url + ${CALLBACK_PATH})`,
      'REDIRECT_URL',
    ),
    option(
      '--oidc-scopes <list>',
      `oidc: scopes to ask for (default: ${DEFAULT_SCOPES.join(',')})`,
      'SCOPES',
    ),
    option(
      '--oidc-groups-claim <name>',
      'oidc: claim with the groups (default groups; a.b reaches into objects)',
      'GROUPS_CLAIM',
    ),
    option(
      '--oidc-admin-groups <list>',
      'oidc: groups whose members are admins (* = everyone)',
      'ADMIN_GROUPS',
    ),
    option(
      '--oidc-member-groups <list>',
      'oidc: groups whose members are members (* = everyone)',
      'MEMBER_GROUPS',
    ),
    option(
      '--oidc-viewer-groups <list>',
      'oidc: groups whose members are viewers (* = everyone)',
      'VIEWER_GROUPS',
    ),
    option('--oidc-admin-emails <list>', 'oidc: e-mail addresses (or @domain) of admins', 'ADMIN_EMAILS'),
    option('--oidc-member-emails <list>', 'oidc: e-mail addresses (or @domain) of members', 'MEMBER_EMAILS'),
    option('--oidc-viewer-emails <list>', 'oidc: e-mail addresses (or @domain) of viewers', 'VIEWER_EMAILS'),
  ];
  for (const o of options) command.addOption(o);
  return command;
}

/**
 * The settings, or undefined when no `--oidc-issuer` is given. Throws a UsageError naming
 * the option for anything that would only fail at the first sign-in.
 */
export function oidcSettingsFrom(
  options: OidcCliOptions,
  publicUrl: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): OidcSettings | undefined {
  if (options.oidcIssuer === undefined || options.oidcIssuer.trim() === '') {
    const stray = Object.entries(options).find(
      ([key, value]) => key.startsWith('oidc') && value !== undefined && value !== '',
    );
    if (stray !== undefined) {
      throw new UsageError(`--${kebab(stray[0])} needs --oidc-issuer (sign-in with OpenID Connect)`);
    }
    return undefined;
  }
  const issuer = url('--oidc-issuer', options.oidcIssuer.trim());
  if (issuer.protocol !== 'https:' && !(issuer.protocol === 'http:' && isLoopbackHost(issuer.hostname))) {
    throw new UsageError(
      `--oidc-issuer "${issuer.href}": expected an https:// URL (http only for this machine)`,
    );
  }
  const clientId = options.oidcClientId?.trim() ?? '';
  if (clientId === '') throw new UsageError('--oidc-issuer needs --oidc-client-id');

  let clientSecret = env[CLIENT_SECRET_ENV]?.trim();
  if (options.oidcClientSecretFile !== undefined) {
    if (clientSecret !== undefined && clientSecret !== '') {
      throw new UsageError(`give the client secret once: ${CLIENT_SECRET_ENV} or --oidc-client-secret-file`);
    }
    try {
      clientSecret = readFileSync(options.oidcClientSecretFile, 'utf8').trim();
    } catch (error) {
      throw new UsageError(
        `--oidc-client-secret-file "${options.oidcClientSecretFile}": ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`,
      );
    }
    if (clientSecret === '')
      throw new UsageError(`--oidc-client-secret-file "${options.oidcClientSecretFile}" is empty`);
  }

  let redirectUrl: URL;
  if (options.oidcRedirectUrl !== undefined) {
    redirectUrl = url('--oidc-redirect-url', options.oidcRedirectUrl.trim());
  } else if (publicUrl !== undefined) {
    const base = url('--public-url', publicUrl.trim());
    redirectUrl = new URL(base.pathname.replace(/\/+$/, '') + CALLBACK_PATH, base);
  } else {
    throw new UsageError(
      '--oidc-issuer needs --public-url (or --oidc-redirect-url) to tell the IdP where to send people back',
    );
  }
  if (!redirectUrl.pathname.endsWith(CALLBACK_PATH)) {
    throw new UsageError(
      `--oidc-redirect-url "${redirectUrl.href}": must end in ${CALLBACK_PATH}, where Slipway answers`,
    );
  }

  const scopes = list(options.oidcScopes) ?? DEFAULT_SCOPES;
  if (!scopes.includes('openid')) scopes.unshift('openid');
  const roles: RoleMapping = {
    admin: { groups: list(options.oidcAdminGroups) ?? [], emails: emails('admin', options.oidcAdminEmails) },
    member: {
      groups: list(options.oidcMemberGroups) ?? [],
      emails: emails('member', options.oidcMemberEmails),
    },
    viewer: {
      groups: list(options.oidcViewerGroups) ?? [],
      emails: emails('viewer', options.oidcViewerEmails),
    },
  };
  if (Object.values(roles).every((r) => r.groups.length === 0 && r.emails.length === 0)) {
    throw new UsageError(
      '--oidc-issuer needs a role mapping: --oidc-{admin,member,viewer}-groups and/or -emails (nobody could sign in)',
    );
  }
  const groupsClaim = options.oidcGroupsClaim?.trim() || 'groups';
  return {
    issuer,
    clientId,
    ...(clientSecret !== undefined && clientSecret !== '' ? { clientSecret } : {}),
    redirectUrl,
    scopes,
    groupsClaim,
    roles,
  };
}

function url(option: string, value: string): URL {
  try {
    const parsed = new URL(value);
    if (parsed.protocol === 'https:' || parsed.protocol === 'http:') return parsed;
  } catch {
    // Answered below.
  }
  throw new UsageError(`${option} "${value}": expected an http(s):// URL`);
}

/** A comma- or blank-separated list; undefined when not given. */
function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value.split(/[\s,]+/).filter((v) => v !== '');
}

function emails(role: string, value: string | undefined): string[] {
  const entries = list(value) ?? [];
  for (const entry of entries) {
    if (!/^[^@\s]*@[^@\s]+\.[^@\s]+$/.test(entry)) {
      throw new UsageError(`--oidc-${role}-emails: "${entry}" is neither an e-mail address nor @domain`);
    }
  }
  return entries;
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
