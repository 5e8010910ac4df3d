import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getArtifact, listArtifacts, recordArtifact } from './artifacts.js';
import { getBuild, setBuildStatus } from './builds.js';
import { createBuildRecords, getBuildRecords } from './records.js';
import { decideApproval, openApproval } from './control.js';
import { blobPrefixesToDelete, recordReusedSteps, setReusedLogLines, stageApprovals } from './rerun.js';
import { deleteFinishedBuild } from './retention.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: re-run failed records`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    const artifact = (buildId: number, step: string, path: string) =>
      recordArtifact(t.db, { buildId, step, path, size: 3, sha256: 'ab'.repeat(32), createdAt: 1 });

    it('marks reused steps, takes their artifacts pointing at the first run, and retention keeps shared bytes', async () => {
      const p = await makeProject(t.db);
      const first = await makeBuild(t.db, p.id);
      await artifact(first.id, 'build/compile', 'out/app.bin');
      await artifact(first.id, 'build/flaky', 'out/flaky.log');
      const second = await makeBuild(t.db, p.id, { rerunOf: first.id, rerunFailed: true });
      expect((await getBuild(t.db, second.id))?.rerunFailed).toBe(true);
      expect(first.rerunFailed).toBe(false);
      const [stage] = await createBuildRecords(t.db, second.id, [
        { name: 'build', steps: ['compile', 'flaky'] },
      ]);
      const compile = stage!.steps[0]!;
      const step = {
        stepId: compile.id,
        key: 'build/compile',
        from: { buildId: first.id, number: first.number },
        exitCode: 0,
        attempts: 1,
        durationMs: 40,
      };
      await recordReusedSteps(t.db, second.id, first.id, [step]);
      // Twice: idempotent (a retried transaction, a resumed run).
      await recordReusedSteps(t.db, second.id, first.id, [step]);
      await setReusedLogLines(t.db, compile.id, 7);
      const [records] = await getBuildRecords(t.db, second.id);
      expect(records!.steps.map((s) => [s.name, s.status, s.reusedFrom, s.logLines, s.durationMs])).toEqual([
        ['compile', 'success', { buildId: first.id, number: first.number }, 7, 40],
        ['flaky', 'queued', null, 0, null],
      ]);
      // Only the reused step's artifact, its bytes where the first run put them.
      expect(await listArtifacts(t.db, second.id)).toEqual([
        expect.objectContaining({ path: 'out/app.bin', step: 'build/compile', blobBuildId: first.id }),
      ]);

      // A re-run of the re-run: the artifact still points at the first run's bytes.
      const third = await makeBuild(t.db, p.id, { rerunOf: second.id, rerunFailed: true });
      const [stage3] = await createBuildRecords(t.db, third.id, [
        { name: 'build', steps: ['compile', 'flaky'] },
      ]);
      await recordReusedSteps(t.db, third.id, second.id, [{ ...step, stepId: stage3!.steps[0]!.id }]);
      expect((await getArtifact(t.db, third.id, 'out/app.bin'))?.blobBuildId).toBe(first.id);
      // Published again by a step that ran: its own bytes.
      await artifact(third.id, 'build/compile', 'out/app.bin');
      expect((await getArtifact(t.db, third.id, 'out/app.bin'))?.blobBuildId).toBeUndefined();

      for (const b of [first, second, third]) await setBuildStatus(t.db, b.id, ['queued'], 'failure');
      // The first run's bytes are shared: its prefix stays when it goes…
      expect(await blobPrefixesToDelete(t.db, first.id)).toEqual({ own: false, orphans: [] });
      expect(await deleteFinishedBuild(t.db, first.id)).toBe(true);
      expect(await blobPrefixesToDelete(t.db, third.id)).toEqual({ own: true, orphans: [] });
      // …and goes with the last build that pointed at it.
      expect(await blobPrefixesToDelete(t.db, second.id)).toEqual({ own: true, orphans: [first.id] });
    });

    it('finds where a person approved each stage, along a chain of re-runs that reused the stage', async () => {
      const p = await makeProject(t.db);
      const names = ['deploy', 'verify', 'gate', 'later'];
      const recordsOf = () => names.map((name) => ({ name, steps: ['a', 'b'] }));
      const approve = async (buildId: number, stageId: number, decision: 'approved' | 'rejected') => {
        await openApproval(t.db, stageId);
        await decideApproval(t.db, buildId, decision, 'alice', null);
      };
      const first = await makeBuild(t.db, p.id);
      const [deploy1, verify1, gate1] = await createBuildRecords(t.db, first.id, recordsOf());
      await approve(first.id, deploy1!.id, 'approved');
      await approve(first.id, verify1!.id, 'approved');
      await approve(first.id, gate1!.id, 'rejected');
      expect(await stageApprovals(t.db, first.id)).toEqual({
        deploy: { number: first.number, by: 'alice' },
        verify: { number: first.number, by: 'alice' },
      });

      // The re-run: deploy and gate reused a step and were not asked (gate stands on a rejection:
      // nothing); verify was not asked and reused nothing; later waits for a person.
      const second = await makeBuild(t.db, p.id, { rerunOf: first.id, rerunFailed: true });
      const [deploy2, , gate2, later2] = await createBuildRecords(t.db, second.id, recordsOf());
      const reused = (stage: typeof deploy2) => ({
        stepId: stage!.steps[0]!.id,
        key: `${stage!.name}/a`,
        from: { buildId: first.id, number: first.number },
        exitCode: 0,
        attempts: 1,
        durationMs: 1,
      });
      await recordReusedSteps(t.db, second.id, first.id, [reused(deploy2), reused(gate2)]);
      await openApproval(t.db, later2!.id);
      expect(await stageApprovals(t.db, second.id)).toEqual({
        deploy: { number: first.number, by: 'alice' },
      });
      // A build that is gone (retention): nothing.
      expect(await stageApprovals(t.db, 999_999)).toEqual({});
    });
  });
}
