/** Matrix steps as the orchestrator runs them: compiled from a file, so the cells are the compiler's. */
import { describe, expect, it } from 'vitest';
import { MemoryExecutor } from '../executors/memory/memory-executor.js';
import { compilePipeline, formatPipelineError, type PipelinePlan } from '../pipeline/index.js';
import { runPipeline } from './run-pipeline.js';
import { ctx } from './testing/plans.js';

function compile(source: string): PipelinePlan {
  const result = compilePipeline({ file: 'p.yml', source, context: ctx });
  if (!result.ok) throw new Error(result.errors.map(formatPipelineError).join('\n'));
  return result.plan;
}

describe('matrix steps', () => {
  it('holds max_parallel for the cells, and not for the other steps of the stage', async () => {
    // The cells wait for a flag only `other` sets: `other` must run beside the first two cells.
    const plan = compile(`
steps:
  - name: t
    matrix: { n: [1, 2, 3, 4], max_parallel: 2 }
    commands: ['await go']
  - name: other
    commands: ['sleep 5', 'set go']
`);
    let cells = 0;
    let most = 0;
    const result = await runPipeline(plan, ctx, new MemoryExecutor(), {
      parallelism: 8,
      observer: {
        stepStarted: (_stage, step) => {
          if (step.startsWith('t (')) most = Math.max(most, ++cells);
        },
        stepFinished: (_stage, step) => {
          if (step.startsWith('t (')) cells--;
        },
      },
    });
    expect(result.status).toBe('success');
    expect(result.stages[0]!.steps.map((s) => [s.name, s.status])).toEqual([
      ['t (n=1)', 'success'],
      ['t (n=2)', 'success'],
      ['t (n=3)', 'success'],
      ['t (n=4)', 'success'],
      ['other', 'success'],
    ]);
    expect(most).toBe(2);
  });

  it("holds a stage matrix's max_parallel in cells: the steps of a running cell still run side by side", async () => {
    // In each cell `a` and `b` wait for each other: both must run at once, one cell at a time.
    const plan = compile(`
stages:
  - name: s
    matrix: { n: [1, 2, 3], max_parallel: 1 }
    steps:
      - name: a
        commands: ['set a\${matrix.n}', 'await b\${matrix.n}']
      - name: b
        commands: ['set b\${matrix.n}', 'await a\${matrix.n}']
`);
    // Steps running per cell (`(n=2)`); a cell counts while it has one.
    const running = new Map<string, number>();
    const cellOf = (step: string) => step.replace(/^\w+ /, '');
    let most = 0;
    const result = await runPipeline(plan, ctx, new MemoryExecutor(), {
      parallelism: 8,
      observer: {
        stepStarted: (_stage, step) => {
          running.set(cellOf(step), (running.get(cellOf(step)) ?? 0) + 1);
          most = Math.max(most, running.size);
        },
        stepFinished: (_stage, step) => {
          const left = (running.get(cellOf(step)) ?? 0) - 1;
          if (left > 0) running.set(cellOf(step), left);
          else running.delete(cellOf(step));
        },
      },
    });
    expect(result.status).toBe('success');
    expect(result.stages[0]!.steps.map((s) => s.name)).toEqual([
      'a (n=1)',
      'b (n=1)',
      'a (n=2)',
      'b (n=2)',
      'a (n=3)',
      'b (n=3)',
    ]);
    expect(most).toBe(1);
  });

  it('starts a step that needs a matrix step after every cell succeeded', async () => {
    const executor = new MemoryExecutor();
    const plan = compile(`
steps:
  - name: report
    needs: [t]
    commands: ['echo r']
  - name: t
    matrix: { n: [1, 2, 3] }
    commands: ['sleep \${matrix.n}0']
`);
    const result = await runPipeline(plan, ctx, executor, { parallelism: 8 });
    expect(result.status).toBe('success');
    const started = executor.started.indexOf('default/report');
    for (const cell of ['t (n=1)', 't (n=2)', 't (n=3)']) {
      expect(executor.finished.indexOf(`default/${cell}`)).toBeGreaterThanOrEqual(0);
      expect(started).toBeGreaterThan(executor.started.indexOf(`default/${cell}`));
    }
    expect(executor.finished.at(-1)).toBe('default/report');
  });

  it('a failed cell fails the stage and skips what needs the matrix; allowed to fail, only the latter', async () => {
    const source = (allow: boolean) => `
steps:
  - name: t
    allow_failure: ${allow}
    matrix: { n: [0, 3] }
    commands: ['exit \${matrix.n}']
  - name: report
    needs: [t]
    commands: ['echo r']
`;
    const failed = await runPipeline(compile(source(false)), ctx, new MemoryExecutor());
    expect(failed.status).toBe('failure');
    expect(failed.stages[0]!.reason?.message).toMatch(/^step "t \(n=3\)" /);
    const report = failed.stages[0]!.steps.find((s) => s.name === 'report');
    expect(report?.status).toBe('skipped');

    const allowed = await runPipeline(compile(source(true)), ctx, new MemoryExecutor());
    expect(allowed.status).toBe('success');
    expect(allowed.stages[0]!.steps.map((s) => [s.name, s.status])).toEqual([
      ['t (n=0)', 'success'],
      ['t (n=3)', 'failure'],
      ['report', 'skipped'],
    ]);
    expect(allowed.stages[0]!.steps[2]!.reason?.message).toBe(
      'skipped: needs "t (n=3)", which ended in failure',
    );
  });
});
