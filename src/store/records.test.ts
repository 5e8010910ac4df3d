import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuildRecords, getBuildRecords, updateStage, updateStep } from './records.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';

for (const dialect of DIALECTS) {
  describe(`${dialect}: stage and step records`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('records the tree of a build in plan order', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      const tree = await createBuildRecords(t.db, b.id, [
        { name: 'build', steps: ['compile', 'lint', 'docs'] },
        { name: 'approve', steps: [] },
        { name: 'deploy', steps: ['push'] },
      ]);
      expect(tree.map((s) => [s.name, s.idx, s.status, s.steps.map((x) => [x.name, x.idx])])).toEqual([
        [
          'build',
          0,
          'queued',
          [
            ['compile', 0],
            ['lint', 1],
            ['docs', 2],
          ],
        ],
        ['approve', 1, 'queued', []],
        ['deploy', 2, 'queued', [['push', 0]]],
      ]);
      expect(tree[0]!.steps[0]).toMatchObject({
        buildId: b.id,
        stageId: tree[0]!.id,
        attempts: 0,
        logLines: 0,
      });
      expect(await getBuildRecords(t.db, b.id)).toEqual(tree);
      expect(await getBuildRecords(t.db, 999_999)).toEqual([]);
    });

    it('keeps what the pipeline says of a step: allowed to fail, attempts it may take', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      await createBuildRecords(t.db, b.id, [
        {
          name: 'test',
          steps: ['plain', { name: 'flaky', maxAttempts: 3 }, { name: 'lint', allowFailure: true }],
        },
      ]);
      const steps = (await getBuildRecords(t.db, b.id))[0]!.steps;
      expect(steps.map((s) => [s.name, s.allowFailure, s.maxAttempts])).toEqual([
        ['plain', false, 1],
        ['flaky', false, 3],
        ['lint', true, 1],
      ]);
    });

    // Issue 10: one INSERT of 2,979+ steps passed SQLite's limit of bound parameters and the
    // build ended "internal error: too many SQL variables".
    // 6,000 steps of 13 columns pass PostgreSQL's 65,535 parameters too.
    it('records a stage of 6,000 steps (more parameters than one statement may bind)', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      const names = Array.from({ length: 6000 }, (_, i) => `step-${i}`);
      const tree = await createBuildRecords(t.db, b.id, [
        { name: 'wide', steps: names.map((name, i) => (i % 2 === 0 ? name : { name, maxAttempts: 2 })) },
        { name: 'after', steps: ['last'] },
      ]);
      expect(tree[0]!.steps.map((s) => s.name)).toEqual(names);
      expect(tree[0]!.steps.map((s) => s.idx)).toEqual(names.map((_, i) => i));
      expect(tree[0]!.steps[5999]).toMatchObject({ stageId: tree[0]!.id, maxAttempts: 2 });
      expect(await getBuildRecords(t.db, b.id)).toEqual(tree);
    });

    it('records all or nothing: a failing batch leaves no stage or step behind', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      // A nameless step (NOT NULL) in a later batch than the first: the first batch was written.
      const steps = Array.from({ length: 3000 }, (_, i) => `s${i}`);
      steps.push(null as unknown as string);
      await expect(createBuildRecords(t.db, b.id, [{ name: 'wide', steps }])).rejects.toThrow();
      expect(await getBuildRecords(t.db, b.id)).toEqual([]);
    });

    it('refuses records for an unknown build or a second time', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      await expect(createBuildRecords(t.db, 999_999, [])).rejects.toMatchObject({ code: 'not_found' });
      await createBuildRecords(t.db, b.id, [{ name: 's', steps: ['a'] }]);
      await expect(createBuildRecords(t.db, b.id, [{ name: 's', steps: ['a'] }])).rejects.toMatchObject({
        code: 'conflict',
      });
    });

    it('updates stages and steps, with an optional status guard', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      const [stage] = await createBuildRecords(t.db, b.id, [{ name: 'test', steps: ['unit'] }]);
      const step = stage!.steps[0]!;
      expect(await updateStage(t.db, stage!.id, { status: 'running', startedAt: 10 })).toBe(true);
      expect(await updateStep(t.db, step.id, { status: 'running', startedAt: 10, attempts: 1 })).toBe(true);
      expect(await updateStep(t.db, step.id, { logLines: 250 })).toBe(true);
      expect(
        await updateStep(t.db, step.id, {
          from: ['running'],
          status: 'failure',
          exitCode: 2,
          finishedAt: 40,
          durationMs: 30,
          reason: { code: 'exit_code', message: 'exited 2' },
        }),
      ).toBe(true);
      // A late event cannot reopen a finished step.
      expect(await updateStep(t.db, step.id, { from: ['queued', 'running'], status: 'running' })).toBe(false);
      expect(await updateStep(t.db, step.id, { from: [], status: 'running' })).toBe(false);
      expect(await updateStage(t.db, stage!.id, { status: 'failure', finishedAt: 40, durationMs: 30 })).toBe(
        true,
      );
      expect(await updateStage(t.db, 999_999, { status: 'failure' })).toBe(false);
      expect(await updateStep(t.db, step.id, {})).toBe(true);

      const [read] = await getBuildRecords(t.db, b.id);
      expect(read).toMatchObject({ status: 'failure', startedAt: 10, finishedAt: 40, durationMs: 30 });
      expect(read!.steps[0]).toMatchObject({
        status: 'failure',
        exitCode: 2,
        attempts: 1,
        logLines: 250,
        durationMs: 30,
        reason: { code: 'exit_code', message: 'exited 2' },
      });
      expect(await updateStep(t.db, step.id, { reason: null })).toBe(true);
      expect((await getBuildRecords(t.db, b.id))[0]!.steps[0]!.reason).toBeNull();
    });
  });
}
