import { createServer } from 'node:net';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDatabase } from '../../../store/testing/dialects.js';
import type { TestDatabase } from '../../../store/testing/dialects.js';
import { OidcProvider } from './client.js';
import { LOGIN_COOKIE, oidcRoutes } from './routes.js';

/** A loopback port nothing listens on (bound, then closed again). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('OIDC routes when the sign-in cannot begin or was not begun here', () => {
  let t: TestDatabase;
  const logged: string[] = [];
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    const port = await closedPort();
    const provider = new OidcProvider({
      issuer: new URL(`http://127.0.0.1:${port}`),
      clientId: 'slipway',
      clientSecret: 'never-shown',
      redirectUrl: new URL('http://127.0.0.1:1/auth/oidc/callback'),
      scopes: ['openid'],
      groupsClaim: 'groups',
      roles: {
        admin: { groups: ['*'], emails: [] },
        member: { groups: [], emails: [] },
        viewer: { groups: [], emails: [] },
      },
    });
    oidcRoutes(app, { db: t.db, provider, log: (line) => logged.push(line) });
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    await t?.destroy();
  });

  it('answers an IdP that cannot be reached with a page that says so, and keeps nothing', async () => {
    const res = await app.inject({ url: '/auth/oidc/login?return_to=/projects' });
    expect(res.statusCode).toBe(502);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toContain('Cannot reach the identity provider');
    expect(res.body).not.toContain('never-shown');
    expect(res.body).not.toMatch(/\n\s+at /); // no stack
    expect(res.headers['set-cookie']).toBeUndefined();
    expect(logged.join('\n')).toMatch(/discovery of http:\/\/127\.0\.0\.1:\d+\/ failed/);
  });

  it('refuses a callback this browser did not begin, with the IdP error text kept out of the page', async () => {
    const stray = await app.inject({ url: '/auth/oidc/callback?code=c&state=s' });
    expect(stray.statusCode).toBe(400);
    expect(stray.body).toContain('Sign-in not recognised');
    expect(String(stray.headers['set-cookie'])).toMatch(new RegExp(`^${LOGIN_COOKIE}=; .*Max-Age=0`));
    const unknown = await app.inject({
      url: '/auth/oidc/callback?error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E',
      headers: { cookie: `${LOGIN_COOKIE}=not-a-sign-in-we-began` },
    });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.body).not.toContain('<script>');
  });
});
