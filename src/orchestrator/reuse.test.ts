/** Re-run failed: which steps an earlier build's results stand for, and a run that takes them. */
import { describe, expect, it } from 'vitest';
import { MemoryExecutor } from '../executors/memory/memory-executor.js';
import { compilePipeline, formatPipelineError, type PipelinePlan } from '../pipeline/index.js';
import { planReuse, type PreviousRun } from './reuse.js';
import { runPipeline } from './run-pipeline.js';
import { ctx, plan, stage, step } from './testing/plans.js';
import type { Reason, StepResult } from './types.js';

const ok = { status: 'success' } as const;
const failed = { status: 'failure', reason: { code: 'exit_code', message: 'exit code 1' } } as const;
const skippedBy = (code: Reason['code']) => ({ status: 'skipped', reason: { code, message: code } }) as const;

const reusedResult = (_stage: string, name: string): StepResult => ({
  name,
  status: 'success',
  exitCode: 0,
  durationMs: 5,
  attempts: 1,
  allowFailure: false,
});

/** The reused steps, as `stage/step`. */
function reusedOf(p: PipelinePlan, previous: PreviousRun): string[] {
  const reuse = planReuse(p, previous, reusedResult);
  return Object.entries(reuse.stages).flatMap(([s, steps]) => Object.keys(steps).map((n) => `${s}/${n}`));
}

function compile(source: string): PipelinePlan {
  const result = compilePipeline({ file: 'p.yml', source, context: ctx });
  if (!result.ok) throw new Error(result.errors.map(formatPipelineError).join('\n'));
  return result.plan;
}

describe('planReuse', () => {
  const p = plan(
    stage('prepare', [step('deps', []), step('lint', [])]),
    stage('build', [
      step('a', []),
      step('b', []),
      step('c', [], { needs: ['b'] }),
      step('d', [], { needs: ['c'] }),
      step('e', [], { needs: ['a'] }),
    ]),
    stage('deploy', [step('ship', [])]),
  );

  it('reuses what succeeded; runs the failed step, what needs it transitively, and every later stage', () => {
    const previous: PreviousRun = {
      stages: {
        prepare: { deps: ok, lint: ok },
        build: { a: ok, b: failed, c: skippedBy('needs_failed'), d: skippedBy('needs_failed'), e: ok },
        deploy: { ship: skippedBy('earlier_failure') },
      },
    };
    expect(reusedOf(p, previous)).toEqual(['prepare/deps', 'prepare/lint', 'build/a', 'build/e']);
  });

  it('runs a step that succeeded when it needs a step that runs again, and a later stage that succeeded', () => {
    const previous: PreviousRun = {
      stages: {
        prepare: { deps: ok, lint: skippedBy('fail_fast') },
        build: { a: ok, b: ok, c: ok, d: ok, e: ok },
        deploy: { ship: ok },
      },
    };
    // lint did not run (fail-fast after a cancel, say): it runs, and everything after its stage.
    expect(reusedOf(p, previous)).toEqual(['prepare/deps']);
  });

  it('runs a step it cannot find in the earlier build (the compiler changed), and a step skipped by when is decided again', () => {
    const previous: PreviousRun = {
      stages: {
        prepare: { deps: ok, lint: ok },
        build: { a: ok, c: ok, d: ok, e: ok },
        deploy: { ship: ok },
      },
    };
    expect(reusedOf(p, previous)).toEqual(['prepare/deps', 'prepare/lint', 'build/a', 'build/e']);

    const filtered: PreviousRun = {
      stages: {
        prepare: { deps: skippedBy('when'), lint: skippedBy('when') },
        build: { a: ok, b: ok, c: ok, d: failed, e: ok },
        deploy: { ship: skippedBy('earlier_failure') },
      },
    };
    expect(reusedOf(p, filtered)).toEqual(['build/a', 'build/b', 'build/c', 'build/e']);
  });

  it('runs a failed matrix cell alone, and the step that needs the matrix', () => {
    const m = compile(`
steps:
  - name: test
    matrix: { node: [18, 20, 22] }
    commands: ['echo \${matrix.node}']
  - name: report
    needs: [test]
    commands: ['echo done']
`);
    const names = m.stages[0]!.steps.map((s) => s.name);
    expect(names).toEqual(['test (node=18)', 'test (node=20)', 'test (node=22)', 'report']);
    const previous: PreviousRun = {
      stages: {
        [m.stages[0]!.name]: {
          'test (node=18)': ok,
          'test (node=20)': failed,
          'test (node=22)': ok,
          report: skippedBy('needs_failed'),
        },
      },
    };
    const s = m.stages[0]!.name;
    expect(reusedOf(m, previous)).toEqual([`${s}/test (node=18)`, `${s}/test (node=22)`]);
  });
});

