import { readFile } from 'node:fs/promises';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimNextBuilds,
  createBuildRecords,
  openApproval,
  setBuildStatus,
  verifyToken,
} from '../../store/index.js';
import type { Project, TokenRole } from '../../store/index.js';
import { DIALECTS } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { rowWhere } from '../../store/testing/inspect.js';
import type {
  ApiError,
  Build,
  BuildDetail,
  Page,
  Project as ProjectDto,
  Queue,
  TokenCreated,
  TokenInfo,
} from './dto.js';
import { startTestApi } from './testing/harness.js';
import type { TestApi } from './testing/harness.js';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** Asserts the one error shape of the API and returns its body. */
function expectError(res: LightMyRequestResponse, status: number, code: string): ApiError['error'] {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
  const body = res.json<ApiError>();
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'details', 'message']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(typeof body.error.details).toBe('object');
  expect(body.error.message).not.toMatch(/\n\s+at /); // never a stack trace
  return body.error;
}

/** The routes listed in the contract's header comment: `METHOD /api/v1/...`. */
async function contractRoutes(): Promise<{ method: string; path: string }[]> {
  const source = await readFile(new URL('./dto.ts', import.meta.url), 'utf8');
  const header = source.slice(0, source.indexOf('*/'));
  const routes: { method: string; path: string }[] = [];
  for (const match of header.matchAll(/^\s*\*\s+(GET|POST|PATCH|DELETE)\s+(\/.*)$/gm)) {
    // `/healthz | /readyz | …`, `/api/v1/builds?status&… → Page<Build>`, `/api/v1/tokens  TokenCreate → …`
    for (const token of match[2]!.split(/\s+/)) {
      if (token === '|') continue;
      if (!token.startsWith('/')) break;
      routes.push({ method: match[1]!, path: token.replace(/\?.*$/, '') });
    }
  }
  return routes;
}

