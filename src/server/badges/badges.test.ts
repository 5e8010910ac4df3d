import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, createUserSession, setBuildStatus, verifyToken } from '../../store/index.js';
import type { BuildEvent, Project, Status } from '../../store/index.js';
import { DIALECTS } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { SESSION_COOKIE } from '../auth/index.js';
import { startTestApi } from '../api/testing/harness.js';
import type { TestApi } from '../api/testing/harness.js';
import { badgeRoutes, badgeSettingsRoutes } from './routes.js';
import { BADGE_COLOURS } from './svg.js';

/** The state word a badge shows (its second text), and its colour. */
function stateOf(res: LightMyRequestResponse): { state: string; colour: string } {
  expect(res.statusCode, res.body).toBe(200);
  const texts = [...res.body.matchAll(/<text x="[^"]+" y="14">([^<]*)<\/text>/g)].map((m) => m[1]);
  const colour = /<rect x="[^"]+" width="[^"]+" height="20" fill="(#[0-9a-f]+)"\/>/.exec(res.body)?.[1];
  expect(texts[0]).toBe('build');
  return { state: texts[1]!, colour: colour! };
}

/** The element names of an SVG, in order: what escaping must never change. */
function tags(svg: string): string[] {
  return [...svg.matchAll(/<\/?([a-zA-Z]+)/g)].map((m) => m[0]);
}

/** A build of `branch` ended (or left queued) with `status`. */
async function build(
  api: TestApi,
  project: Project,
  branch: string,
  status: Status,
  event: BuildEvent = 'push',
) {
  const b = await makeBuild(api.t.db, project.id, { branch, event });
  if (status !== 'queued') await setBuildStatus(api.t.db, b.id, ['queued'], status);
  return b;
}

describe.each(DIALECTS)('status badges (%s, the real API app)', (dialect) => {
  let api: TestApi;
  let open: Project;

  beforeAll(async () => {
    api = await startTestApi(dialect, (db) => ({
      rootPlugins: [(root) => badgeRoutes(root, { db })],
      apiPlugins: [(a) => badgeSettingsRoutes(a, { db })],
    }));
    open = await makeProject(api.t.db, { slug: 'acme/open.js' });
    await makeProject(api.t.db, { slug: 'acme/closed' });
  });
  afterAll(async () => {
    await api?.close();
  });

  const badge = (role: 'viewer' | null, url: string, headers: Record<string, string> = {}) =>
    api.call(role, { method: 'GET', url, headers });

  it('is private until a member makes it public; viewers read the switch, only members and admins change it', async () => {
    const url = `/api/v1/projects/${open.slug}/badge`;
    const before = await api.call('viewer', { method: 'GET', url });
    expect(before.json()).toEqual({ public: false, path: '/badges/acme/open.js.svg' });
    expect((await badge(null, '/badges/acme/open.js.svg')).statusCode).toBe(404);

    const refused = await api.call('viewer', { method: 'PUT', url, payload: { public: true } });
    expect(refused.statusCode).toBe(403);
    expect((await api.call(null, { method: 'GET', url })).statusCode).toBe(401);
    const bad = await api.call('member', { method: 'PUT', url, payload: { public: 'yes' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { message: string } }>().error.message).not.toMatch(/\n\s+at /);

    const put = await api.call('member', { method: 'PUT', url, payload: { public: true } });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toEqual({ public: true, path: '/badges/acme/open.js.svg' });
    expect((await api.call('viewer', { method: 'GET', url })).json()).toMatchObject({ public: true });
    expect(stateOf(await badge(null, '/badges/acme/open.js.svg')).state).toBe('unknown');
    const unknownProject = await api.call('viewer', { method: 'GET', url: '/api/v1/projects/no/such/badge' });
    expect(unknownProject.statusCode).toBe(404);
  });

  it('a private badge and an unknown project answer anonymous callers the same; a token opens the private one', async () => {
    const privateOne = await badge(null, '/badges/acme/closed.svg');
    const unknown = await badge(null, '/badges/acme/nothing.svg');
    expect(privateOne.statusCode).toBe(404);
    expect(unknown.statusCode).toBe(404);
    const redact = (body: string) => body.replace('closed', 'X').replace('nothing', 'X');
    expect(redact(privateOne.body)).toBe(redact(unknown.body));
    expect(privateOne.headers['content-type']).toBe(unknown.headers['content-type']);

    const withToken = await badge('viewer', '/badges/acme/closed.svg');
    expect(stateOf(withToken).state).toBe('unknown');
    expect(withToken.headers['cache-control']).toBe('private, no-cache');
    // A token that is not valid is refused whether the project exists or not.
    const forged = { authorization: 'Bearer slw_not-a-token' };
    expect((await badge(null, '/badges/acme/closed.svg', forged)).statusCode).toBe(401);
    expect((await badge(null, '/badges/acme/nothing.svg', forged)).statusCode).toBe(401);
    expect((await badge('viewer', '/badges/acme/nothing.svg')).statusCode).toBe(404);

    // The web UI's session opens it too (an <img> on a project page sends the cookie).
    const session = await createSession(api.t.db, (await verifyToken(api.t.db, api.tokens.viewer))!);
    const cookie = { cookie: `${SESSION_COOKIE}=${session.id}` };
    expect(stateOf(await badge(null, '/badges/acme/closed.svg', cookie)).state).toBe('unknown');
    expect(
      (await badge(null, '/badges/acme/closed.svg', { cookie: `${SESSION_COOKIE}=gone` })).statusCode,
    ).toBe(404);
    // So does a person's session after an OIDC sign-in.
    const person = await createUserSession(
      api.t.db,
      { issuer: 'https://idp.example', subject: 'ada', name: 'Ada', email: null },
      'viewer',
    );
    const personCookie = { cookie: `${SESSION_COOKIE}=${person.id}` };
    expect(stateOf(await badge(null, '/badges/acme/closed.svg', personCookie)).state).toBe('unknown');
  });

  it("shows the branch's newest finished build, passes an ETag and answers 304 until the state changes", async () => {
    const url = '/badges/acme/open.js.svg';
    const first = await build(api, open, 'main', 'failure');
    const failing = await badge(null, url);
    expect(stateOf(failing)).toEqual({ state: 'failing', colour: BADGE_COLOURS.failing });
    expect(failing.headers['content-type']).toMatch(/^image\/svg\+xml/);
    expect(failing.headers['cache-control']).toBe('public, no-cache');
    const etag = failing.headers.etag as string;
    expect(etag).toMatch(/^"[A-Za-z0-9_-]+"$/);

    const again = await badge(null, url, { 'if-none-match': etag });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect(again.headers.etag).toBe(etag);
    expect((await badge(null, url, { 'if-none-match': `"other", W/${etag}` })).statusCode).toBe(304);

    // A newer build that is still running leaves the badge on the finished one.
    const running = await build(api, open, 'main', 'queued');
    expect((await badge(null, url, { 'if-none-match': etag })).statusCode).toBe(304);
    await setBuildStatus(api.t.db, running.id, ['queued'], 'success');
    const passing = await badge(null, url, { 'if-none-match': etag });
    expect(stateOf(passing)).toEqual({ state: 'passing', colour: BADGE_COLOURS.passing });
    expect(passing.headers.etag).not.toBe(etag);
    expect(first.id).toBeLessThan(running.id);
  });

  it('picks the branch: ?branch=, main by default, no pull-request or tag builds, running before any finished', async () => {
    await build(api, open, 'dev', 'error');
    await build(api, open, 'feature', 'queued');
    await build(api, open, 'stop', 'cancelled');
    // A fork's pull request from its own "main", and a tag named "main", are not the branch main.
    await build(api, open, 'main', 'failure', 'pull_request');
    await makeBuild(api.t.db, open.id, { branch: 'main', tag: 'main', event: 'tag' }).then((b) =>
      setBuildStatus(api.t.db, b.id, ['queued'], 'failure'),
    );

    expect(stateOf(await badge(null, '/badges/acme/open.js.svg')).state).toBe('passing');
    expect(stateOf(await badge(null, '/badges/acme/open.js.svg?branch=main')).state).toBe('passing');
    expect(stateOf(await badge(null, '/badges/acme/open.js.svg?branch=dev')).state).toBe('error');
    expect(stateOf(await badge(null, '/badges/acme/open.js.svg?branch=feature')).state).toBe('running');
    expect(stateOf(await badge(null, '/badges/acme/open.js.svg?branch=stop')).state).toBe('cancelled');
    expect(stateOf(await badge(null, '/badges/acme/open.js.svg?branch=none')).state).toBe('unknown');
    expect((await badge(null, `/badges/acme/open.js.svg?branch=${'x'.repeat(256)}`)).statusCode).toBe(400);
    expect((await badge(null, '/badges/acme/open.js.png')).statusCode).toBe(404);
    expect((await badge(null, '/badges/acme/open.js')).statusCode).toBe(404);
  });

  it('escapes a hostile branch name: the SVG keeps its own elements and nothing else', async () => {
    const plain = await badge(null, '/badges/acme/open.js.svg?branch=none');
    const hostile = `"><script>alert(1)</script><a href='x'>&amp;\u0001]]>`;
    const res = await badge(null, `/badges/acme/open.js.svg?branch=${encodeURIComponent(hostile)}`);
    expect(stateOf(res).state).toBe('unknown');
    expect(tags(res.body)).toEqual(tags(plain.body));
    expect(res.body).not.toContain('<script');
    expect(res.body).not.toContain('\u0001');
    expect(res.body).toContain(
      '<title>acme/open.js &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;a href=&apos;x&apos;&gt;&amp;amp;]]&gt;: unknown</title>',
    );
    expect(res.headers['content-security-policy']).toBe("default-src 'none'; style-src 'unsafe-inline'");
  });
});