describe('runPipeline with reused results', () => {
  it('runs only what is not reused; needs, when.status, approval and the statuses see the reused results', async () => {
    const p = plan(
      stage('prepare', [step('deps', ['exit 1'])], { approval: true }),
      stage('build', [
        step('a', ['exit 1']),
        step('b', ['echo b']),
        step('c', ['echo c'], { needs: ['a', 'b'] }),
      ]),
      stage('notify', [step('on-failure', ['echo failed'])], { when: { status: ['failure'] } }),
      stage('deploy', [step('ship', ['echo ship'])]),
    );
    const previous: PreviousRun = {
      stages: {
        prepare: { deps: ok },
        build: { a: ok, b: failed, c: skippedBy('needs_failed') },
        notify: { 'on-failure': ok },
        deploy: { ship: skippedBy('earlier_failure') },
      },
    };
    const reuse = planReuse(p, previous, reusedResult);
    const executor = new MemoryExecutor();
    const finished: string[] = [];
    let asked = 0;
    const result = await runPipeline(p, ctx, executor, {
      reuse,
      approver: {
        request: () => {
          asked++;
          return Promise.resolve({ decision: 'approve' });
        },
      },
      observer: { stepFinished: (s, n) => finished.push(`${s}/${n}`) },
    });
    // `deps` and `a` would fail if they ran; the whole-reused stage needs no approval again.
    expect(executor.started).toEqual(['build/b', 'build/c', 'deploy/ship']);
    expect(asked).toBe(0);
    expect(result.status).toBe('success');
    expect(result.stages.map((s) => [s.name, s.status])).toEqual([
      ['prepare', 'success'],
      ['build', 'success'],
      ['notify', 'skipped'],
      ['deploy', 'success'],
    ]);
    expect(result.stages[1]!.steps.map((s) => [s.name, s.status, s.durationMs])).toEqual([
      ['a', 'success', 5],
      ['b', 'success', expect.any(Number)],
      ['c', 'success', expect.any(Number)],
    ]);
    // Reused steps are the caller's to record: no events for them.
    expect(finished).not.toContain('prepare/deps');
    expect(finished).not.toContain('build/a');
  });

  it('asks no approval again for a partly reused stage a person approved before; a stage that runs whole is asked', async () => {
    const p = plan(
      stage('deploy', [step('us', ['exit 1']), step('eu', ['echo eu'])], { approval: true }),
      stage('verify', [step('smoke', ['echo smoke'])], { approval: true }),
      stage('announce', [step('post', ['echo post'])], { approval: true }),
    );
    const previous: PreviousRun = {
      stages: { deploy: { us: ok, eu: failed }, verify: { smoke: skippedBy('earlier_failure') } },
      approved: { deploy: { number: 7, by: 'alice' }, verify: { number: 7, by: 'alice' } },
    };
    const reuse = planReuse(p, previous, reusedResult);
    // Only a stage with reused steps stands on its earlier approval.
    expect(reuse.approved).toEqual({ deploy: { number: 7, by: 'alice' } });
    const executor = new MemoryExecutor();
    const asked: string[] = [];
    const result = await runPipeline(p, ctx, executor, {
      reuse,
      approver: {
        request: (stageName) => {
          asked.push(stageName);
          return Promise.resolve({ decision: 'approve' });
        },
      },
    });
    expect(asked).toEqual(['verify', 'announce']);
    expect(executor.started).toEqual(['deploy/eu', 'verify/smoke', 'announce/post']);
    expect(result.status).toBe('success');
  });

  it('fails the build as usual when a step run again fails, and a later when.status failure stage runs', async () => {
    const p = plan(
      stage('build', [step('a', ['exit 1']), step('b', ['exit 1'])]),
      stage('notify', [step('on-failure', ['echo failed'])], { when: { status: ['failure'] } }),
    );
    const reuse = planReuse(
      p,
      { stages: { build: { a: ok, b: failed }, notify: { 'on-failure': ok } } },
      reusedResult,
    );
    const executor = new MemoryExecutor();
    const result = await runPipeline(p, ctx, executor, { reuse });
    expect(executor.started).toEqual(['build/b', 'notify/on-failure']);
    expect(result.status).toBe('failure');
    expect(result.stages[0]!.steps.map((s) => s.status)).toEqual(['success', 'failure']);
  });
});
