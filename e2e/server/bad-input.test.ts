import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiError, Build, Page, Project, TokenCreated, TokenInfo } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { cleanup, ServerProcess, type Answer, type Api } from './server-harness.js';

/**
 * Bad requests through a real `slipway server` process: each gets a 4xx with
 * `{error:{code,message}}` naming what is wrong, never a stack trace, and nothing is written.
 */
describe('slipway server: bad input', () => {
  let server: ServerProcess;
  let admin: Api;
  let member: Api;
  let viewer: Api;

  beforeAll(async () => {
    const repo = await TestRepo.create({ '.slipway.yml': 'steps:\n  - name: one\n    commands: ["true"]\n' });
    server = await ServerProcess.start({ executor: 'local' });
    admin = server.api();
    await admin.ok('POST', '/projects', { slug: 'acme/web', repoUrl: repo.url });
    const token = async (role: string) =>
      (await admin.ok<TokenCreated>('POST', '/tokens', { name: `e2e ${role}`, role })).token;
    member = server.api(await token('member'));
    viewer = server.api(await token('viewer'));
    // One real build, so that "nothing written" also covers an existing build's number.
    await admin.ok('POST', '/projects/acme/web/builds', { branch: 'main' });
  });
  afterAll(cleanup);

  /** Projects, builds and tokens as the API lists them: must not change through bad requests. */
  const snapshot = async () => ({
    projects: (await admin.ok<Page<Project>>('GET', '/projects?limit=500')).items.map(
      (p) => `${p.slug} ${p.updatedAt}`,
    ),
    builds: (await admin.ok<Page<Build>>('GET', '/builds?limit=500')).items.map(
      (b) => `${b.project}#${b.number}`,
    ),
    tokens: (await admin.ok<TokenInfo[]>('GET', '/tokens')).map((t) => `${t.id} ${t.role}`),
  });

  function expectError(answer: Answer, status: number, code: string, mentions?: RegExp): void {
    expect(answer.status, answer.text).toBe(status);
    expect(answer.contentType).toMatch(/^application\/json/);
    const body = answer.body as ApiError;
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    expect(body.error.message.length).toBeGreaterThan(0);
    if (mentions) expect(body.error.message + JSON.stringify(body.error.details ?? '')).toMatch(mentions);
    // A user never sees a stack trace or a file of the server.
    expect(answer.text).not.toMatch(/\n\s+at |\.ts:\d+|node_modules|dist\//);
  }

  let before: Awaited<ReturnType<typeof snapshot>>;
  beforeAll(async () => {
    before = await snapshot();
  });

  it('invalid JSON and unknown or wrongly typed fields: 400 naming the field', async () => {
    expectError(
      await admin.request('POST', '/projects', { raw: '{"slug": "acme/api", ' }),
      400,
      'invalid_json',
    );
    expectError(
      await admin.request('POST', '/projects/acme/web/builds', { raw: '{branch: main}' }),
      400,
      'invalid_json',
    );
    // Unknown and wrongly typed fields name the field.
    expectError(
      await admin.request('POST', '/projects', {
        json: { slug: 'acme/api', repoUrl: 'file:///tmp/x', colour: 'red' },
      }),
      400,
      'invalid_request',
      /colour/,
    );
    expectError(
      await admin.request('POST', '/projects/acme/web/builds', { json: { branch: 'main', priority: 9 } }),
      400,
      'invalid_request',
      /priority/,
    );
    expectError(
      await admin.request('POST', '/projects/acme/web/builds', { json: { branch: 42 } }),
      400,
      'invalid_request',
      /branch/,
    );
    expectError(
      await admin.request('POST', '/projects', { json: { slug: 'no-slash', repoUrl: 'file:///tmp/x' } }),
      400,
      'invalid_request',
      /slug/,
    );
    expectError(
      await admin.request('POST', '/projects', {
        json: { slug: 'acme/api', repoUrl: 'file:///tmp/x', branchFilter: '(' },
      }),
      400,
      'invalid_request',
      /branchFilter|regular expression|regex/i,
    );
    expectError(await admin.request('GET', '/builds?limit=100000'), 400, 'invalid_request', /limit/);
    expectError(await admin.request('GET', '/builds/abc'), 400, 'invalid_request');
  });

  it('a body over the limit: 413; a body that is not JSON: 415', async () => {
    const huge = JSON.stringify({ slug: 'acme/huge', repoUrl: `file:///${'x'.repeat(2 * 1024 * 1024)}` });
    expectError(await admin.request('POST', '/projects', { raw: huge }), 413, 'payload_too_large');
    expectError(
      await admin.request('POST', '/projects/acme/web/builds', {
        raw: 'branch=main',
        contentType: 'text/plain',
      }),
      415,
      'unsupported_media_type',
    );
  });

  it('unknown project, build or route: 404', async () => {
    expectError(
      await admin.request('POST', '/projects/acme/nope/builds', { json: { branch: 'main' } }),
      404,
      'not_found',
      /acme\/nope/,
    );
    expectError(await admin.request('GET', '/projects/acme/nope'), 404, 'not_found');
    expectError(await admin.request('GET', '/builds/999999'), 404, 'not_found');
    expectError(await admin.request('POST', '/builds/999999/cancel'), 404, 'not_found');
    expectError(await admin.request('POST', '/nothing/here', { json: {} }), 404, 'not_found');
  });

  it('no token or a bad one: 401; too small a role: 403', async () => {
    expectError(
      await admin.request('POST', '/projects/acme/web/builds', { json: { branch: 'main' }, token: null }),
      401,
      'unauthorized',
    );
    expectError(
      await admin.request('POST', '/projects/acme/web/builds', {
        json: { branch: 'main' },
        token: 'slw_not-a-real-token',
      }),
      401,
      'unauthorized',
    );
    expectError(
      await admin.request('GET', '/projects', {
        token: null,
        headers: { authorization: `Basic ${admin.token}` },
      }),
      401,
      'unauthorized',
    );
    // Roles: viewers read, members trigger, admins manage projects and tokens.
    expectError(
      await viewer.request('POST', '/projects/acme/web/builds', { json: { branch: 'main' } }),
      403,
      'forbidden',
    );
    expectError(
      await member.request('POST', '/projects', { json: { slug: 'acme/api', repoUrl: 'file:///tmp/x' } }),
      403,
      'forbidden',
    );
    expectError(await member.request('DELETE', '/projects/acme/web'), 403, 'forbidden');
    expectError(
      await member.request('PATCH', '/projects/acme/web', { json: { maxRunning: 1 } }),
      403,
      'forbidden',
    );
    expectError(
      await member.request('POST', '/tokens', { json: { name: 'x', role: 'admin' } }),
      403,
      'forbidden',
    );
    expectError(await viewer.request('POST', '/builds/1/cancel'), 403, 'forbidden');
  });

  it('a duplicate project: 409', async () => {
    expectError(
      await admin.request('POST', '/projects', { json: { slug: 'acme/web', repoUrl: 'file:///tmp/x' } }),
      409,
      'conflict',
    );
  });

  it('wrote nothing, and the server still answers', async () => {
    expect(await snapshot()).toEqual(before);
    // The server is still fine: a good request right after works.
    expect((await viewer.request('GET', '/projects/acme/web')).status).toBe(200);
    expect(server.running).toBe(true);
  });
});
