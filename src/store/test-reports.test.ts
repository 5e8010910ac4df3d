import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setBuildStatus } from './builds.js';
import { deleteFinishedBuild } from './retention.js';
import {
  countTestCases,
  listFailingTests,
  listNotableTests,
  listStepReports,
  listTestRuns,
  saveStepReport,
  testKey,
  type NewTestCase,
  type StepReportInput,
} from './test-reports.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';

const pass = (name: string): NewTestCase => ({
  suite: 's',
  classname: 'c',
  name,
  status: 'passed',
  durationMs: 5,
  flaky: false,
});
const fail = (name: string, message = `${name} broke`): NewTestCase => ({
  ...pass(name),
  status: 'failed',
  message,
  output: `trace of ${name}`,
});

function report(
  buildId: number,
  projectId: number,
  commitSha: string,
  cases: NewTestCase[],
  attempt = 1,
): StepReportInput {
  const failures = cases.filter((c) => c.status === 'failed').length;
  return {
    buildId,
    projectId,
    commitSha,
    step: 'test/unit',
    attempt,
    files: 1,
    totals: { tests: cases.length, failures, errors: 0, skipped: 0, timeMs: 5 * cases.length },
    problems: [],
    cases,
    createdAt: 1,
  };
}

for (const dialect of DIALECTS) {
  describe(`${dialect}: test reports`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('a retry that passes what failed marks it flaky, keeping the failure message; totals are the last attempt', async () => {
      const project = await makeProject(t.db);
      const build = await makeBuild(t.db, project.id, { commitSha: 'aaa' });
      await saveStepReport(t.db, report(build.id, project.id, 'aaa', [pass('a'), fail('b')], 1));
      expect((await listNotableTests(t.db, build.id, 10)).map((c) => [c.name, c.status, c.flaky])).toEqual([
        ['b', 'failed', false],
      ]);
      const stored = await saveStepReport(
        t.db,
        report(build.id, project.id, 'aaa', [pass('a'), pass('b')], 2),
      );
      expect(stored).toMatchObject({ attempt: 2, tests: 2, failures: 0, flaky: 1 });
      expect(await listStepReports(t.db, build.id)).toEqual([
        {
          step: 'test/unit',
          attempt: 2,
          files: 1,
          tests: 2,
          failures: 0,
          errors: 0,
          skipped: 0,
          flaky: 1,
          timeMs: 10,
          problems: [],
        },
      ]);
      const notable = await listNotableTests(t.db, build.id, 10);
      expect(notable).toEqual([
        expect.objectContaining({
          name: 'b',
          status: 'passed',
          flaky: true,
          message: 'b broke',
          key: testKey(pass('b')),
        }),
      ]);
    });

    it('a later build of the same commit that passes marks flaky; another commit does not', async () => {
      const project = await makeProject(t.db);
      const first = await makeBuild(t.db, project.id, { commitSha: 'c1' });
      await saveStepReport(t.db, report(first.id, project.id, 'c1', [fail('x'), fail('y')]));
      const rerun = await makeBuild(t.db, project.id, { commitSha: 'c1' });
      const stored = await saveStepReport(t.db, report(rerun.id, project.id, 'c1', [pass('x'), fail('y')]));
      expect(stored.flaky).toBe(1);
      expect((await listNotableTests(t.db, rerun.id, 10)).map((c) => [c.name, c.status, c.flaky])).toEqual([
        ['x', 'passed', true],
        ['y', 'failed', false],
      ]);
      const other = await makeBuild(t.db, project.id, { commitSha: 'c2' });
      expect(
        (await saveStepReport(t.db, report(other.id, project.id, 'c2', [pass('x'), pass('y')]))).flaky,
      ).toBe(0);

      // History: y failed in 2 of its 3 runs, x once and flaky once.
      const failing = await listFailingTests(t.db, project.id, { builds: 20, limit: 10 });
      expect(
        failing.map((f) => [f.name, f.runs, f.failures, f.flaky, f.lastBuildId, f.lastBuildNumber]),
      ).toEqual([
        ['y', 3, 2, 0, rerun.id, rerun.number],
        ['x', 3, 1, 1, rerun.id, rerun.number],
      ]);
      // A window of the last build only: nothing failed there.
      expect(await listFailingTests(t.db, project.id, { builds: 1, limit: 10 })).toEqual([]);
      const runs = await listTestRuns(t.db, project.id, testKey(pass('y')), 10);
      expect(runs?.runs.map((r) => [r.buildNumber, r.status, r.commitSha])).toEqual([
        [other.number, 'passed', 'c2'],
        [rerun.number, 'failed', 'c1'],
        [first.number, 'failed', 'c1'],
      ]);
      expect(await listTestRuns(t.db, project.id, 'nope', 10)).toBeUndefined();
    });

    it('stores no more cases per build than the cap, for steps saving at once too', async () => {
      const project = await makeProject(t.db);
      const build = await makeBuild(t.db, project.id, { commitSha: 'capped' });
      const cases = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => pass(`${prefix}${i}`));
      const save = (step: string, n: number, attempt = 1) =>
        saveStepReport(t.db, {
          ...report(build.id, project.id, 'capped', cases(step, n), attempt),
          step,
          maxCasesPerBuild: 10,
        });
      expect((await save('test/a', 6)).notStored).toBe(0);
      const b = await save('test/b', 6);
      expect(b).toMatchObject({ tests: 6, notStored: 2 });
      expect(b.problems).toEqual(['2 test cases not stored: at most 10 are stored per build']);
      expect((await listStepReports(t.db, build.id)).find((r) => r.step === 'test/b')?.problems).toEqual(
        b.problems,
      );
      // A retry replaces its step's cases: the room is what the other steps left.
      expect((await save('test/a', 7, 2)).notStored).toBe(1);
      expect(await countTestCases(t.db, build.id)).toBe(10);
      // Two steps saving at once count one after the other.
      const other = await makeBuild(t.db, project.id, { commitSha: 'capped' });
      const results = await Promise.all(
        ['c', 'd', 'e'].map((step) =>
          saveStepReport(t.db, {
            ...report(other.id, project.id, 'capped', cases(step, 4)),
            step,
            maxCasesPerBuild: 10,
          }),
        ),
      );
      expect(await countTestCases(t.db, other.id)).toBe(10);
      expect(results.map((r) => r.notStored).sort()).toEqual([0, 0, 2]);
    });

    it('many cases are stored in chunks, and go with their build when retention deletes it', async () => {
      const project = await makeProject(t.db);
      const build = await makeBuild(t.db, project.id, { commitSha: 'big' });
      const cases = Array.from({ length: 1200 }, (_, i) => (i % 100 === 0 ? fail(`t${i}`) : pass(`t${i}`)));
      await saveStepReport(t.db, report(build.id, project.id, 'big', cases));
      expect(await listNotableTests(t.db, build.id, 5)).toHaveLength(5);
      await setBuildStatus(t.db, build.id, ['queued'], 'failure');
      expect(await deleteFinishedBuild(t.db, build.id)).toBe(true);
      expect(await listStepReports(t.db, build.id)).toEqual([]);
      const left = await t.db
        .selectFrom('test_cases')
        .select('id')
        .where('build_id', '=', build.id)
        .execute();
      expect(left).toEqual([]);
    });
  });
}
