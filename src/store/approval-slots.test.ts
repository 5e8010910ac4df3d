import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { getBuild, setBuildStatus } from './builds.js';
import { approvalsOf, decideApproval, openApproval, pendingControl, requestCancel } from './control.js';
import { listLocks } from './locks.js';
import { claimNextBuilds, claimSlots, runningCounts } from './queue.js';
import { createBuildRecords } from './records.js';
import { projectStats } from './stats.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';
import type { Build, Project } from './types.js';

const LEASE = 60_000;
const NOW = 1_000_000;

/** DESIGN.md: "A build waiting for a person holds its branch lock, never a running slot." */
for (const dialect of DIALECTS) {
  describe(`${dialect}: builds waiting for approval`, () => {
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

    const claim = (global: number, now = NOW) => claimSlots(t.db, 'server-a', LEASE, { global }, now);
    const ids = (bs: readonly Build[]) => bs.map((b) => b.id);

    /** A build of `project` claimed, started and now waiting at its `deploy` stage. */
    async function waitingBuild(project: Project, branch = 'main', at = NOW) {
      const build = await makeBuild(t.db, project.id, { branch });
      const got = await claimNextBuilds(t.db, 'server-a', LEASE, { global: 100 }, at);
      expect(ids(got)).toContain(build.id);
      await setBuildStatus(t.db, build.id, ['pending'], 'running');
      const [, deploy] = await createBuildRecords(t.db, build.id, [
        { name: 'test', steps: ['unit'] },
        { name: 'deploy', steps: ['ship'] },
      ]);
      await openApproval(t.db, deploy!.id, at);
      await setBuildStatus(t.db, build.id, ['running'], 'waiting');
      return build;
    }

    it('a waiting build holds no slot: at limit 2, two waiting builds let a third project run', async () => {
      const [p, q, r] = [await makeProject(t.db), await makeProject(t.db), await makeProject(t.db)];
      const a = await waitingBuild(p);
      const b = await waitingBuild(q);
      const c = await makeBuild(t.db, r.id);
      const got = await claim(2);
      expect(ids(got.claimed)).toEqual([c.id]);
      expect(got.resumed).toEqual([]);
      expect((await runningCounts(t.db)).total).toBe(1);
      for (const w of [a, b]) expect((await getBuild(t.db, w.id))?.status).toBe('waiting');
    });

    it("keeps its branch locked while it waits, and frees no slot in its project's limit", async () => {
      const p = await makeProject(t.db, { maxRunning: 1 });
      const waiting = await waitingBuild(p, 'main');
      const sameBranch = await makeBuild(t.db, p.id, { branch: 'main' });
      const otherBranch = await makeBuild(t.db, p.id, { branch: 'dev' });
      const got = await claim(10);
      expect(ids(got.claimed)).toEqual([otherBranch.id]); // max_running 1 counts only slot holders
      expect((await listLocks(t.db)).map((l) => [l.branch, l.buildId])).toEqual(
        expect.arrayContaining([
          ['main', waiting.id],
          ['dev', otherBranch.id],
        ]),
      );
      expect((await claim(10)).claimed).toEqual([]);
      expect((await getBuild(t.db, sameBranch.id))?.status).toBe('queued');
    });

    it('a decided build takes the next free slot ahead of older queued builds, in decision order', async () => {
      const [p, q, r] = [await makeProject(t.db), await makeProject(t.db), await makeProject(t.db)];
      const first = await waitingBuild(p);
      const second = await waitingBuild(q);
      const queued = [
        await makeBuild(t.db, r.id, { branch: 'x' }),
        await makeBuild(t.db, r.id, { branch: 'y' }),
      ];
      const filler = await claim(2); // both queued builds take the two slots
      expect(ids(filler.claimed)).toEqual(ids(queued));
      const older = await makeBuild(t.db, r.id, { branch: 'z' }); // queued before the decisions

      // Decided in the other order than they started waiting.
      expect(await decideApproval(t.db, second.id, 'approved', 'alice', 'looks good', NOW + 10)).toBe(
        'deploy',
      );
      expect(await decideApproval(t.db, first.id, 'rejected', 'bob', null, NOW + 20)).toBe('deploy');
      // No slot yet: they keep waiting, and their owner is not told to go on.
      const none = await claim(2, NOW + 30);
      expect([none.claimed, none.resumed]).toEqual([[], []]);
      expect(await pendingControl(t.db, [first.id, second.id])).toEqual([]);

      await setBuildStatus(t.db, queued[0]!.id, ['pending'], 'success');
      const one = await claim(2, NOW + 40);
      expect(ids(one.resumed)).toEqual([second.id]);
      expect(one.resumed[0]?.status).toBe('running');
      expect(one.claimed).toEqual([]);
      const control = await pendingControl(t.db, [first.id, second.id]);
      expect(control.map((c) => [c.buildId, c.approval?.stage, c.approval?.decision])).toEqual([
        [second.id, 'deploy', 'approved'],
      ]);
      expect(control[0]?.approval).toMatchObject({ by: 'alice', message: 'looks good' });

      await setBuildStatus(t.db, queued[1]!.id, ['pending'], 'success');
      const two = await claim(2, NOW + 50);
      expect(ids(two.resumed)).toEqual([first.id]);
      expect(two.claimed).toEqual([]);
      expect((await getBuild(t.db, older.id))?.status).toBe('queued');

      const records = await approvalsOf(t.db, [first.id, second.id]);
      expect(records.get(second.id)).toEqual([
        {
          stage: 'deploy',
          decision: 'approved',
          by: 'alice',
          at: NOW + 10,
          comment: 'looks good',
          requestedAt: NOW,
          resumedAt: NOW + 40,
        },
      ]);
      expect(records.get(first.id)?.[0]).toMatchObject({
        decision: 'rejected',
        by: 'bob',
        resumedAt: NOW + 50,
      });
    });

    it("a decided build waits for its project's limit; a cancelled one takes no slot", async () => {
      const p = await makeProject(t.db, { maxRunning: 1 });
      const q = await makeProject(t.db);
      const waiting = await waitingBuild(p, 'main');
      const busy = await makeBuild(t.db, p.id, { branch: 'dev' });
      expect(ids((await claim(10)).claimed)).toEqual([busy.id]);
      await decideApproval(t.db, waiting.id, 'approved', 'alice', null, NOW + 10);
      const other = await makeBuild(t.db, q.id);
      const got = await claim(10, NOW + 20);
      expect(got.resumed).toEqual([]); // its project is at its limit
      expect(ids(got.claimed)).toEqual([other.id]); // other projects are not held up

      const cancelled = await waitingBuild(q, 'release', NOW + 30);
      await decideApproval(t.db, cancelled.id, 'approved', 'alice', null, NOW + 40);
      await requestCancel(t.db, cancelled.id, { code: 'cancelled', message: 'cancelled by bob' });
      expect((await claim(10, NOW + 50)).resumed).toEqual([]);
      expect((await getBuild(t.db, cancelled.id))?.status).toBe('waiting');
    });

    it("a project's average duration leaves out time spent waiting for a person", async () => {
      const p = await makeProject(t.db);
      const build = await waitingBuild(p, 'main', NOW);
      await decideApproval(t.db, build.id, 'approved', 'alice', null, NOW + 30_000);
      expect(ids((await claim(10, NOW + 30_500)).resumed)).toEqual([build.id]);
      // Started at NOW − 10 s, waited from NOW to NOW + 30.5 s, finished 20 s later: 30 s of work.
      await setBuildStatus(t.db, build.id, ['running'], 'success', {
        startedAt: NOW - 10_000,
        finishedAt: NOW + 50_500,
      });
      expect(await projectStats(t.db, p.id)).toEqual({ avgDurationMs: 30_000, samples: 1 });
    });

    it('two decisions at once: one wins, the second is refused', async () => {
      const p = await makeProject(t.db);
      const build = await waitingBuild(p);
      const results = await Promise.all([
        decideApproval(t.db, build.id, 'approved', 'alice', null),
        decideApproval(t.db, build.id, 'rejected', 'bob', 'no'),
      ]);
      expect(results.filter((r) => r === 'deploy')).toHaveLength(1);
      expect(results.filter((r) => r === undefined)).toHaveLength(1);
    });
  });
}
