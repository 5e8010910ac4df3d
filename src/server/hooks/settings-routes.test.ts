import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createProject,
  createToken,
  storedHookSecret,
  type Project,
  type TokenRole,
} from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { buildApp } from '../api/app.js';
import type { App } from '../api/context.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { LogHub } from '../logs/log-hub.js';
import { Metrics } from '../metrics.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';
import { registerHookRoutes } from './routes.js';
import { hookSettingsRoutes } from './settings-routes.js';
import { signBody } from './signatures.js';
import { hookSecret, type SecretSealer } from './store.js';

/** A stand-in for the secrets store's cipher: reversible, and visibly not the plain text. */
const sealer: SecretSealer = {
  seal: (plain) => `sealed:${Buffer.from(plain).toString('base64')}`,
  open: (sealed) => Buffer.from(sealed.slice('sealed:'.length), 'base64').toString(),
};

describe.each(DIALECTS)('webhook settings API (%s, the real API app)', (dialect) => {
  let t: TestDatabase;
  let app: App;
  let dir: string;
  let project: Project;
  const tokens = {} as Record<TokenRole, string>;

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
    dir = await mkdtemp(join(tmpdir(), 'slipway-hook-settings-'));
    const control = new DatabaseBuildControl(t.db);
    app = buildApp({
      db: t.db,
      control,
      logs: new FsLogStore(dir),
      hub: new LogHub(),
      metrics: new Metrics({ processMetrics: false }),
      globalLimit: 2,
    });
    // What the server does: the settings under /api/v1 (its auth and errors), the hooks beside.
    void app.register(
      (api, _options, done) => {
        hookSettingsRoutes(api, { db: t.db, sealer });
        done();
      },
      { prefix: '/api/v1' },
    );
    registerHookRoutes(app, { db: t.db, control, sealer });
    await app.ready();
    for (const role of ['admin', 'viewer'] as const)
      tokens[role] = (await createToken(t.db, { name: role, role })).token;
    project = await createProject(t.db, {
      slug: 'acme/settings',
      repoUrl: 'https://git.example.com/acme/settings.git',
    });
  });

  afterAll(async () => {
    await app.close();
    await t.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const call = (
    role: TokenRole | null,
    method: 'GET' | 'PATCH' | 'POST' | 'DELETE',
    url: string,
    body?: unknown,
  ) =>
    app.inject({
      method,
      url: `/api/v1/projects/acme/settings${url}`,
      headers: role === null ? {} : { authorization: `Bearer ${tokens[role]}` },
      ...(body !== undefined && { payload: body as Record<string, unknown> }),
    });

  it('shows the defaults, then changes them as admin; the secret is stored sealed and never shown', async () => {
    const initial = await call('viewer', 'GET', '/hooks');
    expect(initial.json()).toEqual({
      secretSet: false,
      buildTags: true,
      buildPullRequests: true,
      scripts: null,
      snapshot: null,
    });
    expect((await call('viewer', 'PATCH', '/hooks', { buildTags: false })).statusCode).toBe(403);
    expect((await call(null, 'GET', '/hooks')).statusCode).toBe(401);
    const changed = await call('admin', 'PATCH', '/hooks', {
      secret: 'a long webhook secret',
      buildTags: false,
    });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({ secretSet: true, buildTags: false, buildPullRequests: true });
    expect(changed.body).not.toContain('a long webhook secret');
    expect(await storedHookSecret(t.db, project.id)).toEqual({
      stored: sealer.seal('a long webhook secret'),
      sealed: true,
    });
    expect(await hookSecret(t.db, project.id, sealer)).toBe('a long webhook secret');
  });

  it('a delivery signed with the sealed secret is accepted', async () => {
    const body = JSON.stringify({ project: 'acme/settings', branch: 'main' });
    const res = await app.inject({
      method: 'POST',
      url: '/hooks/generic',
      headers: {
        'content-type': 'application/json',
        'x-slipway-signature': signBody('a long webhook secret', body),
      },
      payload: body,
    });
    expect(res.statusCode).toBe(201);
  });

  it('refuses bad settings with the field named', async () => {
    const short = await call('admin', 'PATCH', '/hooks', { secret: 'short' });
    expect(short.statusCode).toBe(400);
    expect(short.json()).toMatchObject({ error: { code: 'invalid_request' } });
    const url = await call('admin', 'PATCH', '/hooks', {
      scripts: { repoUrl: '--upload-pack=touch /tmp/x' },
    });
    expect(url.statusCode).toBe(400);
    expect(url.json()).toMatchObject({
      error: { message: expect.stringMatching(/scripts\.repoUrl.*is not a git repository URL/) as unknown },
    });
    const path = await call('admin', 'PATCH', '/hooks', {
      scripts: { repoUrl: 'https://git.example.com/scripts.git', path: '../etc' },
    });
    expect(path.statusCode).toBe(400);
    const refresh = await call('admin', 'POST', '/hooks/scripts/refresh');
    expect(refresh.statusCode).toBe(400);
    expect(refresh.json()).toMatchObject({
      error: { message: 'project acme/settings has no build-scripts repository' },
    });
  });

  it('points the project at a scripts repository and back', async () => {
    const set = await call('admin', 'PATCH', '/hooks', {
      scripts: { repoUrl: 'https://git.example.com/scripts.git', path: './teams/web/' },
    });
    expect(set.json()).toMatchObject({
      scripts: { repoUrl: 'https://git.example.com/scripts.git', path: 'teams/web', ref: 'main' },
      snapshot: null,
    });
    const unset = await call('admin', 'PATCH', '/hooks', { scripts: null });
    expect(unset.json()).toMatchObject({ scripts: null });
  });

  it('adds, lists and removes notification targets', async () => {
    const added = await call('admin', 'POST', '/notify-targets', {
      url: 'https://hooks.slack.example/T000/B000/XXX',
      slack: true,
      events: ['failed'],
    });
    expect(added.statusCode).toBe(201);
    const target = added.json<{ id: number }>();
    expect(target).toMatchObject({ global: false, slack: true, events: ['failed'] });
    expect((await call('viewer', 'GET', '/notify-targets')).json()).toEqual([
      expect.objectContaining({ id: target.id }) as unknown,
    ]);
    const bad = await call('admin', 'POST', '/notify-targets', { url: 'file:///etc/passwd' });
    expect(bad.statusCode).toBe(400);
    expect((await call('admin', 'DELETE', `/notify-targets/${target.id}`)).statusCode).toBe(204);
    expect((await call('admin', 'DELETE', `/notify-targets/${target.id}`)).statusCode).toBe(404);
    expect((await call('viewer', 'GET', '/notify-targets')).json()).toEqual([]);
  });
});
