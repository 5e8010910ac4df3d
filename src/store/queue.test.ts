import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getBuild, setBuildStatus } from './builds.js';
import { listLocks, releaseLock } from './locks.js';
import {
  claimNextBuilds,
  findExpiredLeases,
  queueDepth,
  renewLeases,
  runningCounts,
  supersede,
  takeOverLease,
} from './queue.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';
import type { Build } from './types.js';

const LEASE = 30_000;
const NOW = 1_000_000;

for (const dialect of DIALECTS) {
  describe(`${dialect}: queue`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });
    beforeEach(async () => {
      await t.reset();
    });

    const claim = (global = 100, owner = 'server-a', now = NOW) =>
      claimNextBuilds(t.db, owner, LEASE, { global }, now);
    const ids = (bs: readonly Build[]) => bs.map((b) => b.id);
    const finish = (b: Build) => setBuildStatus(t.db, b.id, ['pending', 'running', 'waiting'], 'success');

    it('claims queued builds oldest first, marking them pending with a lease and a lock', async () => {
      const p = await makeProject(t.db);
      const a = await makeBuild(t.db, p.id, { branch: 'a' });
      const b = await makeBuild(t.db, p.id, { branch: 'b' });
      const got = await claim();
      expect(ids(got)).toEqual([a.id, b.id]);
      expect(got[0]).toMatchObject({
        status: 'pending',
        leaseOwner: 'server-a',
        leaseExpiresAt: NOW + LEASE,
        attempt: 1,
        projectSlug: p.slug,
      });
      expect(await listLocks(t.db)).toEqual([
        { projectId: p.id, branch: 'a', buildId: a.id, acquiredAt: NOW },
        { projectId: p.id, branch: 'b', buildId: b.id, acquiredAt: NOW },
      ]);
      expect(await claim()).toEqual([]);
    });

    it('runs one build per project+branch; the next starts when it ends (FIFO)', async () => {
      const p = await makeProject(t.db);
      const q = await makeProject(t.db);
      const m1 = await makeBuild(t.db, p.id, { branch: 'main' });
      const m2 = await makeBuild(t.db, p.id, { branch: 'main' });
      const m3 = await makeBuild(t.db, p.id, { branch: 'main' });
      const dev = await makeBuild(t.db, p.id, { branch: 'dev' });
      const qMain = await makeBuild(t.db, q.id, { branch: 'main' });

      expect(ids(await claim())).toEqual([m1.id, dev.id, qMain.id]);
      expect(await claim()).toEqual([]);
      await finish((await getBuild(t.db, m1.id))!);
      expect(ids(await claim())).toEqual([m2.id]);
      await setBuildStatus(t.db, m2.id, ['pending'], 'running');
      await setBuildStatus(t.db, m2.id, ['running'], 'waiting');
      expect(await claim()).toEqual([]); // waiting for approval still holds the branch
      await setBuildStatus(t.db, m2.id, ['waiting'], 'cancelled');
      expect(ids(await claim())).toEqual([m3.id]);
    });

    it('never exceeds the global limit, and fills freed slots in order', async () => {
      const builds: Build[] = [];
      for (let i = 0; i < 5; i++) {
        const p = await makeProject(t.db);
        builds.push(await makeBuild(t.db, p.id));
      }
      expect(ids(await claim(2))).toEqual(ids(builds.slice(0, 2)));
      expect(await claim(2)).toEqual([]);
      await finish(builds[0]!);
      expect(ids(await claim(2))).toEqual([builds[2]!.id]);
      expect(await claim(0)).toEqual([]);
      expect((await runningCounts(t.db)).total).toBe(2);
    });

    it('respects a project limit without holding up other projects', async () => {
      const p = await makeProject(t.db, { maxRunning: 2 });
      const q = await makeProject(t.db);
      const pb = [];
      for (const branch of ['a', 'b', 'c', 'd']) pb.push(await makeBuild(t.db, p.id, { branch }));
      const qb = await makeBuild(t.db, q.id);
      expect(ids(await claim())).toEqual([pb[0]!.id, pb[1]!.id, qb.id]);
      const counts = await runningCounts(t.db);
      expect(counts).toEqual({
        total: 3,
        byProject: new Map([
          [p.id, 2],
          [q.id, 1],
        ]),
      });
      await finish(pb[1]!);
      expect(ids(await claim())).toEqual([pb[2]!.id]);
    });

    it('finds candidates beyond one batch of blocked builds', async () => {
      const p = await makeProject(t.db);
      const q = await makeProject(t.db);
      const head = await makeBuild(t.db, p.id);
      for (let i = 0; i < 450; i++) await makeBuild(t.db, p.id); // all behind `head` on main
      const late = await makeBuild(t.db, q.id);
      expect(ids(await claim())).toEqual([head.id, late.id]);
      expect(await queueDepth(t.db)).toBe(450);
    });

    it('renews only leases the owner still holds', async () => {
      const p = await makeProject(t.db);
      const a = await makeBuild(t.db, p.id, { branch: 'a' });
      const b = await makeBuild(t.db, p.id, { branch: 'b' });
      const c = await makeBuild(t.db, p.id, { branch: 'c' });
      await claim(2, 'server-a');
      await claim(2, 'server-b'); // nothing: limit reached
      await finish(b);
      await claim(2, 'server-b');
      expect(await renewLeases(t.db, 'server-a', [a.id, b.id, c.id], NOW + 99_000)).toEqual([a.id]);
      expect(await renewLeases(t.db, 'server-b', [c.id], NOW + 99_000)).toEqual([c.id]);
      expect(await renewLeases(t.db, 'server-b', [], NOW)).toEqual([]);
      expect((await getBuild(t.db, a.id))?.leaseExpiresAt).toBe(NOW + 99_000);
    });

    it('finds expired leases and lets exactly one server take each over', async () => {
      const p = await makeProject(t.db);
      const a = await makeBuild(t.db, p.id, { branch: 'a' });
      const b = await makeBuild(t.db, p.id, { branch: 'b' });
      await claim(10, 'dead-server', NOW);
      await renewLeases(t.db, 'dead-server', [b.id], NOW + 10 * LEASE);
      const later = NOW + LEASE + 1;
      expect(ids(await findExpiredLeases(t.db, later))).toEqual([a.id]);
      expect(await findExpiredLeases(t.db, NOW)).toEqual([]);

      const other = t.openAnother();
      const racers =
        dialect === 'postgres'
          ? [
              takeOverLease(t.db, a.id, 'x', later + LEASE, later),
              takeOverLease(other, a.id, 'y', later + LEASE, later),
            ]
          : [
              takeOverLease(t.db, a.id, 'x', later + LEASE, later),
              takeOverLease(t.db, a.id, 'y', later + LEASE, later),
            ];
      const results = await Promise.all(racers);
      const winners = results.filter((r) => r !== undefined);
      expect(winners).toHaveLength(1);
      expect(winners[0]).toMatchObject({ id: a.id, leaseExpiresAt: later + LEASE });
      expect(await findExpiredLeases(t.db, later)).toEqual([]);
      // b's lease is alive: nobody may take it.
      expect(await takeOverLease(t.db, b.id, 'x', later + LEASE, later)).toBeUndefined();
      // The owner may always extend its own.
      expect(await takeOverLease(t.db, b.id, 'dead-server', later + LEASE, later)).toBeDefined();
      // The branch lock stays with the build.
      expect((await listLocks(t.db)).map((l) => l.buildId).sort()).toEqual([a.id, b.id].sort());
    });

    it('supersede cancels older queued builds of the branch and returns the active ones', async () => {
      const p = await makeProject(t.db, { concurrencyPolicy: 'supersede' });
      const running = await makeBuild(t.db, p.id);
      await claim();
      const queued1 = await makeBuild(t.db, p.id);
      const queued2 = await makeBuild(t.db, p.id);
      const otherBranch = await makeBuild(t.db, p.id, { branch: 'dev' });
      const newest = await makeBuild(t.db, p.id);
      const result = await supersede(t.db, p.id, 'main', newest.id, 77_000);
      expect(ids(result.cancelled)).toEqual([queued1.id, queued2.id]);
      expect(result.cancelled[0]).toMatchObject({
        status: 'cancelled',
        reason: { code: 'superseded', message: `superseded by build #${newest.number}` },
        finishedAt: 77_000,
      });
      expect(ids(result.active)).toEqual([running.id]);
      expect((await getBuild(t.db, otherBranch.id))?.status).toBe('queued');
      expect((await getBuild(t.db, newest.id))?.status).toBe('queued');

      await setBuildStatus(t.db, running.id, ['pending'], 'cancelled', {
        reason: { code: 'superseded', message: 'superseded' },
      });
      expect(ids(await claim())).toEqual([otherBranch.id, newest.id]);
      await expect(supersede(t.db, p.id, 'main', 999_999)).rejects.toMatchObject({ code: 'not_found' });
    });

    it('drops locks of builds that are no longer active, and can be unlocked by hand', async () => {
      const p = await makeProject(t.db);
      const a = await makeBuild(t.db, p.id);
      const b = await makeBuild(t.db, p.id);
      await claim();
      // A status written behind the store's back leaves the lock stale...
      await t.db.updateTable('builds').set({ status: 'error' }).where('id', '=', a.id).execute();
      expect(await listLocks(t.db)).toHaveLength(1);
      // ...which the next claim clears before deciding.
      expect(ids(await claim())).toEqual([b.id]);

      expect(await releaseLock(t.db, p.id, 'main')).toBe(true);
      expect(await releaseLock(t.db, p.id, 'main')).toBe(false);
      expect(await listLocks(t.db, p.id)).toEqual([]);
    });

    it('a claim with no slot free (or nothing queued) changes nothing, not even stale locks', async () => {
      const p = await makeProject(t.db);
      const a = await makeBuild(t.db, p.id, { branch: 'a' });
      const stale = await makeBuild(t.db, p.id, { branch: 'stale' });
      expect(ids(await claim(2))).toEqual([a.id, stale.id]);
      await t.db.updateTable('builds').set({ status: 'error' }).where('id', '=', stale.id).execute();
      // Nothing queued: no transaction, so the stale lock stays...
      expect(ids(await claim(2))).toEqual([]);
      expect(await listLocks(t.db, p.id)).toHaveLength(2);
      const b = await makeBuild(t.db, p.id, { branch: 'b' });
      // ...as it does while every slot is taken...
      expect(ids(await claim(1))).toEqual([]);
      expect(await listLocks(t.db, p.id)).toHaveLength(2);
      // ...until a claim can hand out a slot: it clears the lock first.
      expect(ids(await claim(2))).toEqual([b.id]);
      expect((await listLocks(t.db, p.id)).map((l) => l.branch).sort()).toEqual(['a', 'b']);
    });

    it('counts queue depth and running builds', async () => {
      expect(await queueDepth(t.db)).toBe(0);
      expect(await runningCounts(t.db)).toEqual({ total: 0, byProject: new Map() });
      const p = await makeProject(t.db);
      await makeBuild(t.db, p.id);
      await makeBuild(t.db, p.id);
      expect(await queueDepth(t.db)).toBe(2);
      await claim();
      expect(await queueDepth(t.db)).toBe(1);
      expect((await runningCounts(t.db)).byProject.get(p.id)).toBe(1);
    });

    it('refuses an empty owner', async () => {
      await expect(claim(1, '')).rejects.toMatchObject({ code: 'invalid' });
    });
  });
}
