import Fastify from 'fastify';
import type { FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, revokeToken } from '../../store/index.js';
import { DIALECTS, openTestDatabase } from '../../store/testing/dialects.js';
import type { TestDatabase } from '../../store/testing/dialects.js';
import { AuthError, hasRole, registerAuth, tokenOf } from './index.js';

const request = (headers: Record<string, string>, query: Record<string, unknown> = {}) =>
  ({ headers, query }) as unknown as FastifyRequest;

describe('roles', () => {
  it('orders viewer < member < admin', () => {
    expect(hasRole('viewer', 'viewer')).toBe(true);
    expect(hasRole('viewer', 'member')).toBe(false);
    expect(hasRole('member', 'viewer')).toBe(true);
    expect(hasRole('member', 'admin')).toBe(false);
    expect(hasRole('admin', 'member')).toBe(true);
  });
});

describe('tokenOf', () => {
  it('takes a bearer token from the Authorization header, any case, surrounding blanks ignored', () => {
    expect(tokenOf(request({ authorization: 'Bearer slw_abc' }), false)).toBe('slw_abc');
    expect(tokenOf(request({ authorization: 'bearer   slw_abc  ' }), false)).toBe('slw_abc');
  });

  it('refuses other schemes and malformed headers with a message that says what to send', () => {
    for (const authorization of ['Basic YTpi', 'Bearer', 'Bearer a b', 'slw_abc']) {
      expect(() => tokenOf(request({ authorization }), true)).toThrow(/Bearer <token>/);
    }
    expect(() => tokenOf(request({}), true)).toThrow(AuthError);
  });

  it('takes ?access_token= only where allowed, and prefers the header', () => {
    expect(tokenOf(request({}, { access_token: 'slw_q' }), true)).toBe('slw_q');
    expect(() => tokenOf(request({}, { access_token: 'slw_q' }), false)).toThrow(
      /only by the live log route/,
    );
    expect(() => tokenOf(request({}, { access_token: ['a', 'b'] }), true)).toThrow(/given once/);
    expect(tokenOf(request({ authorization: 'Bearer slw_h' }, { access_token: 'slw_q' }), true)).toBe(
      'slw_h',
    );
  });
});

describe.each(DIALECTS)('registerAuth (%s)', (dialect) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase(dialect);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  function appWithRoutes() {
    const app = Fastify();
    registerAuth(app, t.db);
    app.setErrorHandler((error, _request, reply) => {
      const code = error instanceof AuthError ? (error.code === 'unauthorized' ? 401 : 403) : 500;
      return reply.code(code).send({ code: error instanceof AuthError ? error.code : 'other' });
    });
    app.get('/api/v1/open', { config: { auth: 'public' } }, () => ({ ok: true }));
    app.get('/api/v1/member', { config: { auth: { role: 'member' } } }, (req) => ({
      caller: req.caller?.name,
    }));
    app.get('/elsewhere', () => ({ ok: true }));
    return app;
  }

  it('refuses to register an API route that declares no auth', async () => {
    const app = Fastify();
    registerAuth(app, t.db);
    expect(() => app.get('/api/v1/forgotten', () => ({}))).toThrow(/declares no auth/);
    await app.close();
  });

  it('verifies the token against the store and checks the role', async () => {
    const app = appWithRoutes();
    const member = await createToken(t.db, { name: 'm', role: 'member' });
    const viewer = await createToken(t.db, { name: 'v', role: 'viewer' });
    const get = (url: string, token?: string) =>
      app.inject({ url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

    expect((await get('/api/v1/open')).statusCode).toBe(200);
    expect((await get('/elsewhere')).statusCode).toBe(200);
    expect((await get('/api/v1/member')).json()).toEqual({ code: 'unauthorized' });
    expect((await get('/api/v1/member', viewer.token)).json()).toEqual({ code: 'forbidden' });
    expect((await get('/api/v1/member', member.token)).json()).toEqual({ caller: 'm' });
    await revokeToken(t.db, member.info.id);
    expect((await get('/api/v1/member', member.token)).json()).toEqual({ code: 'unauthorized' });
    await app.close();
  });
});
