import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../../executors/local/local-executor.js';
import type { BuildHandle } from '../../executors/types.js';
import { plan, stage, step } from '../../orchestrator/testing/plans.js';
import { countTestCases } from '../../store/test-reports.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { createReportCollector } from './collector.js';
import { ReportParser } from '../../reports/parse-pool.js';

/**
 * The per-build cap on stored test cases holds across server processes: a collector made by a
 * new process for a resumed build counts what the build stored before (real database, local
 * executor's workspace).
 */
describe.each(DIALECTS)('report collector: the per-build case cap after a restart (%s)', (dialect) => {
  let t: TestDatabase;
  let tmpRoot: string;
  let executor: LocalExecutor;
  let handle: BuildHandle;
  const parser = new ReportParser();

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
    tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-report-cap-'));
    executor = new LocalExecutor({ tmpRoot });
    handle = await executor.prepare({
      buildId: `report-cap-${dialect}-${process.pid}`,
      project: 't/reports',
      branch: 'main',
      services: [],
    });
    await mkdir(join(handle.workspace, 'reports'), { recursive: true });
    const fixtures = join(import.meta.dirname, '../../reports/fixtures');
    // 5 cases and 3 cases.
    await copyFile(join(fixtures, 'surefire.xml'), join(handle.workspace, 'reports/surefire.xml'));
    await copyFile(join(fixtures, 'vitest.xml'), join(handle.workspace, 'reports/vitest.xml'));
  });
  afterAll(async () => {
    if (handle) await executor.destroy(handle);
    await rm(tmpRoot, { recursive: true, force: true });
    await t?.destroy();
  });

  it('a new process stores no more than the cap leaves, and says so', async () => {
    const project = await makeProject(t.db);
    const stored = await makeBuild(t.db, project.id, { commitSha: 'cap' });
    const build = { id: stored.id, projectId: project.id, commitSha: 'cap' };
    const surefire = step('surefire', [], { reports: { junit: ['reports/surefire.xml'] } });
    const vitest = step('vitest', [], { reports: { junit: ['reports/vitest.xml'] } });
    const p = plan(stage('test', [surefire, vitest]));
    const said: string[] = [];
    const log = (_stage: string, _step: string, text: string) => said.push(text);
    const exit = { kind: 'exited', exitCode: 1 } as const;
    const signal = new AbortController().signal;
    const collector = () =>
      createReportCollector({ db: t.db, parser, limits: { maxCasesPerBuild: 6 } }).afterAttempt(
        executor,
        build,
        p,
        log,
      )!;

    await collector()('test', surefire, 1, handle, exit, signal);
    expect(await countTestCases(t.db, build.id)).toBe(5);
    // The server restarted: the resumed build's collector is a new one.
    await collector()('test', vitest, 1, handle, exit, signal);
    expect(await countTestCases(t.db, build.id)).toBe(6);
    expect(said.slice(-2)).toEqual([
      'reports: reports/vitest.xml: 2 test cases not kept: at most 6 are stored per build',
      'reports: 3 tests: 1 failed, 1 skipped (1 file)',
    ]);
  });
});
