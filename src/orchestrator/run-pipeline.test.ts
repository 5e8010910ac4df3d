import { describe, expect, it } from 'vitest';
import { MemoryExecutor } from '../executors/memory/memory-executor.js';
import type { BuildContext, StagePlan } from '../pipeline/types.js';
import { runPipeline } from './run-pipeline.js';
import { describeAttempt } from './step-runner.js';
import type { ApprovalDecision, BuildObserver, LogLine } from './types.js';
import { ctx, plan, stage, step } from './testing/plans.js';

describe('runPipeline', () => {
  it('runs stages in order and reports a success tree', async () => {
    const executor = new MemoryExecutor();
    const result = await runPipeline(
      plan(stage('a', [step('one', ['echo 1'])]), stage('b', [step('two', ['echo 2'])])),
      ctx,
      executor,
    );
    expect(result.status).toBe('success');
    expect(executor.started).toEqual(['a/one', 'b/two']);
    expect(result.stages.map((s) => [s.name, s.status, s.steps[0]!.exitCode, s.steps[0]!.attempts])).toEqual([
      ['a', 'success', 0, 1],
      ['b', 'success', 0, 1],
    ]);
    expect(executor.destroyed).toEqual(['b1']);
  });

  it('runs the steps of a stage in parallel up to the limit', async () => {
    const executor = new MemoryExecutor();
    const steps = Array.from({ length: 6 }, (_, i) => step(`s${i}`, ['sleep 20']));
    await runPipeline(plan(stage('a', steps)), ctx, executor, { parallelism: 3 });
    expect(executor.maxConcurrent).toBe(3);
  });

  it('overlaps parallel steps for real: each waits for a flag the other sets', async () => {
    const executor = new MemoryExecutor();
    const result = await runPipeline(
      plan(stage('a', [step('x', ['set x', 'await y']), step('y', ['set y', 'await x'])])),
      ctx,
      executor,
      { parallelism: 2 },
    );
    expect(result.status).toBe('success');
  });

  it('respects needs within a stage', async () => {
    const executor = new MemoryExecutor();
    await runPipeline(
      plan(
        stage('a', [
          step('archive', ['echo a'], { needs: ['compile'] }),
          step('compile', ['sleep 10']),
          step('lint', ['echo l']),
        ]),
      ),
      ctx,
      executor,
      { parallelism: 4 },
    );
    expect(executor.started.indexOf('a/archive')).toBeGreaterThan(executor.finished.indexOf('a/compile'));
    expect(executor.started.slice(0, 2).sort()).toEqual(['a/compile', 'a/lint']);
  });

  it('skips a step whose need failed, naming the need', async () => {
    const result = await runPipeline(
      plan(
        stage('a', [
          step('compile', ['exit 2'], { allowFailure: true }),
          step('archive', ['echo'], { needs: ['compile'] }),
        ]),
      ),
      ctx,
      new MemoryExecutor(),
    );
    const [compile, archive] = result.stages[0]!.steps;
    expect(compile!.status).toBe('failure');
    expect(archive!.status).toBe('skipped');
    expect(archive!.reason).toEqual({
      code: 'needs_failed',
      message: 'skipped: needs "compile", which ended in failure',
    });
    expect(result.status).toBe('success');
  });

  it('fail-fast cancels running siblings and skips unstarted ones and later stages', async () => {
    const executor = new MemoryExecutor();
    const result = await runPipeline(
      plan(
        stage('test', [
          step('slow', ['hang']),
          step('bad', ['sleep 5', 'exit 3']),
          step('later', ['echo'], { needs: ['slow'] }),
        ]),
        stage('package', [step('make', ['echo'])]),
      ),
      ctx,
      executor,
      { parallelism: 4 },
    );
    const [slow, bad, later] = result.stages[0]!.steps;
    expect(bad).toMatchObject({
      status: 'failure',
      exitCode: 3,
      reason: { code: 'exit_code', message: 'exited with code 3' },
    });
    expect(slow).toMatchObject({ status: 'cancelled', reason: { code: 'fail_fast' } });
    expect(later).toMatchObject({ status: 'skipped', reason: { code: 'fail_fast' } });
    expect(result.stages[0]!.status).toBe('failure');
    expect(result.stages[1]).toMatchObject({ status: 'skipped', reason: { code: 'earlier_failure' } });
    expect(result.status).toBe('failure');
    expect(executor.started).not.toContain('package/make');
  });

  it('allow_failure keeps the stage green and siblings running', async () => {
    const result = await runPipeline(
      plan(
        stage('a', [step('lint', ['exit 1'], { allowFailure: true }), step('unit', ['sleep 10', 'echo ok'])]),
      ),
      ctx,
      new MemoryExecutor(),
    );
    expect(result.stages[0]!.steps.map((s) => s.status)).toEqual(['failure', 'success']);
    expect(result.status).toBe('success');
  });

  it('retries a failed step up to `retries` more times', async () => {
    const executor = new MemoryExecutor();
    const result = await runPipeline(
      plan(
        stage('a', [
          step('flaky', ['flaky 2', 'echo ok'], { retries: 2 }),
          step('never', ['exit 1'], { retries: 1, allowFailure: true }),
        ]),
      ),
      ctx,
      executor,
    );
    expect(result.stages[0]!.steps.map((s) => [s.status, s.attempts])).toEqual([
      ['success', 3],
      ['failure', 2],
    ]);
  });

  it('tells the observer, before each retry, how many attempts there are and why the last one ended', async () => {
    const started: string[] = [];
    const observer: BuildObserver = {
      stepStarted: (stage, name, attempt, info) =>
        started.push(`${stage}/${name} ${attempt}: ${describeAttempt(attempt, info)}`),
    };
    await runPipeline(
      plan(
        stage('a', [
          step('flaky', ['flaky 2', 'echo ok'], { retries: 2 }),
          step('slow', ['hang'], { timeoutMs: 20, retries: 1, allowFailure: true }),
        ]),
      ),
      ctx,
      new MemoryExecutor(),
      { observer },
    );
    expect(started.filter((s) => s.startsWith('a/flaky'))).toEqual([
      'a/flaky 1: ',
      'a/flaky 2: attempt 2 of 3 (attempt 1 failed: exited with code 1)',
      'a/flaky 3: attempt 3 of 3 (attempt 2 failed: exited with code 1)',
    ]);
    expect(started.filter((s) => s.startsWith('a/slow'))).toEqual([
      'a/slow 1: ',
      'a/slow 2: attempt 2 of 2 (attempt 1 failed: timed out after 20ms)',
    ]);
  });

  it('kills a step at its timeout and fails it with the reason', async () => {
    const result = await runPipeline(
      plan(stage('a', [step('slow', ['hang'], { timeoutMs: 30 })])),
      ctx,
      new MemoryExecutor(),
    );
    expect(result.stages[0]!.steps[0]).toMatchObject({
      status: 'failure',
      reason: { code: 'timeout', message: 'timed out after 30ms' },
    });
    expect(result.status).toBe('failure');
  });

  it('retries after a timeout', async () => {
    const result = await runPipeline(
      plan(stage('a', [step('slow', ['hang'], { timeoutMs: 20, retries: 1 })])),
      ctx,
      new MemoryExecutor(),
    );
    expect(result.stages[0]!.steps[0]).toMatchObject({ status: 'failure', attempts: 2 });
  });

  it('an executor error is `error`, not failure, and not retried', async () => {
    const result = await runPipeline(
      plan(
        stage('a', [step('x', ['error image "nope" not found'], { retries: 3 })]),
        stage('b', [step('y', ['echo'])]),
      ),
      ctx,
      new MemoryExecutor(),
    );
    expect(result.stages[0]!.steps[0]).toMatchObject({
      status: 'error',
      attempts: 1,
      // The executor's own code (the memory executor's `error` instruction: internal).
      reason: { code: 'internal', message: 'image "nope" not found' },
    });
    expect(result.status).toBe('error');
    expect(result.stages[1]!.status).toBe('skipped');
  });

  it('when.status stages run after a failure; default stages do not', async () => {
    const result = await runPipeline(
      plan(
        stage('test', [step('t', ['exit 1'])]),
        stage('deploy', [step('d', ['echo'])]),
        stage('notify', [step('n', ['echo'])], { when: { status: ['success', 'failure'] } }),
        stage('only-ok', [step('o', ['echo'])], { when: { status: ['success'] } }),
      ),
      ctx,
      new MemoryExecutor(),
    );
    expect(result.stages.map((s) => s.status)).toEqual(['failure', 'skipped', 'success', 'skipped']);
    expect(result.status).toBe('failure');
  });

  it('`failure` in when.status admits an executor error too', async () => {
    const result = await runPipeline(
      plan(
        stage('test', [step('t', ['error engine down'])]),
        stage('notify', [step('n', ['echo'])], { when: { status: ['failure'] } }),
      ),
      ctx,
      new MemoryExecutor(),
    );
    expect(result.stages[1]!.status).toBe('success');
  });

  it('evaluates when.branch anchored at both ends, and when.event', async () => {
    const run = (branch: string, event: BuildContext['event']) =>
      runPipeline(
        plan(
          stage('package', [step('p', ['echo'])], {
            when: { branch: 'main|release/.*', event: ['push', 'tag'] },
          }),
        ),
        { ...ctx, branch, event },
        new MemoryExecutor(),
      );
    expect((await run('main', 'push')).stages[0]!.status).toBe('success');
    expect((await run('release/1.2', 'tag')).stages[0]!.status).toBe('success');
    const notAnchored = await run('my-main', 'push');
    expect(notAnchored.stages[0]).toMatchObject({
      status: 'skipped',
      reason: { code: 'when', message: 'skipped: branch "my-main" does not match "main|release/.*"' },
    });
    expect((await run('main', 'pull_request')).stages[0]).toMatchObject({
      status: 'skipped',
      reason: { message: 'skipped: event "pull_request" is not one of push, tag' },
    });
    expect(notAnchored.status).toBe('skipped');
  });

  it('without an approver, an approval stage and the rest are skipped with "approval required"', async () => {
    const executor = new MemoryExecutor();
    const result = await runPipeline(
      plan(
        stage('build', [step('b', ['echo'])]),
        stage('deploy', [step('ship', ['echo'])], { approval: true }),
        stage('notify', [step('n', ['echo'])], { when: { status: ['success', 'failure'] } }),
      ),
      ctx,
      executor,
    );
    expect(result.stages.map((s) => [s.status, s.reason?.message])).toEqual([
      ['success', undefined],
      ['skipped', 'approval required'],
      ['skipped', 'approval required'],
    ]);
    expect(result.status).toBe('success');
    expect(executor.started).toEqual(['build/b']);
  });

  it('waits for an approver; approve runs the stage, reject fails it', async () => {
    const waiting: string[] = [];
    const observer: BuildObserver = { stageWaiting: (s) => waiting.push(s) };
    const gated = plan(stage('deploy', [step('ship', ['echo shipped'])], { approval: true }));
    const approve = { request: () => Promise.resolve<ApprovalDecision>({ decision: 'approve', by: 'ana' }) };
    const approved = await runPipeline(gated, ctx, new MemoryExecutor(), { approver: approve, observer });
    expect(approved.status).toBe('success');
    expect(waiting).toEqual(['deploy']);

    const reject = { request: () => Promise.resolve<ApprovalDecision>({ decision: 'reject', by: 'bo' }) };
    const rejected = await runPipeline(gated, ctx, new MemoryExecutor(), { approver: reject });
    expect(rejected.stages[0]).toMatchObject({
      status: 'failure',
      reason: { code: 'approval_rejected', message: 'rejected by bo' },
    });
    expect(rejected.status).toBe('failure');
  });

  it('cancel kills running steps, skips the rest, and still destroys the build', async () => {
    const executor = new MemoryExecutor();
    const controller = new AbortController();
    const started: string[] = [];
    const run = runPipeline(
      plan(stage('a', [step('x', ['hang']), step('y', ['hang'])]), stage('b', [step('z', ['echo'])])),
      ctx,
      executor,
      {
        signal: controller.signal,
        observer: {
          stepStarted: (_s, st) => {
            started.push(st);
            if (started.length === 2) controller.abort();
          },
        },
      },
    );
    const result = await run;
    expect(result.status).toBe('cancelled');
    expect(result.stages[0]!.steps.map((s) => s.status)).toEqual(['cancelled', 'cancelled']);
    expect(result.stages[1]).toMatchObject({ status: 'skipped', reason: { code: 'cancelled' } });
    expect(executor.destroyed).toEqual(['b1']);
  });

  it('cancel while waiting for approval ends the build cancelled', async () => {
    const controller = new AbortController();
    const approver = {
      request: (_stage: string, signal: AbortSignal) =>
        new Promise<ApprovalDecision>((_resolve, reject) =>
          signal.addEventListener('abort', () => reject(new Error('aborted'))),
        ),
    };
    const run = runPipeline(
      plan(stage('deploy', [step('s', ['echo'])], { approval: true })),
      ctx,
      new MemoryExecutor(),
      {
        approver,
        signal: controller.signal,
        observer: { stageWaiting: () => controller.abort() },
      },
    );
    expect((await run).status).toBe('cancelled');
  });

  it('a failing prepare is an error for the build, every stage skipped, and destroy still runs', async () => {
    const executor = new MemoryExecutor({ failPrepare: 'engine not reachable at unix:///nope.sock' });
    const result = await runPipeline(plan(stage('a', [step('x', ['echo'])])), ctx, executor);
    expect(result).toMatchObject({
      status: 'error',
      reason: { code: 'executor', message: 'engine not reachable at unix:///nope.sock' },
    });
    expect(result.stages[0]!.status).toBe('skipped');
    expect(executor.destroyed).toEqual(['b1']);
  });

  it('emits events in order and masks secrets in every line, even multi-line values', async () => {
    const lines: LogLine[] = [];
    const events: string[] = [];
    const result = await runPipeline(
      plan(
        stage('a', [
          step('x', ['echo token=s3cr3t-value!', 'warn line two of key', 'echo safe'], {
            secrets: [
              { env: 'TOKEN', secret: 'api' },
              { env: 'KEY', secret: 'key' },
            ],
          }),
        ]),
      ),
      ctx,
      new MemoryExecutor(),
      {
        secrets: {
          get: (n) => Promise.resolve(n === 'api' ? 's3cr3t-value!' : 'line one of key\nline two of key'),
        },
        observer: {
          stageStarted: (s) => events.push(`stage+ ${s}`),
          stepStarted: (s, st, a) => events.push(`step+ ${s}/${st}#${a}`),
          stepLog: (_s, _st, line) => lines.push(line),
          stepFinished: (s, st, r) => events.push(`step- ${s}/${st} ${r.status}`),
          stageFinished: (s, r) => events.push(`stage- ${s} ${r.status}`),
        },
      },
    );
    expect(result.status).toBe('success');
    expect(lines.map((l) => [l.stream, l.text])).toEqual([
      ['stdout', 'token=********'],
      ['stderr', '********'],
      ['stdout', 'safe'],
    ]);
    expect(events).toEqual(['stage+ a', 'step+ a/x#1', 'step- a/x success', 'stage- a success']);
  });

  describe('secrets, resolved per stage when it runs', () => {
    /** A secret source that records every name it is asked for. */
    const source = (values: Record<string, string>) => {
      const asked: string[] = [];
      return {
        asked,
        get: (name: string) => {
          asked.push(name);
          return Promise.resolve(values[name]);
        },
      };
    };
    const deploy = (extra: Partial<StagePlan> = {}) =>
      stage(
        'deploy',
        [step('ship', ['echo ship'], { secrets: [{ env: 'TOKEN', secret: 'deploy_token' }] })],
        extra,
      );

    it('a stage that never runs (not approved, or filtered by when) never asks for its secrets', async () => {
      for (const gated of [deploy({ approval: true }), deploy({ when: { branch: 'release/.*' } })]) {
        const executor = new MemoryExecutor();
        const secrets = source({});
        const result = await runPipeline(
          plan(stage('test', [step('unit', ['echo ok'])]), gated),
          ctx,
          executor,
          {
            secrets,
          },
        );
        expect(result.status).toBe('success');
        expect(executor.started).toEqual(['test/unit']);
        expect(result.stages[1]!.status).toBe('skipped');
        expect(secrets.asked).toEqual([]);
      }
    });

    it('a missing secret fails the steps that need it with error when their stage runs, after earlier stages ran', async () => {
      const executor = new MemoryExecutor();
      const finished: string[] = [];
      const result = await runPipeline(
        plan(stage('test', [step('unit', ['echo ok'])]), deploy({ approval: true })),
        ctx,
        executor,
        {
          secrets: source({}),
          approver: { request: () => Promise.resolve({ decision: 'approve' }) },
          observer: { stepFinished: (st, name, r) => finished.push(`${st}/${name} ${r.status}`) },
        },
      );
      expect(executor.started).toEqual(['test/unit']);
      const reason = { code: 'secret', message: 'secret "deploy_token" is not defined' };
      expect(result.stages[1]!.steps[0]).toMatchObject({
        status: 'error',
        attempts: 0,
        exitCode: null,
        reason,
      });
      expect(result.stages[1]).toMatchObject({ status: 'error' });
      expect(result).toMatchObject({ status: 'error', reason: { code: 'secret' } });
      expect(result.reason!.message).toContain('secret "deploy_token" is not defined');
      expect(finished).toEqual(['test/unit success', 'deploy/ship error']);
      expect(executor.destroyed).toEqual(['b1']);
    });

    it('asks for each secret once, however many stages use it, and masks it from the stage that has it', async () => {
      const lines: string[] = [];
      const secrets = source({ api: 's3cr3t-value!' });
      const uses = (name: string) =>
        stage(name, [step('x', ['echo s3cr3t-value!'], { secrets: [{ env: 'T', secret: 'api' }] })]);
      const result = await runPipeline(plan(uses('a'), uses('b')), ctx, new MemoryExecutor(), {
        secrets,
        observer: { stepLog: (_s, _st, line) => lines.push(line.text) },
      });
      expect(result.status).toBe('success');
      expect(secrets.asked).toEqual(['api']);
      expect(lines).toEqual(['********', '********']);
    });

    it("a source that fails is that stage's error, with its words", async () => {
      const result = await runPipeline(plan(deploy()), ctx, new MemoryExecutor(), {
        secrets: { get: () => Promise.reject(new Error('cannot be decrypted')) },
      });
      expect(result.stages[0]!.steps[0]).toMatchObject({
        status: 'error',
        reason: { code: 'secret', message: 'secret "deploy_token" cannot be read: cannot be decrypted' },
      });
    });

    it('a service secret that is not defined is a build error before anything runs', async () => {
      const executor = new MemoryExecutor();
      const result = await runPipeline(
        {
          ...plan(stage('a', [step('x', ['echo'])])),
          services: [{ name: 'db', env: {}, secrets: [{ env: 'PASSWORD', secret: 'missing' }] }],
        },
        ctx,
        executor,
        { secrets: source({}) },
      );
      expect(result).toMatchObject({
        status: 'error',
        reason: { code: 'secret', message: 'secret "missing" is not defined' },
      });
      expect(executor.prepared).toHaveLength(0);
    });
  });
});
