import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createProject,
  getBuild,
  getBuildRecords,
  setBuildStatus,
  isTerminalStatus,
  claimNextBuilds,
  type Build,
  type Project,
} from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { LogHub } from '../logs/log-hub.js';
import { TestRepo } from '../testing/git-repo.js';
import { localScheduler } from '../testing/local-scheduler.js';
import type { DatabaseBuildControl } from './build-control.js';
import { ExecutorIds } from './executor-pool.js';
import { reconcile } from './reconciler.js';
import type { Scheduler } from './scheduler.js';
import { until } from '../../testing/until.js';

const PIPELINE = `
stages:
  - name: test
    steps:
      - name: unit
        commands:
          - 'echo "hello from \${SLIPWAY_PROJECT} #\${SLIPWAY_BUILD_NUMBER} on \${SLIPWAY_BRANCH}"'
          - cat greeting.txt
  - name: deploy
    approval: true
    steps:
      - name: ship
        commands: [echo shipped]
`;

describe.each(DIALECTS)('scheduler and build runs (%s, real git, local executor)', (dialect) => {
  let t: TestDatabase;
  let scheduler: Scheduler;
  let control: DatabaseBuildControl;
  let logs: FsLogStore;
  let repo: TestRepo;
  let project: Project;
  const hub = new LogHub();

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
    const dataDir = await mkdtemp(join(tmpdir(), 'slipway-sched-'));
    ({ scheduler, control } = localScheduler(t.db, dataDir, {
      hub,
      logs: (logs = new FsLogStore(join(dataDir, 'logs'))),
    }));
    repo = await TestRepo.create({ '.slipway.yml': PIPELINE, 'greeting.txt': 'hi from the repo\n' });
    project = await createProject(t.db, { slug: 'acme/web', repoUrl: repo.url });
    scheduler.start();
  });

  afterAll(async () => {
    await scheduler.stop();
    await t.destroy();
  });

  const finished = (id: number) =>
    until(async () => {
      const build = await getBuild(t.db, id);
      return build && isTerminalStatus(build.status) ? build : undefined;
    });
  const text = async (id: number) => (await logs.read(id, 0)).map((l) => l.text);

  it('clones the commit, runs the pipeline, records stages and steps, stores the log', async () => {
    const build = await control.trigger(project, {
      branch: 'main',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'ana',
    });
    expect(build.status).toBe('queued');
    const waiting = await until(async () =>
      (await getBuild(t.db, build.id))?.status === 'waiting' ? true : undefined,
    );
    expect(waiting).toBe(true);
    await control.decide(build.id, 'approve', 'ana');
    const done = await finished(build.id);
    expect(done.status).toBe('success');
    expect(done.commitSha).toBe(repo.git('rev-parse', 'HEAD'));
    expect(done.executor).toBe('local');
    const lines = await text(build.id);
    expect(lines).toContain(`hello from acme/web #${build.number} on main`);
    expect(lines).toContain('hi from the repo');
    expect(lines).toContain('shipped');
    const records = await getBuildRecords(t.db, build.id);
    expect(
      records.map((s) => [s.name, s.status, s.steps.map((st) => [st.name, st.status, st.exitCode])]),
    ).toEqual([
      ['test', 'success', [['unit', 'success', 0]]],
      ['deploy', 'success', [['ship', 'success', 0]]],
    ]);
    expect(records[0]!.steps[0]!.logLines).toBe(2);
  });

  it('a rejected approval fails the build', async () => {
    const build = await control.trigger(project, {
      branch: 'main',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'ana',
    });
    await until(async () => ((await getBuild(t.db, build.id))?.status === 'waiting' ? true : undefined));
    await control.decide(build.id, 'reject', 'bo', 'not today');
    const done = await finished(build.id);
    expect(done).toMatchObject({
      status: 'failure',
      reason: { code: 'approval_rejected', message: 'rejected by bo — "not today"' },
    });
    await expect(control.decide(build.id, 'approve', 'bo')).rejects.toThrow(/not waiting for approval/);
  });

  it('an invalid pipeline fails the build with the compiler errors in its log', async () => {
    repo.branch('broken');
    await repo.commit({ '.slipway.yml': 'steps:\n  - name: x\n    comands: [true]\n' });
    const build = await control.trigger(project, {
      branch: 'broken',
      event: 'push',
      trigger: 'webhook',
      triggeredBy: 'hook',
    });
    const done = await finished(build.id);
    expect(done.status).toBe('failure');
    expect(done.reason?.code).toBe('pipeline_invalid');
    expect(await text(build.id)).toContain(
      '.slipway.yml:3:5: unknown key "comands" at steps[0]; did you mean "commands"?',
    );
    repo.git('checkout', '--quiet', 'main');
  });

  it("an unknown branch is an error with git's message", async () => {
    const build = await control.trigger(project, {
      branch: 'nope',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'ana',
    });
    const done = await finished(build.id);
    expect(done).toMatchObject({ status: 'error', reason: { code: 'checkout' } });
  });

  it('queue policy: one running build per branch, the rest wait in order; cancel works on queued and running', async () => {
    repo.branch('slow');
    await repo.commit({ '.slipway.yml': 'steps:\n  - name: wait\n    commands: ["sleep 30"]\n' });
    repo.git('checkout', '--quiet', 'main');
    const first = await control.trigger(project, {
      branch: 'slow',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'a',
    });
    const second = await control.trigger(project, {
      branch: 'slow',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'a',
    });
    await until(async () => ((await getBuild(t.db, first.id))?.status === 'running' ? true : undefined));
    expect((await getBuild(t.db, second.id))?.status).toBe('queued');
    const cancelledQueued = await control.cancel(second.id, 'bo');
    expect(cancelledQueued).toMatchObject({ status: 'cancelled', reason: { message: 'cancelled by bo' } });
    await control.cancel(first.id, 'bo');
    expect(await finished(first.id)).toMatchObject({
      status: 'cancelled',
      reason: { message: 'cancelled by bo' },
    });
    await expect(control.cancel(first.id, 'bo')).rejects.toThrow(/already finished/);
  });

  it('supersede policy: a newer build of the branch cancels the older running one', async () => {
    const p2 = await createProject(t.db, {
      slug: 'acme/fast',
      repoUrl: repo.url,
      concurrencyPolicy: 'supersede',
    });
    const older = await control.trigger(p2, {
      branch: 'slow',
      event: 'push',
      trigger: 'webhook',
      triggeredBy: 'hook',
    });
    await until(async () => ((await getBuild(t.db, older.id))?.status === 'running' ? true : undefined));
    const newer = await control.trigger(p2, {
      branch: 'slow',
      event: 'push',
      trigger: 'webhook',
      triggeredBy: 'hook',
    });
    expect(await finished(older.id)).toMatchObject({
      status: 'cancelled',
      reason: { code: 'superseded', message: `superseded by build #${newer.number}` },
    });
    await until(async () => ((await getBuild(t.db, newer.id))?.status === 'running' ? true : undefined));
    await control.cancel(newer.id, 'test');
    await finished(newer.id);
  });

  it('rerun queues the same commit again', async () => {
    const p3 = await createProject(t.db, { slug: 'acme/rerun', repoUrl: repo.url, pipelinePath: 'ci.yml' });
    await repo.commit({ 'ci.yml': 'steps:\n  - name: x\n    commands: [echo again]\n' });
    const build = await control.trigger(p3, {
      branch: 'main',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'a',
    });
    const done = await finished(build.id);
    expect(done.status).toBe('success');
    const again = await control.rerun(build.id, 'bo');
    expect(again).toMatchObject({
      number: build.number + 1,
      trigger: 'rerun',
      rerunOf: build.id,
      commitSha: done.commitSha,
    });
    expect((await finished(again.id)).status).toBe('success');
  });

  it('reconciliation: a build whose owner died is marked lost, a claimed-but-unstarted one re-queued', async () => {
    const p4 = await createProject(t.db, { slug: 'acme/dead', repoUrl: repo.url });
    await scheduler.stop();
    try {
      const a = await control.trigger(p4, {
        branch: 'a',
        event: 'manual',
        trigger: 'manual',
        triggeredBy: 'x',
      });
      const b = await control.trigger(p4, {
        branch: 'b',
        event: 'manual',
        trigger: 'manual',
        triggeredBy: 'x',
      });
      // Another server claims both with a short lease, starts one, then dies.
      const claimed: Build[] = await claimNextBuilds(t.db, 'dead-server', 1, { global: 10 });
      expect(claimed.map((c) => c.id).sort()).toEqual([a.id, b.id]);
      await setBuildStatus(t.db, a.id, ['pending'], 'running', { ifLeaseOwner: 'dead-server' });
      await new Promise((r) => setTimeout(r, 20));
      const report = await reconcile(
        {
          db: t.db,
          executors: [],
          logs,
          hub,
          owner: 'test-owner',
          ids: new ExecutorIds('test'),
          leaseMs: 60_000,
          activeHere: () => [],
        },
        false,
      );
      expect(report.lost).toEqual([a.id]);
      expect(report.requeued).toEqual([b.id]);
      const lost = await getBuild(t.db, a.id);
      expect(lost).toMatchObject({ status: 'lost', reason: { code: 'lost' } });
      expect(lost?.reason?.message).toContain('dead-server');
      expect((await text(a.id)).at(-1)).toMatch(/^build lost: /);
      expect((await getBuild(t.db, b.id))?.status).toBe('queued');
      await control.cancel(b.id, 'test');
    } finally {
      scheduler.start();
    }
  });
});
