import { describe, expect, it } from 'vitest';
import { MemoryExecutor } from '../executors/memory/memory-executor.js';
import { runPipeline } from './run-pipeline.js';
import { ctx, plan, stage, step } from './testing/plans.js';

describe('afterAttempt', () => {
  it('runs after every attempt, failed ones too, before afterStep, and cannot change the result', async () => {
    const seen: string[] = [];
    const result = await runPipeline(
      plan(stage('a', [step('ok', ['echo']), step('flaky', ['exit 1'], { retries: 1 })])),
      ctx,
      new MemoryExecutor(),
      {
        parallelism: 1,
        afterAttempt: (stage, s, attempt, handle, exit) => {
          seen.push(`${stage}/${s.name}#${attempt} ${exit.kind} ${exit.exitCode} ${handle.workspace}`);
          return Promise.reject(new Error('a report could not be read'));
        },
        afterStep: (stage, s, _handle, exit) => {
          seen.push(`afterStep ${stage}/${s.name}`);
          return Promise.resolve(exit);
        },
      },
    );
    expect(seen).toEqual([
      'a/ok#1 exited 0 /memory/b1',
      'afterStep a/ok',
      'a/flaky#1 exited 1 /memory/b1',
      'a/flaky#2 exited 1 /memory/b1',
    ]);
    expect(result.stages[0]!.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['ok', 'success', 1],
      ['flaky', 'failure', 2],
    ]);
  });
});
