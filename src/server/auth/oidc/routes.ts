import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import type { Kysely } from 'kysely';
import type * as client from 'openid-client';
import {
  USER_SESSION_PREFIX,
  createUserSession,
  deleteSession,
  deleteUserSession,
  saveOidcLogin,
  takeOidcLogin,
} from '../../../store/index.js';
import type { Database } from '../../../store/index.js';
import { PUBLIC } from '../../api/context.js';
import type { App } from '../../api/context.js';
import { cameOverHttps, readCookie, sessionCookie, sessionIdOf } from '../cookie.js';
import { importedOpenidClient, openidClient, type OidcProvider } from './client.js';
import { errorPage } from './page.js';
import {
  CALLBACK_PATH,
  LOGIN_PATH,
  displayName,
  groupsOf,
  roleFor,
  safeReturnPath,
  verifiedEmail,
} from './settings.js';

/** Cookie that ties a sign-in to the browser that began it (login CSRF), for 10 minutes. */
export const LOGIN_COOKIE = 'slipway_oidc';

export interface OidcRouteDeps {
  db: Kysely<Database>;
  provider: OidcProvider;
  /** Where failures the person should not see in full go (the IdP's own error texts). */
  log?: (message: string) => void;
}

/**
 * Sign-in with an OpenID Provider, authorization code flow with PKCE:
 * `GET /auth/oidc/login` keeps state, nonce and code verifier in the store under a random
 * key the browser holds in an HttpOnly cookie, and sends the browser to the IdP;
 * `GET /auth/oidc/callback` takes that record (once: a replayed callback finds nothing),
 * exchanges the code, lets openid-client check the id_token (signature, iss, aud, exp,
 * nonce), maps groups and e-mail to a role and opens a session. Every failure is a page
 * that says what went wrong, with no session and nothing stored.
 */