describe.each(DIALECTS)('REST API (%s)', (dialect) => {
  let api: TestApi;
  let project: Project;

  beforeAll(async () => {
    api = await startTestApi(dialect);
    project = await makeProject(api.t.db, { slug: 'acme/fixture' });
  });
  afterAll(async () => {
    await api?.close();
  });

  describe('auth', () => {
    // Every API route with the least role it needs and a valid request for it.
    const matrix: { method: Method; url: () => string; role: TokenRole; payload?: object }[] = [
      { method: 'GET', url: () => '/api/v1/projects', role: 'viewer' },
      {
        method: 'POST',
        url: () => '/api/v1/projects',
        role: 'admin',
        payload: { slug: 'auth/new', repoUrl: 'x' },
      },
      { method: 'GET', url: () => `/api/v1/projects/${project.slug}`, role: 'viewer' },
      {
        method: 'PATCH',
        url: () => `/api/v1/projects/${project.slug}`,
        role: 'admin',
        payload: { defaultImage: 'alpine' },
      },
      { method: 'DELETE', url: () => '/api/v1/projects/auth/none', role: 'admin' },
      { method: 'GET', url: () => `/api/v1/projects/${project.slug}/stats`, role: 'viewer' },
      { method: 'GET', url: () => `/api/v1/projects/${project.slug}/builds`, role: 'viewer' },
      {
        method: 'POST',
        url: () => `/api/v1/projects/${project.slug}/builds`,
        role: 'member',
        payload: { branch: 'main' },
      },
      { method: 'GET', url: () => `/api/v1/projects/${project.slug}/builds/1`, role: 'viewer' },
      { method: 'GET', url: () => '/api/v1/builds', role: 'viewer' },
      { method: 'GET', url: () => '/api/v1/builds/1', role: 'viewer' },
      { method: 'POST', url: () => '/api/v1/builds/999999/cancel', role: 'member', payload: {} },
      { method: 'POST', url: () => '/api/v1/builds/999999/approve', role: 'member', payload: {} },
      { method: 'POST', url: () => '/api/v1/builds/999999/reject', role: 'member', payload: {} },
      { method: 'POST', url: () => '/api/v1/builds/999999/rerun', role: 'member', payload: {} },
      { method: 'GET', url: () => '/api/v1/builds/1/logs', role: 'viewer' },
      { method: 'GET', url: () => '/api/v1/builds/1/steps/test/unit/log', role: 'viewer' },
      { method: 'GET', url: () => '/api/v1/queue', role: 'viewer' },
      { method: 'GET', url: () => '/api/v1/tokens', role: 'admin' },
      { method: 'POST', url: () => '/api/v1/tokens', role: 'admin', payload: { name: 'ci', role: 'viewer' } },
      { method: 'DELETE', url: () => '/api/v1/tokens/999999', role: 'admin' },
      { method: 'GET', url: () => '/api/v1/whoami', role: 'viewer' },
    ];
    const below: Record<TokenRole, TokenRole[]> = {
      viewer: [],
      member: ['viewer'],
      admin: ['viewer', 'member'],
    };

    it('covers every route of the contract', async () => {
      const listed = (await contractRoutes()).filter(
        (r) => r.path.startsWith('/api/v1/') && r.path !== '/api/v1/openapi.json',
      );
      const tested = matrix.map((m) => `${m.method} ${m.url().replace(project.slug, '{owner}/{name}')}`);
      for (const route of listed) {
        const pattern = new RegExp(`^${route.method} ${route.path.replace(/\{[a-z]+\}/g, '[^/]+')}$`);
        expect(
          tested.some((t) => pattern.test(t)),
          `${route.method} ${route.path}`,
        ).toBe(true);
      }
    });

    it('refuses requests without a token, with a bad token or a malformed header, writing nothing', async () => {
      const before = await api.rowCounts();
      for (const route of matrix) {
        const options = {
          method: route.method,
          url: route.url(),
          ...(route.payload && { payload: route.payload }),
        };
        for (const headers of [
          {},
          { authorization: 'Bearer slw_not-a-real-token' },
          { authorization: 'Basic YWRtaW46YWRtaW4=' },
        ]) {
          const res = await api.call(null, { ...options, headers });
          const error = expectError(res, 401, 'unauthorized');
          expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
          expect(error.message.length).toBeGreaterThan(10);
        }
      }
      expect(await api.rowCounts()).toEqual(before);
    });

    it('refuses roles below the one a route needs, naming that role, writing nothing', async () => {
      const before = await api.rowCounts();
      for (const route of matrix) {
        for (const role of below[route.role]) {
          const res = await api.call(role, {
            method: route.method,
            url: route.url(),
            ...(route.payload && { payload: route.payload }),
          });
          const error = expectError(res, 403, 'forbidden');
          expect(error.message).toContain(`${route.role} role`);
          expect(error.details).toEqual({ requiredRole: route.role });
        }
      }
      expect(await api.rowCounts()).toEqual(before);
    });

    it('lets the needed role and any higher one through', async () => {
      const roles: TokenRole[] = ['viewer', 'member', 'admin'];
      for (const route of matrix) {
        for (const role of roles.slice(roles.indexOf(route.role))) {
          const res = await api.call(role, {
            method: route.method,
            url: route.url(),
            ...(route.payload && { payload: route.payload }),
          });
          expect([401, 403], `${role} ${route.method} ${route.url()}: ${res.body}`).not.toContain(
            res.statusCode,
          );
        }
      }
    });

    it('keeps health, readiness, metrics and the OpenAPI document public', async () => {
      for (const url of ['/healthz', '/readyz', '/metrics', '/api/v1/openapi.json']) {
        expect((await api.call(null, { url })).statusCode, url).toBe(200);
      }
    });

    it('takes ?access_token= only on the live log route', async () => {
      const build = await makeBuild(api.t.db, project.id);
      const onLogs = await api.call(null, {
        url: `/api/v1/builds/${build.id}/logs?access_token=${api.tokens.viewer}`,
      });
      expect(onLogs.statusCode).toBe(200);
      const elsewhere = await api.call(null, {
        url: `/api/v1/builds/${build.id}?access_token=${api.tokens.viewer}`,
      });
      expect(expectError(elsewhere, 401, 'unauthorized').message).toContain('only by the live log route');
    });

    it('does not accept a revoked token', async () => {
      const created = (
        await api.call('admin', {
          method: 'POST',
          url: '/api/v1/tokens',
          payload: { name: 'short-lived', role: 'member' },
        })
      ).json<TokenCreated>();
      const headers = { authorization: `Bearer ${created.token}` };
      expect((await api.call(null, { url: '/api/v1/whoami', headers })).json<TokenInfo>().name).toBe(
        'short-lived',
      );
      expect(
        (await api.call('admin', { method: 'DELETE', url: `/api/v1/tokens/${created.id}` })).statusCode,
      ).toBe(204);
      expectError(await api.call(null, { url: '/api/v1/whoami', headers }), 401, 'unauthorized');
    });
  });

  describe('projects', () => {
    it('creates, reads, lists, changes and deletes a project', async () => {
      const created = await api.call('admin', {
        method: 'POST',
        url: '/api/v1/projects',
        payload: {
          slug: 'crud/web',
          repoUrl: 'https://git.example/crud/web.git',
          branchFilter: 'main|release/.*',
          maxRunning: 2,
        },
      });
      expect(created.statusCode).toBe(201);
      expect(created.headers['content-type']).toBe('application/json; charset=utf-8');
      const body = created.json<ProjectDto>();
      expect(body).toMatchObject({
        slug: 'crud/web',
        repoUrl: 'https://git.example/crud/web.git',
        branchFilter: 'main|release/.*',
        concurrencyPolicy: 'queue',
        maxRunning: 2,
        defaultExecutor: null,
        pipelinePath: '.slipway.yml',
        lastBuild: null,
      });
      expect(new Date(body.createdAt).toISOString()).toBe(body.createdAt);

      const read = await api.call('viewer', { url: '/api/v1/projects/crud/web' });
      expect(read.json<ProjectDto>()).toEqual(body);

      const patched = await api.call('admin', {
        method: 'PATCH',
        url: '/api/v1/projects/crud/web',
        payload: { concurrencyPolicy: 'supersede', defaultExecutor: 'docker', maxRunning: null },
      });
      expect(patched.statusCode).toBe(200);
      expect(patched.json<ProjectDto>()).toMatchObject({
        concurrencyPolicy: 'supersede',
        defaultExecutor: 'docker',
        maxRunning: null,
      });

      const deleted = await api.call('admin', { method: 'DELETE', url: '/api/v1/projects/crud/web' });
      expect(deleted.statusCode).toBe(204);
      expect(deleted.body).toBe('');
      expectError(await api.call('viewer', { url: '/api/v1/projects/crud/web' }), 404, 'not_found');
    });

    it('pages the project list with a cursor', async () => {
      for (const name of ['a', 'b', 'c']) {
        await api.call('admin', {
          method: 'POST',
          url: '/api/v1/projects',
          payload: { slug: `page/${name}`, repoUrl: 'x' },
        });
      }
      const slugs: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await api.call('viewer', {
          url: `/api/v1/projects?limit=2${cursor === null ? '' : `&before=${encodeURIComponent(cursor)}`}`,
        });
        const page = res.json<Page<ProjectDto>>();
        expect(page.items.length).toBeLessThanOrEqual(2);
        slugs.push(...page.items.map((p) => p.slug));
        cursor = page.nextCursor;
      } while (cursor !== null);
      expect(slugs).toEqual([...slugs].sort());
      expect(new Set(slugs).size).toBe(slugs.length);
      expect(slugs).toEqual(expect.arrayContaining(['page/a', 'page/b', 'page/c', project.slug]));
    });

    it('rejects unknown fields, bad slugs, bad regexes and wrong types with the field path, writing nothing', async () => {
      const before = await api.rowCounts();
      const cases: { method: Method; url: string; payload: object; paths: string[] }[] = [
        {
          method: 'POST',
          url: '/api/v1/projects',
          payload: { slug: 'bad/one', repoUrl: 'x', colour: 'red' },
          paths: ['body.colour'],
        },
        {
          method: 'POST',
          url: '/api/v1/projects',
          payload: { slug: 'no-slash', repoUrl: 'x' },
          paths: ['body.slug'],
        },
        {
          method: 'POST',
          url: '/api/v1/projects',
          payload: { slug: 'bad/re', repoUrl: 'x', branchFilter: '(unclosed' },
          paths: ['body.branchFilter'],
        },
        { method: 'POST', url: '/api/v1/projects', payload: { slug: 'bad/two' }, paths: ['body.repoUrl'] },
        {
          method: 'POST',
          url: '/api/v1/projects',
          payload: {
            slug: 'bad/three',
            repoUrl: 'x',
            maxRunning: '2',
            concurrencyPolicy: 'yolo',
            defaultExecutor: 'vm',
          },
          paths: ['body.maxRunning', 'body.concurrencyPolicy', 'body.defaultExecutor'],
        },
        {
          method: 'PATCH',
          url: `/api/v1/projects/${project.slug}`,
          payload: { slug: 'acme/renamed' },
          paths: ['body.slug'],
        },
        {
          method: 'PATCH',
          url: `/api/v1/projects/${project.slug}`,
          payload: { branchFilter: '[' },
          paths: ['body.branchFilter'],
        },
        {
          method: 'PATCH',
          url: `/api/v1/projects/${project.slug}`,
          payload: { maxRunning: 0 },
          paths: ['body.maxRunning'],
        },
      ];
      for (const c of cases) {
        const error = expectError(await api.call('admin', c), 400, 'invalid_request');
        const fields = (error.details as { fields: { path: string; message: string }[] }).fields;
        expect(fields.map((f) => f.path).sort(), JSON.stringify(c.payload)).toEqual([...c.paths].sort());
        for (const path of c.paths) expect(error.message).toContain(path);
      }
      expect(await api.rowCounts()).toEqual(before);
    });

    it('answers 409 for a taken slug and for deleting a project with an active build', async () => {
      expectError(
        await api.call('admin', {
          method: 'POST',
          url: '/api/v1/projects',
          payload: { slug: project.slug, repoUrl: 'x' },
        }),
        409,
        'conflict',
      );
      const busy = await makeProject(api.t.db, { slug: 'busy/one' });
      await makeBuild(api.t.db, busy.id);
      await claimNextBuilds(api.t.db, 'test-owner', 60_000, { global: 1000 });
      const before = await api.rowCounts();
      expectError(
        await api.call('admin', { method: 'DELETE', url: '/api/v1/projects/busy/one' }),
        409,
        'conflict',
      );
      expect(await api.rowCounts()).toEqual(before);
    });

    it('answers 404 for unknown projects on every project route', async () => {
      const urls: [Method, string, object?][] = [
        ['GET', '/api/v1/projects/no/such'],
        ['PATCH', '/api/v1/projects/no/such', { repoUrl: 'y' }],
        ['DELETE', '/api/v1/projects/no/such'],
        ['GET', '/api/v1/projects/no/such/stats'],
        ['GET', '/api/v1/projects/no/such/builds'],
        ['POST', '/api/v1/projects/no/such/builds', { branch: 'main' }],
        ['GET', '/api/v1/projects/no/such/builds/1'],
        ['GET', '/api/v1/builds?project=no/such'],
      ];
      const before = await api.rowCounts();
      for (const [method, url, payload] of urls) {
        const error = expectError(
          await api.call('admin', { method, url, ...(payload && { payload }) }),
          404,
          'not_found',
        );
        expect(error.message).toContain('no/such');
      }
      expect(await api.rowCounts()).toEqual(before);
    });

    it('reports the average duration of the last successful builds', async () => {
      const p = await makeProject(api.t.db, { slug: 'stats/one' });
      const empty = await api.call('viewer', { url: '/api/v1/projects/stats/one/stats' });
      expect(empty.json()).toEqual({ averageDurationMs: null, sampleSize: 0 });
      for (const [status, durationMs] of [
        ['success', 1000],
        ['success', 3000],
        ['failure', 50],
      ] as const) {
        const b = await makeBuild(api.t.db, p.id, { branch: `b-${durationMs}` });
        await setBuildStatus(api.t.db, b.id, ['queued'], status, { startedAt: 0, finishedAt: durationMs });
      }
      const stats = await api.call('viewer', { url: '/api/v1/projects/stats/one/stats' });
      expect(stats.json()).toEqual({ averageDurationMs: 2000, sampleSize: 2 });
    });
  });

  describe('builds', () => {
    let p: Project;
    beforeAll(async () => {
      p = await makeProject(api.t.db, { slug: 'builds/web' });
    });

    const trigger = (payload: object, role: TokenRole = 'member') =>
      api.call(role, { method: 'POST', url: `/api/v1/projects/${p.slug}/builds`, payload });

    it('triggers builds through BuildControl, numbered per project', async () => {
      const first = await trigger({ branch: 'main', commit: 'a'.repeat(40) });
      expect(first.statusCode).toBe(201);
      expect(first.json<Build>()).toMatchObject({
        project: 'builds/web',
        number: 1,
        status: 'queued',
        branch: 'main',
        commit: 'a'.repeat(40),
        event: 'manual',
        trigger: 'manual',
        triggeredBy: 'member-token',
      });
      const second = await trigger({ branch: 'feature/x', tag: 'v1.0.0' });
      expect(second.json<Build>()).toMatchObject({ number: 2, branch: 'feature/x', tag: 'v1.0.0' });
      const project = (await api.call('viewer', { url: '/api/v1/projects/builds/web' })).json<ProjectDto>();
      expect(project.lastBuild?.number).toBe(2);
    });

    it('rejects bad trigger requests with the field path, writing nothing', async () => {
      const before = await api.rowCounts();
      const cases: [object, string][] = [
        [{}, 'body.branch'],
        [{ branch: 'main', extra: true }, 'body.extra'],
        [{ branch: 'main', commit: 'not-a-sha' }, 'body.commit'],
        [{ branch: '' }, 'body.branch'],
        [{ branch: 42 }, 'body.branch'],
      ];
      for (const [payload, path] of cases) {
        const error = expectError(await trigger(payload), 400, 'invalid_request');
        expect(error.message).toContain(path);
      }
      // Refused by BuildControl, not by the schema: still a 400, still nothing written.
      const control = expectError(await trigger({ branch: 'bad..ref' }), 400, 'invalid_request');
      expect(control.message).toContain('bad..ref');
      expect(await api.rowCounts()).toEqual(before);
    });

    it('answers 400 invalid_json for malformed or empty JSON, and 415 for other media types, writing nothing', async () => {
      const before = await api.rowCounts();
      const url = `/api/v1/projects/${p.slug}/builds`;
      for (const payload of ['{"branch": "main"', '{branch: main}', '']) {
        const res = await api.call('member', {
          method: 'POST',
          url,
          payload,
          headers: { 'content-type': 'application/json' },
        });
        expectError(res, 400, 'invalid_json');
      }
      const proto = await api.call('member', {
        method: 'POST',
        url,
        payload: '{"branch":"main","__proto__":{"admin":true}}',
        headers: { 'content-type': 'application/json' },
      });
      expectError(proto, 400, 'invalid_json');
      const text = await api.call('member', {
        method: 'POST',
        url,
        payload: 'branch=main',
        headers: { 'content-type': 'text/plain' },
      });
      expectError(text, 415, 'unsupported_media_type');
      expect(await api.rowCounts()).toEqual(before);
    });

    it('answers 413 for a body over the limit, writing nothing', async () => {
      const before = await api.rowCounts();
      const huge = JSON.stringify({ branch: 'main', padding: 'x'.repeat(1024 * 1024) });
      const res = await api.call('admin', {
        method: 'POST',
        url: '/api/v1/projects',
        payload: huge,
        headers: { 'content-type': 'application/json' },
      });
      expectError(res, 413, 'payload_too_large');
      expect(await api.rowCounts()).toEqual(before);
    });

    it('lists builds newest first with status and branch filters and cursor pages', async () => {
      const q = await makeProject(api.t.db, { slug: 'builds/list' });
      const made = [];
      for (let i = 0; i < 7; i++)
        made.push(await makeBuild(api.t.db, q.id, { branch: i % 2 === 0 ? 'main' : 'dev' }));
      await setBuildStatus(api.t.db, made[0]!.id, ['queued'], 'cancelled');
      await setBuildStatus(api.t.db, made[1]!.id, ['queued'], 'skipped');

      const numbers: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await api.call('viewer', {
          url: `/api/v1/projects/builds/list/builds?limit=3${cursor === null ? '' : `&before=${cursor}`}`,
        });
        const page = res.json<Page<Build>>();
        numbers.push(...page.items.map((b) => b.number));
        cursor = page.nextCursor;
        pages += 1;
      } while (cursor !== null);
      expect(numbers).toEqual([7, 6, 5, 4, 3, 2, 1]);
      expect(pages).toBe(3);

      const dev = (await api.call('viewer', { url: '/api/v1/projects/builds/list/builds?branch=dev' })).json<
        Page<Build>
      >();
      expect(dev.items.map((b) => b.number)).toEqual([6, 4, 2]);
      const ended = (
        await api.call('viewer', { url: '/api/v1/projects/builds/list/builds?status=cancelled,skipped' })
      ).json<Page<Build>>();
      expect(ended.items.map((b) => [b.number, b.status])).toEqual([
        [2, 'skipped'],
        [1, 'cancelled'],
      ]);
      const queuedMain = (
        await api.call('viewer', { url: '/api/v1/builds?project=builds/list&status=queued&branch=main' })
      ).json<Page<Build>>();
      expect(queuedMain.items.map((b) => b.number)).toEqual([7, 5, 3]);
      const global = (await api.call('viewer', { url: '/api/v1/builds?limit=2' })).json<Page<Build>>();
      expect(global.items.length).toBe(2);
      expect(global.nextCursor).not.toBeNull();
    });

    it('rejects bad list filters with the parameter path', async () => {
      const cases: [string, string][] = [
        ['status=bogus', 'query.status'],
        ['limit=0', 'query.limit'],
        ['limit=many', 'query.limit'],
        ['before=-1', 'query.before'],
        ['colour=red', 'query.colour'],
      ];
      for (const [query, path] of cases) {
        const error = expectError(
          await api.call('viewer', { url: `/api/v1/builds?${query}` }),
          400,
          'invalid_request',
        );
        expect(error.message).toContain(path);
      }
      expectError(await api.call('viewer', { url: '/api/v1/builds/abc' }), 400, 'invalid_request');
    });

    it('shows a build with its stages and steps, by id and by project number', async () => {
      const b = await makeBuild(api.t.db, p.id, { branch: 'detail' });
      await createBuildRecords(api.t.db, b.id, [
        { name: 'test', steps: ['unit', 'lint'] },
        { name: 'deploy', steps: ['ship'] },
      ]);
      const byId = (await api.call('viewer', { url: `/api/v1/builds/${b.id}` })).json<BuildDetail>();
      expect(byId.stages.map((s) => [s.name, s.steps.map((t) => t.name)])).toEqual([
        ['test', ['unit', 'lint']],
        ['deploy', ['ship']],
      ]);
      expect(byId.stages[0]!.steps[0]).toEqual({
        name: 'unit',
        status: 'queued',
        exitCode: null,
        attempts: 0,
        reason: null,
        startedAt: null,
        finishedAt: null,
        durationMs: null,
        logLines: 0,
        allowFailure: false,
        maxAttempts: 1,
        reusedFrom: null,
      });
      const byNumber = (
        await api.call('viewer', { url: `/api/v1/projects/${p.slug}/builds/${b.number}` })
      ).json<BuildDetail>();
      expect(byNumber).toEqual(byId);
      expectError(
        await api.call('viewer', { url: `/api/v1/projects/${p.slug}/builds/9999` }),
        404,
        'not_found',
      );
      expectError(await api.call('viewer', { url: '/api/v1/builds/9999999' }), 404, 'not_found');
    });

    it('cancels a queued build, and answers 409 when it is already over', async () => {
      const b = (await trigger({ branch: 'to-cancel' })).json<Build>();
      const cancelled = await api.call('member', { method: 'POST', url: `/api/v1/builds/${b.id}/cancel` });
      expect(cancelled.statusCode).toBe(200);
      expect(cancelled.json<Build>()).toMatchObject({
        id: b.id,
        status: 'cancelled',
        reason: { code: 'cancelled' },
      });
      expectError(
        await api.call('member', { method: 'POST', url: `/api/v1/builds/${b.id}/cancel`, payload: {} }),
        409,
        'conflict',
      );
      expectError(
        await api.call('member', { method: 'POST', url: '/api/v1/builds/9999999/cancel' }),
        404,
        'not_found',
      );
    });

    it('records a cancel request for an active build for its owner to act on', async () => {
      const b = await makeBuild(api.t.db, p.id, { branch: 'active-cancel' });
      await claimNextBuilds(api.t.db, 'test-owner', 60_000, { global: 1000 });
      const res = await api.call('member', {
        method: 'POST',
        url: `/api/v1/builds/${b.id}/cancel`,
        payload: {},
      });
      expect(res.statusCode).toBe(200);
      const row = await rowWhere(api.t.db, 'builds', 'id', b.id);
      expect(row.cancel_requested_at).not.toBeNull();
    });

    it('approves and rejects the stage a build waits on, and answers 409 when it waits on nothing', async () => {
      const waiting = async (branch: string) => {
        const b = await makeBuild(api.t.db, p.id, { branch });
        await claimNextBuilds(api.t.db, 'test-owner', 60_000, { global: 1000 });
        await setBuildStatus(api.t.db, b.id, ['pending'], 'running');
        const [, gate] = await createBuildRecords(api.t.db, b.id, [
          { name: 'test', steps: ['unit'] },
          { name: 'deploy', steps: ['ship'] },
        ]);
        await openApproval(api.t.db, gate!.id);
        await setBuildStatus(api.t.db, b.id, ['running'], 'waiting');
        return { build: b, stageId: gate!.id };
      };
      const approval = async (stageId: number) => {
        const { approval, approval_by, approval_message } = await rowWhere(api.t.db, 'stages', 'id', stageId);
        return { approval, approval_by, approval_message };
      };

      const a = await waiting('approve-me');
      const approved = await api.call('member', {
        method: 'POST',
        url: `/api/v1/builds/${a.build.id}/approve`,
        payload: {},
      });
      expect(approved.statusCode).toBe(200);
      expect(await approval(a.stageId)).toEqual({
        approval: 'approved',
        approval_by: 'member-token',
        approval_message: null,
      });

      const r = await waiting('reject-me');
      const rejected = await api.call('member', {
        method: 'POST',
        url: `/api/v1/builds/${r.build.id}/reject`,
        payload: { message: 'not on a Friday' },
      });
      expect(rejected.statusCode).toBe(200);
      expect(await approval(r.stageId)).toEqual({
        approval: 'rejected',
        approval_by: 'member-token',
        approval_message: 'not on a Friday',
      });

      const queued = (await trigger({ branch: 'not-waiting' })).json<Build>();
      const before = await api.rowCounts();
      const error = expectError(
        await api.call('member', { method: 'POST', url: `/api/v1/builds/${queued.id}/approve` }),
        409,
        'conflict',
      );
      expect(error.message).toContain('not waiting');
      expectError(
        await api.call('member', {
          method: 'POST',
          url: `/api/v1/builds/${queued.id}/reject`,
          payload: { reason: 'x' },
        }),
        400,
        'invalid_request',
      );
      expect(await api.rowCounts()).toEqual(before);
    });

    it('re-runs a build as a new build of the same ref and commit', async () => {
      const original = (await trigger({ branch: 'rerun-me', commit: 'b'.repeat(40) })).json<Build>();
      const res = await api.call('member', { method: 'POST', url: `/api/v1/builds/${original.id}/rerun` });
      expect(res.statusCode).toBe(201);
      expect(res.json<Build>()).toMatchObject({
        branch: 'rerun-me',
        commit: 'b'.repeat(40),
        trigger: 'rerun',
        rerunOf: original.id,
        number: original.number + 1,
        status: 'queued',
      });
      expectError(
        await api.call('member', { method: 'POST', url: '/api/v1/builds/9999999/rerun' }),
        404,
        'not_found',
      );
    });
  });

  describe('tokens', () => {
    it('creates a token whose secret is shown once, lists tokens without secrets, and revokes', async () => {
      const res = await api.call('admin', {
        method: 'POST',
        url: '/api/v1/tokens',
        payload: { name: 'ci-bot', role: 'member' },
      });
      expect(res.statusCode).toBe(201);
      const created = res.json<TokenCreated>();
      expect(created).toMatchObject({ name: 'ci-bot', role: 'member', lastUsedAt: null });
      expect(created.token).toMatch(/^slw_/);
      expect((await verifyToken(api.t.db, created.token))?.name).toBe('ci-bot');

      const list = (await api.call('admin', { url: '/api/v1/tokens' })).json<TokenInfo[]>();
      expect(list.map((t) => t.name)).toContain('ci-bot');
      expect(JSON.stringify(list)).not.toContain(created.token);
      expect(Object.keys(list[0]!).sort()).toEqual(['createdAt', 'id', 'lastUsedAt', 'name', 'role']);

      expect(
        (await api.call('admin', { method: 'DELETE', url: `/api/v1/tokens/${created.id}` })).statusCode,
      ).toBe(204);
      expect(
        (await api.call('admin', { url: '/api/v1/tokens' })).json<TokenInfo[]>().map((t) => t.id),
      ).not.toContain(created.id);
      expectError(
        await api.call('admin', { method: 'DELETE', url: `/api/v1/tokens/${created.id}` }),
        404,
        'not_found',
      );
    });

    it('rejects a bad role and refuses to revoke the last admin token', async () => {
      const before = await api.rowCounts();
      const bad = expectError(
        await api.call('admin', {
          method: 'POST',
          url: '/api/v1/tokens',
          payload: { name: 'x', role: 'root' },
        }),
        400,
        'invalid_request',
      );
      expect(bad.message).toContain('body.role');
      const me = (await api.call('admin', { url: '/api/v1/whoami' })).json<TokenInfo>();
      expectError(
        await api.call('admin', { method: 'DELETE', url: `/api/v1/tokens/${me.id}` }),
        409,
        'conflict',
      );
      expect(await api.rowCounts()).toEqual(before);
      expect((await api.call('admin', { url: '/api/v1/whoami' })).statusCode).toBe(200);
    });
  });

  describe('errors and documents', () => {
    it('answers unknown routes with the error shape', async () => {
      for (const [method, url] of [
        ['GET', '/api/v1/nope'],
        ['POST', '/api/v1/builds'],
        ['GET', '/nope'],
      ] as const) {
        const error = expectError(await api.call('viewer', { method, url }), 404, 'not_found');
        expect(error.message).toContain(url);
      }
    });

    it('serves an OpenAPI 3 document with every route of the contract', async () => {
      const res = await api.call(null, { url: '/api/v1/openapi.json' });
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      const doc = res.json<{
        openapi: string;
        info: { title: string };
        paths: Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>;
        components: { securitySchemes: Record<string, unknown> };
      }>();
      expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
      expect(doc.info.title).toBe('Slipway API');
      expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
      for (const route of await contractRoutes()) {
        if (route.path === '/api/v1/openapi.json') continue;
        const operation = doc.paths[route.path]?.[route.method.toLowerCase()];
        expect(operation, `${route.method} ${route.path}`).toBeDefined();
        const isPublic = !route.path.startsWith('/api/');
        expect(operation!.security === undefined, route.path).toBe(isPublic);
        expect(Object.keys(operation!.responses)).toEqual(expect.arrayContaining(['4XX']));
      }
      const create = doc.paths['/api/v1/projects']!.post as unknown as {
        requestBody: {
          content: { 'application/json': { schema: { additionalProperties: boolean; required: string[] } } };
        };
      };
      expect(create.requestBody.content['application/json'].schema).toMatchObject({
        additionalProperties: false,
        required: ['slug', 'repoUrl'],
      });
    });

    it('exposes the metrics by name', async () => {
      api.metrics.buildFinished('success', 42);
      api.metrics.stepFinished('failure');
      api.metrics.webhookRejected('github', 'bad_signature');
      const res = await api.call(null, { url: '/metrics' });
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      for (const name of [
        'slipway_queue_depth',
        'slipway_running_builds',
        'slipway_build_duration_seconds_bucket',
        'slipway_step_outcomes_total{status="failure"} 1',
        'slipway_webhook_rejected_total{forge="github",reason="bad_signature"} 1',
      ]) {
        expect(res.body).toContain(name);
      }
      expect(res.body).toMatch(/^slipway_queue_depth \d+$/m);
    });

    it('answers health and readiness', async () => {
      expect((await api.call(null, { url: '/healthz' })).json()).toEqual({ status: 'ok' });
      expect((await api.call(null, { url: '/readyz' })).json()).toEqual({ status: 'ready' });
    });
  });
});

