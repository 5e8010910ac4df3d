import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan, stage, step } from '../../orchestrator/testing/plans.js';
import { createBuildRecords, getBuildRecords, setBuildStatus, updateStep } from '../../store/index.js';
import { DatabaseBuildControl } from './build-control.js';
import { ControlError } from './types.js';
import { recordReusedSteps } from '../../store/rerun.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { reuseFromRerun, reuseStateOfRecords, reusedStepRows } from './rerun-failed.js';

/**
 * What a re-run-failed build takes from the build it re-runs, read from that build's records
 * (SQLite; the queries are the store's, tested on both dialects there).
 */
describe('reuseFromRerun', () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
  });
  afterAll(async () => {
    await t?.destroy();
  });

  const p = plan(
    stage('build', [step('compile', []), step('flaky', [], { needs: ['compile'] }), step('new', [])]),
    stage('test', [step('check', [])]),
  );

  it('reuses by stage and step name, runs a step the earlier build did not have, and resolves chains', async () => {
    const project = await makeProject(t.db);
    const first = await makeBuild(t.db, project.id);
    const [build1, test1] = await createBuildRecords(t.db, first.id, [
      { name: 'build', steps: ['compile', 'flaky'] },
      { name: 'test', steps: ['check'] },
    ]);
    const failure = { code: 'exit_code', message: 'exit code 1' } as const;
    await updateStep(t.db, build1!.steps[0]!.id, {
      status: 'success',
      exitCode: 0,
      attempts: 1,
      durationMs: 30,
    });
    await updateStep(t.db, build1!.steps[1]!.id, {
      status: 'failure',
      exitCode: 1,
      attempts: 1,
      reason: failure,
    });
    await updateStep(t.db, test1!.steps[0]!.id, {
      status: 'skipped',
      reason: { ...failure, code: 'earlier_failure' },
    });

    const reuse = (await reuseFromRerun(t.db, first.id, p))!;
    expect(Object.keys(reuse.state.stages)).toEqual(['build']);
    // `new` is in this compile and not in the earlier build's records: it runs.
    expect(Object.keys(reuse.state.stages.build!)).toEqual(['compile']);
    expect(reuse.state.stages.build!.compile).toMatchObject({
      status: 'success',
      exitCode: 0,
      durationMs: 30,
    });
    expect(reuse.steps.get('build/compile')?.from).toEqual({ buildId: first.id, number: first.number });

    // The re-run: compile reused from #1, flaky ran and passed there, check failed.
    const second = await makeBuild(t.db, project.id, { rerunOf: first.id, rerunFailed: true });
    const records2 = await createBuildRecords(t.db, second.id, [
      { name: 'build', steps: ['compile', 'flaky', 'new'] },
      { name: 'test', steps: ['check'] },
    ]);
    await recordReusedSteps(t.db, second.id, first.id, reusedStepRows(reuse, records2));
    const [build2, test2] = records2;
    await updateStep(t.db, build2!.steps[1]!.id, { status: 'success', exitCode: 0, attempts: 1 });
    await updateStep(t.db, build2!.steps[2]!.id, { status: 'success', exitCode: 0, attempts: 1 });
    await updateStep(t.db, test2!.steps[0]!.id, {
      status: 'failure',
      exitCode: 1,
      attempts: 1,
      reason: failure,
    });

    // A resumed run of the re-run finds its reused steps in its own records.
    const resumed = reuseStateOfRecords(await getBuildRecords(t.db, second.id));
    expect(Object.keys(resumed?.stages ?? {})).toEqual(['build']);
    expect(resumed?.stages.build).toEqual({
      compile: {
        name: 'compile',
        status: 'success',
        exitCode: 0,
        durationMs: 30,
        attempts: 1,
        allowFailure: false,
      },
    });

    // Earlier approvals stay with the stages that reuse steps (as `planReuse` keeps them).
    const approvedBefore = { build: { number: 1, by: 'alice' }, test: { number: 1, by: 'alice' } };
    expect(reuseStateOfRecords(await getBuildRecords(t.db, second.id), approvedBefore)?.approved).toEqual({
      build: { number: 1, by: 'alice' },
    });

    const again = (await reuseFromRerun(t.db, second.id, p))!;
    expect(Object.keys(again.state.stages.build!)).toEqual(['compile', 'flaky', 'new']);
    expect(again.steps.get('build/compile')?.from).toEqual({ buildId: first.id, number: first.number });
    expect(again.steps.get('build/flaky')?.from).toEqual({ buildId: second.id, number: second.number });

    // The build it re-runs is gone (retention): nothing to reuse, everything runs.
    expect(await reuseFromRerun(t.db, 999_999, p)).toBeUndefined();
  });

  it('is refused (conflict) unless the build ended, did not succeed and has a commit', async () => {
    const project = await makeProject(t.db);
    const control = new DatabaseBuildControl(t.db);
    const ended = async (status: 'success' | 'failure', commitSha: string | null) => {
      const b = await makeBuild(t.db, project.id, commitSha ? { commitSha } : {});
      return (await setBuildStatus(t.db, b.id, ['queued'], status))!;
    };
    const refusal = (id: number) =>
      control.rerun(id, 'alice', { failedOnly: true }).then(
        () => 'queued',
        (error: unknown) =>
          error instanceof ControlError ? `${error.code}: ${error.message}` : String(error),
      );
    const queued = await makeBuild(t.db, project.id, { commitSha: 'abcdef1' });
    const succeeded = await ended('success', 'abcdef1');
    const noCommit = await ended('failure', null);
    expect(await refusal(queued.id)).toBe(
      `conflict: build #${queued.number} is queued: only a finished build's failed steps can be re-run`,
    );
    expect(await refusal(succeeded.id)).toBe(
      `conflict: build #${succeeded.number} succeeded: nothing failed to re-run`,
    );
    expect(await refusal(noCommit.id)).toBe(
      `conflict: build #${noCommit.number} never checked out a commit: re-run it whole instead`,
    );
    const failed = await ended('failure', 'abcdef1');
    const rerun = await control.rerun(failed.id, 'alice', { failedOnly: true });
    expect(rerun).toMatchObject({
      rerunOf: failed.id,
      rerunFailed: true,
      commitSha: 'abcdef1',
      trigger: 'rerun',
    });
    expect((await control.rerun(failed.id, 'alice')).rerunFailed).toBe(false);
  });
});