export function oidcRoutes(root: App, deps: OidcRouteDeps): void {
  const { db, provider } = deps;
  const settings = provider.settings;

  root.get(
    LOGIN_PATH,
    { schema: { hide: true, querystring: Type.Object({ return_to: Type.Optional(Type.String()) }) } },
    async (request, reply) => {
      const returnTo = safeReturnPath(request.query.return_to);
      let config: client.Configuration;
      try {
        config = await provider.config();
      } catch (error) {
        deps.log?.(`oidc: discovery of ${settings.issuer.href} failed: ${describe(error)}`);
        return fail(
          reply,
          502,
          'Cannot reach the identity provider',
          `Slipway could not read the identity provider at ${settings.issuer.origin}: ${describe(error)}. Try again later, or ask an administrator.`,
        );
      }
      const oidc = await openidClient();
      const key = randomBytes(32).toString('base64url');
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const codeVerifier = oidc.randomPKCECodeVerifier();
      await saveOidcLogin(db, key, { state, nonce, codeVerifier, returnTo });
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: settings.redirectUrl.href,
        scope: settings.scopes.join(' '),
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      return reply
        .header('set-cookie', loginCookie(key, cameOverHttps(request)))
        .header('cache-control', 'no-store')
        .redirect(url.href, 302);
    },
  );

  root.get(CALLBACK_PATH, { schema: { hide: true } }, async (request, reply) => {
    const https = cameOverHttps(request);
    // The sign-in record is single-use: dropped now, whatever follows.
    void reply.header('set-cookie', clearedLoginCookie(https)).header('cache-control', 'no-store');
    const query = new URL(request.url, 'http://x').searchParams;
    const key = readCookie(request.headers.cookie, LOGIN_COOKIE);
    const login = key === undefined || key === '' ? undefined : await takeOidcLogin(db, key);
    if (login === undefined) {
      return fail(
        reply,
        400,
        'Sign-in not recognised',
        'This sign-in was not started in this browser, took longer than 10 minutes, or was finished already. Start again.',
      );
    }
    const error = query.get('error');
    if (error !== null) {
      deps.log?.(`oidc: the identity provider answered ${error}: ${query.get('error_description') ?? ''}`);
      const code = /^[\w.-]{1,64}$/.test(error) ? error : 'an error';
      return fail(
        reply,
        401,
        'Sign-in refused',
        code === 'access_denied'
          ? 'The identity provider did not sign you in (access_denied: cancelled or not allowed).'
          : `The identity provider answered with ${code} instead of signing you in.`,
      );
    }
    if (query.get('state') !== login.state) {
      return fail(
        reply,
        400,
        'Sign-in not recognised',
        'The answer from the identity provider does not belong to the sign-in this browser started (state mismatch). Start again.',
      );
    }
    let claims: Record<string, unknown>;
    try {
      const config = await provider.config();
      const oidc = await openidClient();
      const current = new URL(settings.redirectUrl.href);
      current.search = query.toString();
      const tokens = await oidc.authorizationCodeGrant(config, current, {
        pkceCodeVerifier: login.codeVerifier,
        expectedState: login.state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
      const idClaims = tokens.claims();
      if (idClaims === undefined) throw new oidc.ClientError('the answer has no id_token');
      claims = { ...idClaims };
      // Some IdPs (Okta, oidc-provider) put groups and e-mail only in userinfo.
      const missing = claims[settings.groupsClaim] === undefined || claims.email === undefined;
      if (missing && config.serverMetadata().userinfo_endpoint !== undefined) {
        const info = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
        claims = { ...info, ...claims, ...pick(info, [settings.groupsClaim, 'email', 'email_verified']) };
      }
    } catch (error) {
      deps.log?.(`oidc: sign-in failed: ${describe(error)}`);
      return fail(reply, 401, 'Sign-in failed', reasonOf(error));
    }

    const email = verifiedEmail(claims);
    const groups = groupsOf(claims, settings.groupsClaim);
    const name = displayName(claims, email);
    const role = roleFor(settings.roles, { groups, email });
    if (role === undefined) {
      return fail(
        reply,
        403,
        'No access to Slipway',
        `You signed in as ${name}, but no Slipway role is granted to ${email === null ? 'you' : email}` +
          `${groups.length > 0 ? ` or to your groups (${groups.slice(0, 20).join(', ')})` : ' (the identity provider sent no groups)'}. ` +
          'Ask a Slipway administrator to add you.',
      );
    }
    const previous = sessionIdOf(request);
    if (previous !== undefined) {
      if (previous.startsWith(USER_SESSION_PREFIX)) await deleteUserSession(db, previous);
      else await deleteSession(db, previous);
    }
    const session = await createUserSession(
      db,
      { issuer: settings.issuer.href, subject: String(claims.sub), name, email },
      role,
    );
    return reply
      .header('set-cookie', [clearedLoginCookie(https), sessionCookie(session.id, https)])
      .redirect(login.returnTo, 302);
  });
}

/** `GET /api/v1/auth/methods`: how this server signs people in, for the web UI's sign-in page. */
export function authMethodRoutes(api: App, provider: OidcProvider | undefined): void {
  api.get(
    '/auth/methods',
    {
      config: PUBLIC,
      schema: {
        tags: ['tokens'],
        summary: 'How people sign in: a token always, and single sign-on when configured',
        response: {
          200: Type.Object({
            oidc: Type.Union([Type.Object({ loginPath: Type.String(), issuer: Type.String() }), Type.Null()]),
          }),
        },
      },
    },
    () => ({
      oidc:
        provider === undefined ? null : { loginPath: LOGIN_PATH, issuer: provider.settings.issuer.origin },
    }),
  );
}

function loginCookie(value: string, secure: boolean): string {
  // Lax, not Strict: the IdP's redirect back is a cross-site navigation that must carry it.
  return `${LOGIN_COOKIE}=${value}; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=600${secure ? '; Secure' : ''}`;
}

function clearedLoginCookie(secure: boolean): string {
  return `${LOGIN_COOKIE}=; Path=/auth/oidc; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`;
}

function fail(reply: FastifyReply, status: number, title: string, message: string): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
    .header('cache-control', 'no-store')
    .send(errorPage(title, message, LOGIN_PATH));
}

/** What the person is told: the check that failed, in openid-client's words; never a token. */
function reasonOf(error: unknown): string {
  const oidc = importedOpenidClient();
  if (oidc !== undefined && error instanceof oidc.ResponseBodyError) {
    return error.error === 'invalid_grant'
      ? 'The identity provider refused the sign-in code (invalid_grant): it was used already, has expired, or was not issued to Slipway. Start again.'
      : `The identity provider refused to finish the sign-in (${error.error}).`;
  }
  if ((oidc !== undefined && error instanceof oidc.ClientError) || isOauthError(error)) {
    return `The identity provider's answer failed Slipway's checks: ${describe(error)}. No session was opened.`;
  }
  return `Slipway could not finish the sign-in with the identity provider: ${describe(error)}.`;
}

function isOauthError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('OAUTH_');
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}

function pick(from: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => from[k] !== undefined).map((k) => [k, from[k]]));
}
