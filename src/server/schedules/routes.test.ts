import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Schedule } from '../../contract/schedules.js';
import {
  createProject,
  createSchedule,
  createToken,
  type Project,
  type TokenRole,
} from '../../store/index.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { buildApp } from '../api/app.js';
import type { App } from '../api/context.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { LogHub } from '../logs/log-hub.js';
import { Metrics } from '../metrics.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';
import { MAX_SCHEDULES_PER_PROJECT, registerScheduleRoutes } from './routes.js';

/** 2026-03-28 12:00:30 UTC: the day before Berlin's clocks go forward. */
const NOW = Date.parse('2026-03-28T12:00:30Z');

describe('schedules API (sqlite, the real API app)', () => {
  let t: TestDatabase;
  let app: App;
  let dir: string;
  let project: Project;
  let base: string;
  const tokens = {} as Record<TokenRole, string>;
  const api = {
    t: undefined as unknown as TestDatabase,
    call: (role: TokenRole, options: InjectOptions) =>
      app.inject({ ...options, headers: { authorization: `Bearer ${tokens[role]}` } }),
  };

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    api.t = t;
    dir = await mkdtemp(join(tmpdir(), 'slipway-schedules-api-'));
    app = buildApp({
      db: t.db,
      control: new DatabaseBuildControl(t.db),
      logs: new FsLogStore(dir),
      hub: new LogHub(),
      metrics: new Metrics({ processMetrics: false }),
      globalLimit: 2,
      apiPlugins: [(scope) => registerScheduleRoutes(scope, { db: t.db, now: () => NOW })],
    });
    await app.ready();
    for (const role of ['admin', 'member', 'viewer'] as const)
      tokens[role] = (await createToken(t.db, { name: role, role })).token;
    project = await createProject(t.db, {
      slug: 'acme/nightly',
      repoUrl: 'https://git.example/acme/n.git',
    });
    base = `/api/v1/projects/${project.slug}/schedules`;
  });
  afterAll(async () => {
    await app?.close();
    await t?.destroy();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const post = (body: unknown, role: 'admin' | 'member' | 'viewer' = 'member') =>
    api.call(role, { method: 'POST', url: base, payload: body as Record<string, unknown> });

  it('adds, lists, disables, enables and removes a schedule; viewers read, members change', async () => {
    const created = await post({
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin',
      branch: 'main',
      name: 'nightly',
    });
    expect(created.statusCode).toBe(201);
    const schedule = created.json<Schedule>();
    expect(schedule).toMatchObject({
      project: 'acme/nightly',
      name: 'nightly',
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin',
      branch: 'main',
      enabled: true,
      nextRunAt: '2026-03-29T01:00:00.000Z',
      lastRunAt: null,
      lastBuild: null,
    });

    const listed = await api.call('viewer', { method: 'GET', url: base });
    expect(listed.statusCode).toBe(200);
    expect(listed.json<Schedule[]>().map((s) => s.id)).toEqual([schedule.id]);
    expect((await post({ cron: '@daily' }, 'viewer')).statusCode).toBe(403);

    const url = `${base}/${schedule.id}`;
    const off = await api.call('member', { method: 'PATCH', url, payload: { enabled: false } });
    expect(off.json<Schedule>()).toMatchObject({ enabled: false, nextRunAt: null });
    const on = await api.call('member', {
      method: 'PATCH',
      url,
      payload: { enabled: true, cron: '@hourly' },
    });
    expect(on.json<Schedule>()).toMatchObject({
      enabled: true,
      cron: '@hourly',
      nextRunAt: '2026-03-28T13:00:00.000Z',
    });

    expect((await api.call('member', { method: 'DELETE', url })).statusCode).toBe(204);
    expect((await api.call('member', { method: 'DELETE', url })).statusCode).toBe(404);
    expect((await api.call('viewer', { method: 'GET', url: base })).json()).toEqual([]);
  });

  it('defaults to branch main, time zone UTC', async () => {
    const schedule = (await post({ cron: '30 2 * * 1' })).json<Schedule>();
    expect(schedule).toMatchObject({
      branch: 'main',
      timezone: 'UTC',
      name: null,
      nextRunAt: '2026-03-30T02:30:00.000Z',
    });
  });

  it.each([
    [
      { cron: '0 25 * * *' },
      'body.cron',
      'body.cron: field 2 (hour) "25" at column 3: out of range; allowed: 0-23',
    ],
    [
      { cron: '0 3 * *' },
      'body.cron',
      'body.cron: expected 5 fields (minute hour day-of-month month day-of-week) or an alias such as @daily, found 4 in "0 3 * *"',
    ],
    [
      { cron: '0 3 * * *', timezone: 'Europe/Atlantis' },
      'body.timezone',
      'body.timezone: unknown time zone "Europe/Atlantis": expected an IANA name such as UTC or Europe/Berlin',
    ],
    [
      { cron: '0 3 * * *', branch: 'main; rm -rf /' },
      'body.branch',
      'body.branch: "main; rm -rf /" is not a valid branch name',
    ],
    [
      { cron: '0 3 * * *', name: 'two\nlines' },
      'body.name',
      'body.name: expected one line of text without control characters',
    ],
  ])('refuses %j with a 400 naming %s, writing nothing', async (body, path, message) => {
    const before = (await api.call('viewer', { method: 'GET', url: base })).json<Schedule[]>().length;
    const answer = await post(body);
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toEqual({
      error: {
        code: 'invalid_request',
        message,
        details: { fields: [{ path, message: message.slice(path.length + 2) }] },
      },
    });
    expect((await api.call('viewer', { method: 'GET', url: base })).json<Schedule[]>()).toHaveLength(before);
  });

  it("refuses a bad expression in a change too, and unknown fields; 404 for another project's id", async () => {
    const schedule = (await post({ cron: '@daily' })).json<Schedule>();
    const url = `${base}/${schedule.id}`;
    const bad = await api.call('member', { method: 'PATCH', url, payload: { cron: '*/0 * * * *' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { message: string } }>().error.message).toBe(
      'body.cron: field 1 (minute) "*/0" at column 1: a step (/n) must be a whole number from 1',
    );
    const unknown = await api.call('member', { method: 'PATCH', url, payload: { every: 'day' } });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.body).not.toMatch(/at .*\.ts:\d+/);
    const other = await createProject(api.t.db, {
      slug: 'acme/other',
      repoUrl: 'https://git.example/acme/o.git',
    });
    const foreign = await api.call('member', {
      method: 'PATCH',
      url: `/api/v1/projects/${other.slug}/schedules/${schedule.id}`,
      payload: { enabled: false },
    });
    expect(foreign.statusCode).toBe(404);
  });

  it('refuses a schedule past the most a project may have, with a 409', async () => {
    const full = await createProject(t.db, { slug: 'acme/full', repoUrl: 'https://git.example/acme/f.git' });
    for (let i = 0; i < MAX_SCHEDULES_PER_PROJECT; i++) {
      const s = { cron: '@daily', timezone: 'UTC', branch: 'main', enabled: false, nextRunAt: null };
      await createSchedule(t.db, { projectId: full.id, name: null, ...s });
    }
    const answer = await api.call('member', {
      method: 'POST',
      url: `/api/v1/projects/acme/full/schedules`,
      payload: { cron: '@daily' },
    });
    expect(answer.statusCode).toBe(409);
    expect(answer.json<{ error: { message: string } }>().error.message).toBe(
      `acme/full has ${MAX_SCHEDULES_PER_PROJECT} schedules, the most a project may have; remove one first`,
    );
  });
});
