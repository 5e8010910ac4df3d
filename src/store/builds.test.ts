import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuild, getBuild, getBuildByNumber, listBuilds, setBuildStatus } from './builds.js';
import { listLocks } from './locks.js';
import { claimNextBuilds } from './queue.js';
import { projectStats } from './stats.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';
import type { Build } from './types.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: builds`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    /** A build claimed by `owner` (pending, lease and branch lock held). */
    async function claimed(owner = 'server-a', branch = 'main'): Promise<Build> {
      await t.reset();
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id, { branch });
      const [c] = await claimNextBuilds(t.db, owner, 60_000, { global: 10 }, 10_000);
      expect(c?.id).toBe(b.id);
      return c!;
    }

    it('queues a build with the next number of its project', async () => {
      const p = await makeProject(t.db, { slug: 'acme/numbers' });
      const q = await makeProject(t.db);
      const b1 = await createBuild(
        t.db,
        {
          projectId: p.id,
          branch: 'main',
          commitSha: 'abc123',
          commitMessage: 'fix',
          event: 'push',
          trigger: 'webhook',
          triggeredBy: 'alice',
        },
        5000,
      );
      const b2 = await makeBuild(t.db, p.id, { rerunOf: b1.id, trigger: 'rerun' });
      const other = await makeBuild(t.db, q.id);
      expect(b1).toEqual({
        id: expect.any(Number) as number,
        projectId: p.id,
        projectSlug: 'acme/numbers',
        number: 1,
        status: 'queued',
        reason: null,
        branch: 'main',
        commitSha: 'abc123',
        commitMessage: 'fix',
        commitAuthor: null,
        pullRequest: null,
        tag: null,
        event: 'push',
        trigger: 'webhook',
        triggeredBy: 'alice',
        createdAt: 5000,
        queuedAt: 5000,
        startedAt: null,
        finishedAt: null,
        durationMs: null,
        rerunOf: null,
        rerunFailed: false,
        executor: null,
        leaseOwner: null,
        leaseExpiresAt: null,
        attempt: 0,
      });
      expect([b2.number, b2.rerunOf, other.number]).toEqual([2, b1.id, 1]);
      expect(b2.id).toBeGreaterThan(b1.id);
      expect(await getBuild(t.db, b1.id)).toEqual(b1);
      expect(await getBuildByNumber(t.db, p.id, 2)).toEqual(b2);
      expect(await getBuildByNumber(t.db, p.id, 3)).toBeUndefined();
      expect(await getBuild(t.db, 999_999)).toBeUndefined();
    });

    it('refuses a build of an unknown project', async () => {
      await expect(makeBuild(t.db, 999_999)).rejects.toMatchObject({ code: 'not_found' });
    });

    it('lists newest first with filters and a keyset cursor', async () => {
      await t.reset();
      const p = await makeProject(t.db);
      const q = await makeProject(t.db);
      const made: Build[] = [];
      for (let i = 0; i < 12; i++) {
        made.push(await makeBuild(t.db, i % 3 === 0 ? q.id : p.id, { branch: i % 2 === 0 ? 'main' : 'dev' }));
      }
      await setBuildStatus(t.db, made[1]!.id, ['queued'], 'cancelled');
      await setBuildStatus(t.db, made[2]!.id, ['queued'], 'skipped');

      const ids = (bs: Build[]) => bs.map((b) => b.id);
      const desc = [...made].reverse();
      const first = await listBuilds(t.db, { limit: 5 });
      expect(ids(first.builds)).toEqual(ids(desc.slice(0, 5)));
      expect(first.nextBefore).toBe(desc[4]!.id);
      const second = await listBuilds(t.db, { limit: 5, before: first.nextBefore! });
      expect(ids(second.builds)).toEqual(ids(desc.slice(5, 10)));
      const last = await listBuilds(t.db, { limit: 5, before: second.nextBefore! });
      expect(ids(last.builds)).toEqual(ids(desc.slice(10)));
      expect(last.nextBefore).toBeNull();

      const exact = await listBuilds(t.db, { limit: 12 });
      expect(exact.builds).toHaveLength(12);
      expect(exact.nextBefore).toBeNull();

      const ofP = await listBuilds(t.db, { projectId: p.id, branch: 'dev' });
      expect(ids(ofP.builds)).toEqual(ids(desc.filter((b) => b.projectId === p.id && b.branch === 'dev')));
      expect(ofP.builds.every((b) => b.projectSlug === p.slug)).toBe(true);

      const ended = await listBuilds(t.db, { status: ['cancelled', 'skipped'] });
      expect(ids(ended.builds)).toEqual([made[2]!.id, made[1]!.id]);
      const queuedOfP = await listBuilds(t.db, { projectId: p.id, status: ['queued'] });
      expect(queuedOfP.builds.every((b) => b.status === 'queued' && b.projectId === p.id)).toBe(true);
      expect((await listBuilds(t.db, { status: [] })).builds).toHaveLength(12);
    });

    it('applies a status change only from an expected status', async () => {
      await t.reset();
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      expect(await setBuildStatus(t.db, b.id, ['running'], 'success')).toBeUndefined();
      const cancelled = await setBuildStatus(t.db, b.id, ['queued'], 'cancelled', {
        reason: { code: 'cancelled', message: 'by alice' },
        now: 7000,
      });
      expect(cancelled).toMatchObject({
        status: 'cancelled',
        reason: { code: 'cancelled', message: 'by alice' },
        finishedAt: 7000,
        durationMs: null,
      });
      // A cancel and a finish racing: only one wins.
      expect(await setBuildStatus(t.db, b.id, ['queued'], 'cancelled')).toBeUndefined();
      expect(await setBuildStatus(t.db, 999_999, ['queued'], 'cancelled')).toBeUndefined();
      expect(await setBuildStatus(t.db, b.id, [], 'success')).toBeUndefined();
    });

    it('only claiming turns a queued build active', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      await expect(setBuildStatus(t.db, b.id, ['queued'], 'running')).rejects.toMatchObject({
        code: 'invalid',
      });
      await expect(setBuildStatus(t.db, b.id, ['lost', 'running'], 'running')).rejects.toMatchObject({
        code: 'invalid',
      });
    });

    it('fills start, finish and duration, and releases lease and lock at the end', async () => {
      const c = await claimed();
      const running = await setBuildStatus(t.db, c.id, ['pending'], 'running', {
        executor: 'local',
        now: 11_000,
      });
      expect(running).toMatchObject({
        status: 'running',
        startedAt: 11_000,
        executor: 'local',
        leaseOwner: 'server-a',
      });
      const waiting = await setBuildStatus(t.db, c.id, ['running'], 'waiting', { now: 12_000 });
      expect(waiting?.startedAt).toBe(11_000);
      await setBuildStatus(t.db, c.id, ['waiting'], 'running', { now: 13_000 });
      expect((await getBuild(t.db, c.id))?.startedAt).toBe(11_000);
      expect(await listLocks(t.db)).toHaveLength(1);

      const done = await setBuildStatus(t.db, c.id, ['running'], 'success', { now: 14_500 });
      expect(done).toMatchObject({
        status: 'success',
        finishedAt: 14_500,
        durationMs: 3_500,
        leaseOwner: null,
        leaseExpiresAt: null,
      });
      expect(await listLocks(t.db)).toEqual([]);
    });

    it('takes explicit times over the defaults', async () => {
      const c = await claimed();
      const done = await setBuildStatus(t.db, c.id, ['pending'], 'failure', {
        startedAt: 100,
        finishedAt: 400,
        reason: { code: 'exit_code', message: 'step test exited 1' },
      });
      expect(done).toMatchObject({ startedAt: 100, finishedAt: 400, durationMs: 300 });
    });

    it('guards on the lease owner', async () => {
      const c = await claimed('server-a');
      expect(
        await setBuildStatus(t.db, c.id, ['pending'], 'running', { ifLeaseOwner: 'server-b' }),
      ).toBeUndefined();
      expect(
        await setBuildStatus(t.db, c.id, ['pending'], 'running', { ifLeaseOwner: 'server-a' }),
      ).toBeDefined();
    });

    it('re-queues a build whose owner died: lease and lock go, queuedAt moves', async () => {
      const c = await claimed();
      const back = await setBuildStatus(t.db, c.id, ['pending', 'running'], 'queued', { now: 50_000 });
      expect(back).toMatchObject({ status: 'queued', leaseOwner: null, queuedAt: 50_000, attempt: 1 });
      expect(await listLocks(t.db)).toEqual([]);
      const [again] = await claimNextBuilds(t.db, 'server-b', 60_000, { global: 10 }, 60_000);
      expect(again).toMatchObject({ id: c.id, attempt: 2, leaseOwner: 'server-b' });
    });

    it('averages the last 20 successful builds for ETAs', async () => {
      const p = await makeProject(t.db);
      expect(await projectStats(t.db, p.id)).toEqual({ avgDurationMs: null, samples: 0 });
      const finish = async (status: 'success' | 'failure', durationMs: number) => {
        const b = await makeBuild(t.db, p.id);
        await setBuildStatus(t.db, b.id, ['queued'], status, { startedAt: 0, finishedAt: durationMs });
      };
      for (let i = 0; i < 5; i++) await finish('success', 100_000); // older than the window
      for (let i = 1; i <= 20; i++) await finish('success', i * 1000);
      await finish('failure', 1);
      expect(await projectStats(t.db, p.id)).toEqual({ avgDurationMs: 10_500, samples: 20 });
    });
  });
}
