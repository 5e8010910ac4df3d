import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepRef } from '../executors/types.js';
import type { PipelinePlan } from '../pipeline/types.js';
import { createBuildRecords, updateStage, updateStep } from './records.js';
import {
  loadResumeRecords,
  parseAttemptExit,
  parseStepRef,
  saveBuildPlan,
  saveStepExit,
  saveStepRef,
} from './resume.js';
import { DIALECTS, openTestDatabase } from './testing/dialects.js';
import type { TestDatabase } from './testing/dialects.js';
import { makeBuild, makeProject } from './testing/fixtures.js';

const plan: PipelinePlan = {
  services: [],
  stages: [{ name: 'test', steps: [] }],
} as unknown as PipelinePlan; // only its JSON round trip matters here

const ref = (attempt: number): StepRef => ({
  executor: 'docker',
  id: 'abc123',
  buildId: 'slipway-1',
  key: 'test/unit',
  attempt,
  startedAt: 1_700_000_000_000,
});

for (const dialect of DIALECTS) {
  describe(`${dialect}: what a successor resumes a build from`, () => {
    let t: TestDatabase;
    beforeAll(async () => {
      t = await openTestDatabase(dialect);
    });
    afterAll(async () => {
      await t?.destroy();
    });

    it('reads back the plan, the step refs and typed reasons', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      expect((await loadResumeRecords(t.db, b.id)).plan).toBeUndefined();
      const [stage] = await createBuildRecords(t.db, b.id, [
        { name: 'test', steps: ['unit', 'lint', 'docs'] },
      ]);
      await saveBuildPlan(t.db, b.id, plan);
      const [unit, lint] = stage!.steps;
      await updateStage(t.db, stage!.id, { status: 'running' });
      await updateStep(t.db, unit!.id, { status: 'running', attempts: 2 });
      expect(await saveStepRef(t.db, unit!.id, ref(2), 1_700_000_000_500)).toBe(true);
      await updateStep(t.db, lint!.id, {
        status: 'failure',
        attempts: 1,
        exitCode: 3,
        reason: { code: 'exit_code', message: 'exit code 3' },
      });
      // An ended step keeps its record: a late ref does not land on it.
      expect(await saveStepRef(t.db, lint!.id, ref(1), 1)).toBe(false);

      const loaded = await loadResumeRecords(t.db, b.id);
      expect(loaded.plan).toEqual(plan);
      const steps = loaded.stages[0]!.steps;
      expect(steps.map((s) => [s.name, s.status, s.attempts, s.ref?.attempt, s.attemptStartedAt])).toEqual([
        ['unit', 'running', 2, 2, 1_700_000_000_500],
        ['lint', 'failure', 1, undefined, null],
        ['docs', 'queued', 0, undefined, null],
      ]);
      expect(steps[0]!.ref).toEqual(ref(2));
      expect(steps[1]!.reason).toEqual({ code: 'exit_code', message: 'exit code 3' });
      expect(steps.map((s) => s.attemptExit)).toEqual([undefined, undefined, undefined]);
    });

    it('keeps the exit of an attempt that ended before its release, for a running step only', async () => {
      const p = await makeProject(t.db);
      const b = await makeBuild(t.db, p.id);
      const [stage] = await createBuildRecords(t.db, b.id, [{ name: 'test', steps: ['unit', 'lint'] }]);
      const [unit, lint] = stage!.steps;
      await updateStep(t.db, unit!.id, { status: 'running', attempts: 1 });
      await saveStepRef(t.db, unit!.id, ref(1), 1);
      expect(await saveStepExit(t.db, unit!.id, 1, { kind: 'exited', exitCode: 0 })).toBe(true);
      await updateStep(t.db, lint!.id, { status: 'success', attempts: 1, exitCode: 0 });
      expect(await saveStepExit(t.db, lint!.id, 1, { kind: 'exited', exitCode: 0 })).toBe(false);

      const steps = (await loadResumeRecords(t.db, b.id)).stages[0]!.steps;
      expect(steps.map((s) => s.attemptExit)).toEqual([
        { attempt: 1, exit: { kind: 'exited', exitCode: 0 } },
        undefined,
      ]);
    });
  });
}

describe('a stored step ref', () => {
  it('is adopted only when every field has its type', () => {
    expect(parseStepRef(JSON.stringify(ref(1)))).toEqual(ref(1));
    expect(parseStepRef(null)).toBeUndefined();
    expect(parseStepRef('{not json')).toBeUndefined();
    expect(parseStepRef(JSON.stringify({ ...ref(1), executor: 'ssh' }))).toBeUndefined();
    expect(parseStepRef(JSON.stringify({ ...ref(1), attempt: '1' }))).toBeUndefined();
    expect(parseStepRef(JSON.stringify({ ...ref(1), id: undefined }))).toBeUndefined();
  });
});

describe('a stored attempt exit', () => {
  const stored = (value: unknown) => parseAttemptExit(JSON.stringify(value));
  it('is taken only when every field has its type', () => {
    expect(stored({ attempt: 2, exit: { kind: 'exited', exitCode: 3 } })).toEqual({
      attempt: 2,
      exit: { kind: 'exited', exitCode: 3 },
    });
    expect(stored({ attempt: 1, exit: { kind: 'aborted' } })).toEqual({
      attempt: 1,
      exit: { kind: 'aborted' },
    });
    expect(
      stored({ attempt: 1, exit: { kind: 'error', code: 'oom_killed', message: 'OOM', exitCode: 137 } }),
    ).toEqual({
      attempt: 1,
      exit: { kind: 'error', code: 'oom_killed', message: 'OOM', exitCode: 137 },
    });
    expect(parseAttemptExit(null)).toBeUndefined();
    expect(parseAttemptExit('{not json')).toBeUndefined();
    expect(stored({ attempt: 0, exit: { kind: 'exited', exitCode: 0 } })).toBeUndefined();
    expect(stored({ attempt: 1, exit: { kind: 'exited' } })).toBeUndefined();
    expect(stored({ attempt: 1, exit: { kind: 'exited', exitCode: '0' } })).toBeUndefined();
    expect(
      stored({ attempt: 1, exit: { kind: 'error', code: 'no_such_code', message: 'x' } }),
    ).toBeUndefined();
    expect(stored({ attempt: 1, exit: { kind: 'vanished' } })).toBeUndefined();
  });
});
