import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, revokeToken } from '../../store/index.js';
import { DIALECTS } from '../../store/testing/dialects.js';
import { startTestApi } from '../api/testing/harness.js';
import type { TestApi } from '../api/testing/harness.js';
import { SESSION_COOKIE, readCookie } from './cookie.js';

describe('readCookie', () => {
  it('finds a cookie among others, quoted or not, the first of two', () => {
    expect(readCookie('a=1; slipway_session=slws_x; b=2', SESSION_COOKIE)).toBe('slws_x');
    expect(readCookie('slipway_session="slws_q"', SESSION_COOKIE)).toBe('slws_q');
    expect(readCookie('slipway_session=first;slipway_session=second', SESSION_COOKIE)).toBe('first');
    expect(readCookie('x_slipway_session=no; slipway_sessionx=no', SESSION_COOKIE)).toBeUndefined();
    expect(readCookie('garbage; =; ;;', SESSION_COOKIE)).toBeUndefined();
    expect(readCookie(undefined, SESSION_COOKIE)).toBeUndefined();
  });
});

const CSRF = { 'x-slipway-csrf': '1' };

describe.each(DIALECTS)('web UI session cookie (%s)', (dialect) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(dialect);
  });
  afterAll(async () => {
    await api?.close();
  });

  const signIn = (token: string, headers: Record<string, string> = CSRF) =>
    api.app.inject({ method: 'POST', url: '/api/v1/session', headers, payload: { token } });

  /** The `name=value` part of the answer's Set-Cookie, as the browser would send it back. */
  function cookieOf(res: LightMyRequestResponse): string {
    const header = res.headers['set-cookie'];
    expect(typeof header, res.body).toBe('string');
    return String(header).split(';')[0]!;
  }

  it('trades a token for an HttpOnly, SameSite=Strict, browser-session cookie without the token in it', async () => {
    const res = await signIn(api.tokens.viewer);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ name: 'viewer-token', role: 'viewer' });
    const attributes = String(res.headers['set-cookie'])
      .split(';')
      .map((a) => a.trim());
    expect(attributes[0]).toMatch(new RegExp(`^${SESSION_COOKIE}=slws_[A-Za-z0-9_-]{43}$`));
    expect(attributes.slice(1).sort()).toEqual(['HttpOnly', 'Path=/', 'SameSite=Strict']);
    expect(String(res.headers['set-cookie'])).not.toContain(api.tokens.viewer.slice(4));
    expect(res.headers['cache-control']).toBe('no-store');

    // Behind a TLS-terminating proxy the cookie is Secure.
    const proxied = await signIn(api.tokens.viewer, { ...CSRF, 'x-forwarded-proto': 'https' });
    expect(String(proxied.headers['set-cookie'])).toMatch(/; Secure$/);
  });

  it('refuses a bad token, and a sign-in without the CSRF header or from another site', async () => {
    expect((await signIn('slw_wrong')).statusCode).toBe(401);
    expect((await signIn('')).statusCode).toBe(400);
    expect((await signIn(api.tokens.viewer, {})).statusCode).toBe(403);
    const crossSite = await signIn(api.tokens.viewer, { ...CSRF, 'sec-fetch-site': 'cross-site' });
    expect(crossSite.statusCode).toBe(403);
    expect(crossSite.json()).toMatchObject({ error: { code: 'forbidden' } });
    expect(crossSite.headers['set-cookie']).toBeUndefined();
  });

  it('authenticates reads by cookie, and changes only with the CSRF header', async () => {
    const cookie = cookieOf(await signIn(api.tokens.admin));
    const me = await api.app.inject({ url: '/api/v1/whoami', headers: { cookie } });
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json()).toMatchObject({ name: 'admin-token', role: 'admin' });
    // The log routes too (the live log's fetch carries the cookie, no ?access_token= needed).
    expect(
      (await api.app.inject({ url: '/api/v1/builds/999999/logs', headers: { cookie } })).statusCode,
    ).toBe(404);

    const create = (headers: Record<string, string>) =>
      api.app.inject({
        method: 'POST',
        url: '/api/v1/tokens',
        headers,
        payload: { name: 'made-by-cookie', role: 'viewer' },
      });
    const before = await api.rowCounts();
    const forged = await create({ cookie });
    expect(forged.statusCode).toBe(403);
    expect(forged.json<{ error: { message: string } }>().error.message).toMatch(/x-slipway-csrf/);
    expect((await create({ cookie, ...CSRF, 'sec-fetch-site': 'same-site' })).statusCode).toBe(403);
    expect(await api.rowCounts()).toEqual(before);
    expect((await create({ cookie, ...CSRF, 'sec-fetch-site': 'same-origin' })).statusCode).toBe(201);
    // Bearer tokens need no such header: no browser sends them on its own.
    expect((await create(api.auth('admin'))).statusCode).toBe(201);
    // The role is the token's: a viewer's session cannot create tokens.
    const viewer = cookieOf(await signIn(api.tokens.viewer));
    expect((await create({ cookie: viewer, ...CSRF })).statusCode).toBe(403);
  });

  it('is described in the OpenAPI document next to the bearer token', async () => {
    const doc = (await api.app.inject({ url: '/api/v1/openapi.json' })).json<{
      paths: Record<string, Record<string, { security?: unknown }>>;
      components: { securitySchemes: Record<string, unknown> };
    }>();
    expect(doc.components.securitySchemes.sessionCookie).toMatchObject({
      type: 'apiKey',
      in: 'cookie',
      name: SESSION_COOKIE,
    });
    expect(doc.paths['/api/v1/whoami']!.get!.security).toEqual([{ bearerAuth: [] }, { sessionCookie: [] }]);
    expect(Object.keys(doc.paths['/api/v1/session']!).sort()).toEqual(['delete', 'post']);
  });

  it('ends when its token is revoked', async () => {
    const { token, info } = await createToken(api.t.db, { name: 'short-lived', role: 'member' });
    const cookie = cookieOf(await signIn(token));
    expect((await api.app.inject({ url: '/api/v1/whoami', headers: { cookie } })).statusCode).toBe(200);
    await revokeToken(api.t.db, info.id);
    const after = await api.app.inject({ url: '/api/v1/whoami', headers: { cookie } });
    expect(after.statusCode).toBe(401);
    expect(after.json<{ error: { message: string } }>().error.message).toMatch(/session has ended/);
  });

  it('signs out: the cookie is dropped and the session is over on the server too', async () => {
    const cookie = cookieOf(await signIn(api.tokens.member));
    expect(
      (await api.app.inject({ method: 'DELETE', url: '/api/v1/session', headers: { cookie } })).statusCode,
    ).toBe(403);
    const out = await api.app.inject({
      method: 'DELETE',
      url: '/api/v1/session',
      headers: { cookie, ...CSRF },
    });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toBe(
      `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`,
    );
    // A copy of the cookie kept elsewhere is worthless now.
    expect((await api.app.inject({ url: '/api/v1/whoami', headers: { cookie } })).statusCode).toBe(401);
    // Signing out without a session just clears the cookie.
    expect((await api.app.inject({ method: 'DELETE', url: '/api/v1/session' })).statusCode).toBe(204);
  });
});
