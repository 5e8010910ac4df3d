import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../blobs/fs-blob-store.js';
import { createBuildRecords, getBuild, getBuildRecords } from '../store/index.js';
import { recordReusedSteps } from '../store/rerun.js';
import type { Build, Project, Status } from '../store/index.js';
import { DIALECTS } from '../store/testing/dialects.js';
import { makeBuild, makeProject } from '../store/testing/fixtures.js';
import { rowsWhere, updateRowsWhere } from '../store/testing/inspect.js';
import { artifactKey, listArtifacts, recordArtifact } from './artifacts/store.js';
import { BlobLogStore } from './logs/blob-log-store.js';
import { applyRetention, registerRetentionRoutes, setProjectRetention, startRetention } from './retention.js';
import { startPluginApi } from './testing/plugin-api.js';
import type { PluginApi } from './testing/plugin-api.js';

const DAY = 24 * 60 * 60 * 1000;
const NOW = 1_800_000_000_000;

describe.each(DIALECTS)('retention (%s)', (dialect) => {
  let api: PluginApi;
  let dir: string;
  let blobs: FsBlobStore;
  let logs: BlobLogStore;
  const defaults = { keepBuilds: null as number | null, keepDays: null as number | null };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-retention-'));
    blobs = new FsBlobStore(dir);
    logs = new BlobLogStore(blobs);
    api = await startPluginApi(dialect, (db) => [
      (app) => registerRetentionRoutes(app, { db, defaults: { keepBuilds: 50, keepDays: null } }),
    ]);
  });
  afterAll(async () => {
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A build with a status, an age, records, a log line and an artifact. */
  async function build(project: Project, status: Status, ageDays: number): Promise<Build> {
    const b = await makeBuild(api.t.db, project.id, {}, NOW - ageDays * DAY);
    const finished = ['success', 'failure', 'error', 'cancelled', 'skipped', 'lost'].includes(status);
    await updateRowsWhere(api.t.db, 'builds', 'id', b.id, {
      status,
      finished_at: finished ? NOW - ageDays * DAY : null,
      created_at: NOW - ageDays * DAY,
    });
    await createBuildRecords(api.t.db, b.id, [{ name: 'test', steps: ['unit'] }]);
    await logs.append(b.id, [
      { seq: 1, stage: 'test', step: 'unit', stream: 'stdout', n: 1, time: 0, text: `log of ${b.id}` },
    ]);
    await blobs.put(artifactKey(b.id, 'dist/app.tgz'), `artifact of ${b.id}`);
    await recordArtifact(api.t.db, {
      buildId: b.id,
      step: 'test/unit',
      path: 'dist/app.tgz',
      size: 10,
      sha256: 'x',
      createdAt: NOW,
    });
    return b;
  }

  async function gone(b: Build): Promise<boolean> {
    const row = await getBuild(api.t.db, b.id);
    const stages = await rowsWhere(api.t.db, 'stages', 'build_id', b.id);
    const steps = await rowsWhere(api.t.db, 'steps', 'build_id', b.id);
    const artifacts = await listArtifacts(api.t.db, b.id);
    const blob = await blobs.head(artifactKey(b.id, 'dist/app.tgz'));
    const logSeq = await logs.lastSeq(b.id);
    const parts = [
      row === undefined,
      stages.length === 0,
      steps.length === 0,
      artifacts.length === 0,
      blob === undefined,
      logSeq === 0,
    ];
    if (parts.every(Boolean)) return true;
    if (parts.every((p) => !p)) return false;
    throw new Error(`build ${b.id} is half deleted: ${JSON.stringify(parts)}`);
  }

  const run = (policy: { keepBuilds?: number | null; keepDays?: number | null }) =>
    applyRetention({ db: api.t.db, logs, blobs, defaults: { ...defaults, ...policy }, now: () => NOW });

  it('keeps the newest N builds, deleting older finished ones with their logs, artifacts and records', async () => {
    const project = await makeProject(api.t.db);
    const builds = [];
    for (let i = 0; i < 6; i++) builds.push(await build(project, i % 2 ? 'failure' : 'success', 10 - i));
    const deleted = await run({ keepBuilds: 3 });
    expect(deleted.sort((a, b) => a - b)).toEqual(builds.slice(0, 3).map((b) => b.id));
    for (const b of builds.slice(0, 3)) expect(await gone(b)).toBe(true);
    for (const b of builds.slice(3)) expect(await gone(b)).toBe(false);
    expect(await run({ keepBuilds: 3 })).toEqual([]);
  });

  it('never deletes queued or active builds, which count among the newest N', async () => {
    const project = await makeProject(api.t.db);
    const old = await build(project, 'running', 100);
    const queued = await build(project, 'queued', 90);
    const waiting = await build(project, 'waiting', 80);
    const finishedOld = await build(project, 'success', 70);
    const recent = await build(project, 'running', 1);
    await run({ keepBuilds: 1, keepDays: 1 });
    for (const b of [old, queued, waiting, recent]) expect(await gone(b)).toBe(false);
    expect(await gone(finishedOld)).toBe(true);
  });

  it('keeps builds of the last D days; with N and D both set a build goes only when outside both', async () => {
    const project = await makeProject(api.t.db);
    const ancient = await build(project, 'success', 40);
    const old = await build(project, 'success', 20);
    const recent = await build(project, 'success', 2);
    const newest = await build(project, 'failure', 1);
    await run({ keepDays: 30, keepBuilds: 1 });
    expect([await gone(ancient), await gone(old), await gone(recent), await gone(newest)]).toEqual([
      true,
      false,
      false,
      false,
    ]);
    await run({ keepDays: 10 });
    expect([await gone(old), await gone(recent), await gone(newest)]).toEqual([true, false, false]);
    // A quiet project keeps its last builds however old they are.
    await run({ keepDays: 1, keepBuilds: 2 });
    expect([await gone(recent), await gone(newest)]).toEqual([false, false]);
  });

  it("uses a project's own retention over the server's defaults, field by field", async () => {
    const strict = await makeProject(api.t.db);
    const lax = await makeProject(api.t.db);
    const strictBuilds = [
      await build(strict, 'success', 3),
      await build(strict, 'success', 2),
      await build(strict, 'success', 1),
    ];
    const laxBuilds = [
      await build(lax, 'success', 3),
      await build(lax, 'success', 2),
      await build(lax, 'success', 1),
    ];
    await setProjectRetention(api.t.db, strict.id, { keepBuilds: 1 });
    await run({ keepBuilds: 10 });
    expect(await Promise.all(strictBuilds.map(gone))).toEqual([true, true, false]);
    expect(await Promise.all(laxBuilds.map(gone))).toEqual([false, false, false]);
  });

  it("keeps a build's artifact bytes while a re-run's reused artifact points at them, and removes them with it", async () => {
    const project = await makeProject(api.t.db);
    const first = await build(project, 'failure', 3);
    const rerun = await build(project, 'failure', 2);
    await updateRowsWhere(api.t.db, 'builds', 'id', rerun.id, { rerun_of: first.id, rerun_failed: 1 });
    // The re-run reuses the first build's test/unit: its artifact row points at the first's bytes.
    await blobs.put(artifactKey(first.id, 'out/app.bin'), 'shared');
    await recordArtifact(api.t.db, {
      buildId: first.id,
      step: 'test/unit',
      path: 'out/app.bin',
      size: 6,
      sha256: 'x',
      createdAt: NOW,
    });
    const [stage] = await getBuildRecords(api.t.db, rerun.id);
    await recordReusedSteps(api.t.db, rerun.id, first.id, [
      {
        stepId: stage!.steps[0]!.id,
        key: 'test/unit',
        from: { buildId: first.id, number: first.number },
        exitCode: 0,
        attempts: 1,
        durationMs: 1,
      },
    ]);
    await build(project, 'success', 1);

    // (Other tests' projects lose builds to these passes too.)
    const firstPass = await run({ keepBuilds: 2 });
    expect(firstPass).toContain(first.id);
    expect(firstPass).not.toContain(rerun.id);
    expect(await getBuild(api.t.db, first.id)).toBeUndefined();
    expect(await blobs.head(artifactKey(first.id, 'out/app.bin'))).toBeDefined();
    expect(await run({ keepBuilds: 1 })).toContain(rerun.id);
    expect(await blobs.head(artifactKey(first.id, 'out/app.bin'))).toBeUndefined();
    expect(await blobs.head(artifactKey(first.id, 'dist/app.tgz'))).toBeUndefined();
    expect(await gone(rerun)).toBe(true);
  });

  it('deletes nothing without a policy', async () => {
    const project = await makeProject(api.t.db);
    const b = await build(project, 'success', 1000);
    await run({});
    expect(await gone(b)).toBe(false);
  });

  it('runs in the background until stopped, reporting failures without stopping', async () => {
    const project = await makeProject(api.t.db);
    const b1 = await build(project, 'success', 5);
    const b2 = await build(project, 'success', 4);
    const seen: number[][] = [];
    const errors: unknown[] = [];
    let failOnce = true;
    const flaky = {
      ...logs,
      append: logs.append.bind(logs),
      read: logs.read.bind(logs),
      lastSeq: logs.lastSeq.bind(logs),
      remove: (id: number) => {
        if (failOnce) {
          failOnce = false;
          return Promise.reject(new Error('log storage unreachable'));
        }
        return logs.remove(id);
      },
    };
    const stop = startRetention(
      {
        db: api.t.db,
        logs: flaky,
        blobs,
        defaults: { keepBuilds: 1 },
        now: () => NOW,
        onDeleted: (ids) => seen.push(ids),
        onError: (e) => errors.push(e),
      },
      30,
    );
    const deadline = Date.now() + 10_000;
    // Polled by the row alone: a pass may be between deleting the bytes and the row.
    while ((await getBuild(api.t.db, b1.id)) !== undefined && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    await stop();
    expect(errors.map(String)).toEqual(['Error: log storage unreachable']);
    expect(await gone(b1)).toBe(true);
    expect(await gone(b2)).toBe(false);
    expect(seen.flat()).toContain(b1.id);
  });

  it('serves and sets a project retention over the API (admin to set)', async () => {
    const project = await makeProject(api.t.db);
    const url = `/api/v1/projects/${project.slug}/retention`;
    expect((await api.call('viewer', { method: 'GET', url })).json()).toEqual({
      keepBuilds: null,
      keepDays: null,
      effective: { keepBuilds: 50, keepDays: null },
    });
    expect((await api.call('member', { method: 'PUT', url, payload: { keepDays: 7 } })).statusCode).toBe(403);
    expect((await api.call('admin', { method: 'PUT', url, payload: { keepDays: 0 } })).statusCode).toBe(400);
    const put = await api.call('admin', { method: 'PUT', url, payload: { keepDays: 7 } });
    expect(put.json()).toEqual({ keepBuilds: null, keepDays: 7, effective: { keepBuilds: 50, keepDays: 7 } });
    expect((await api.call('viewer', { method: 'GET', url })).json()).toMatchObject({ keepDays: 7 });
  });
});