describe.each(DIALECTS)('queue route (%s)', (dialect) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(dialect, { globalLimit: 3 });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('lists active builds and says what each queued build waits for', async () => {
    const db = api.t.db;
    const limited = await makeProject(db, { slug: 'queue/limited', maxRunning: 1 });
    const free = await makeProject(db, { slug: 'queue/free' });
    const running = await makeBuild(db, limited.id, { branch: 'main' });
    await claimNextBuilds(db, 'test-owner', 60_000, { global: 3 });
    const sameBranch = await makeBuild(db, limited.id, { branch: 'main' });
    const overProject = await makeBuild(db, limited.id, { branch: 'dev' });
    const next1 = await makeBuild(db, free.id, { branch: 'a' });
    const behindNext1 = await makeBuild(db, free.id, { branch: 'a' });
    const next2 = await makeBuild(db, free.id, { branch: 'b' });
    const overGlobal = await makeBuild(db, free.id, { branch: 'c' });

    const queue = (await api.call('viewer', { url: '/api/v1/queue' })).json<Queue>();
    expect(queue.limits).toEqual({ global: 3 });
    expect(queue.running.map((b) => b.id)).toEqual([running.id]);
    expect(queue.queued.map((b) => [b.id, b.waitingFor])).toEqual([
      [sameBranch.id, 'branch_lock'],
      [overProject.id, 'project_limit'],
      [next1.id, null],
      [behindNext1.id, 'branch_lock'],
      [next2.id, null],
      [overGlobal.id, 'global_limit'],
    ]);

    // The prediction is what the scheduler then does.
    const claimed = await claimNextBuilds(db, 'test-owner', 60_000, { global: 3 });
    expect(claimed.map((b) => b.id)).toEqual([next1.id, next2.id]);
  });
});
