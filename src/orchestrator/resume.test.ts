import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE_LENGTH } from '../executors/lines.js';
import { MemoryExecutor } from '../executors/memory/memory-executor.js';
import type { OutputPosition, OutputStream, StepRef } from '../executors/types.js';
import type { PipelinePlan } from '../pipeline/types.js';
import { MASK, createMasker, maskingSink } from './masker.js';
import { runPipeline } from './run-pipeline.js';
import type { BuildObserver, LogLine, ResumeState, RunOptions, StepResume } from './types.js';
import { ctx, plan, stage, step } from './testing/plans.js';

/**
 * What a server keeps of a build while it runs (records and the stored log), and the
 * ResumeState a successor builds from it: the same events, whichever run produced them.
 */
class Records {
  readonly state: ResumeState = { stages: {} };
  readonly log: Array<{ step: string; line: LogLine }> = [];
  readonly events: string[] = [];
  readonly refs = new Map<string, StepRef>();
  onLine: (step: string, line: LogLine) => void = () => {};

  readonly observer: BuildObserver = {
    stageStarted: (stage) => {
      this.events.push(`stageStarted ${stage}`);
      this.state.stages[stage] = { steps: {} };
    },
    stageFinished: (stage, result) => {
      this.events.push(`stageFinished ${stage} ${result.status}`);
      this.state.stages[stage] = { ...this.state.stages[stage], steps: {}, ended: result };
    },
    stepStarted: (stage, step, attempt) => {
      this.events.push(`stepStarted ${stage}/${step} ${attempt}`);
      this.stage(stage).steps[step] = {
        kind: 'running',
        attempt,
        position: { stdout: 0, stderr: 0 },
        startedAt: Date.now(),
      };
    },
    stepPending: (stage, step, text) => this.events.push(`stepPending ${stage}/${step} ${text}`),
    stepLog: (stage, step, line) => {
      this.log.push({ step: `${stage}/${step}`, line });
      const entry = this.stage(stage).steps[step];
      if (entry?.kind === 'running' && line.position?.attempt === entry.attempt) {
        const at = line.position;
        entry.position[at.stream] = Math.max(entry.position[at.stream], at.pieces);
      }
      this.onLine(`${stage}/${step}`, line);
    },
    stepFinished: (stage, step, result) => {
      this.events.push(`stepFinished ${stage}/${step} ${result.status}`);
      this.stage(stage).steps[step] = { kind: 'ended', result };
    },
  };

  readonly onStepRunning: NonNullable<RunOptions['onStepRunning']> = (stage, step, attempt, ref) => {
    const entry = this.stage(stage).steps[step];
    if (entry?.kind === 'running' && entry.attempt === attempt) {
      this.stage(stage).steps[step] = { ...entry, ref, startedAt: ref.startedAt };
    }
    this.refs.set(`${stage}/${step}`, ref);
    return Promise.resolve();
  };

  readonly onStepExited: NonNullable<RunOptions['onStepExited']> = (stage, step, attempt, exit) => {
    const entry = this.stage(stage).steps[step];
    if (entry?.kind === 'running' && entry.attempt === attempt)
      this.stage(stage).steps[step] = { ...entry, exit };
    return Promise.resolve();
  };

  /** The stored text of a step's log, per stream. */
  text(key: string, stream: OutputStream = 'stdout'): string[] {
    return this.log.filter((l) => l.step === key && l.line.stream === stream).map((l) => l.line.text);
  }

  running(stage: string, step: string): Extract<StepResume, { kind: 'running' }> {
    const entry = this.stage(stage).steps[step];
    if (entry?.kind !== 'running')
      throw new Error(`${stage}/${step} is not running: ${JSON.stringify(entry)}`);
    return entry;
  }

  private stage(name: string) {
    return (this.state.stages[name] ??= { steps: {} });
  }
}

/** A first run that detaches when `key` prints `text`, as a stopping server does. */
async function runUntilDetached(
  p: PipelinePlan,
  executor: MemoryExecutor,
  records: Records,
  key: string,
  text: string,
): Promise<void> {
  const detach = new AbortController();
  records.onLine = (step, line) => {
    if (step === key && line.text === text) detach.abort();
  };
  const result = await runPipeline(p, ctx, executor, {
    observer: records.observer,
    onStepRunning: records.onStepRunning,
    detach: detach.signal,
  });
  records.onLine = () => {};
  expect(result.detached).toBe(true);
  expect(executor.destroyed).toEqual([]);
}

function resumeOptions(records: Records): RunOptions {
  return {
    observer: records.observer,
    onStepRunning: records.onStepRunning,
    onStepExited: records.onStepExited,
    resume: records.state,
  };
}

/**
 * A first run whose process dies right after `key` ended and its exit was stored, before the
 * executor released the step: the stored exit is awaited forever, so the release never comes
 * (and the run never resolves, as a killed process's would not). Resolves then.
 */
function runUntilDiedAfterExit(p: PipelinePlan, executor: MemoryExecutor, records: Records, key: string) {
  return new Promise<void>((died) => {
    void runPipeline(p, ctx, executor, {
      observer: records.observer,
      onStepRunning: records.onStepRunning,
      onStepExited: async (stage, step, attempt, exit) => {
        await records.onStepExited(stage, step, attempt, exit);
        if (`${stage}/${step}` !== key) return;
        died();
        await new Promise(() => {});
      },
    });
  });
}

describe('runPipeline: detach and resume', () => {
  it('resumes a build whose step 2 of 3 runs: every line once, the later steps run', async () => {
    const executor = new MemoryExecutor();
    const p = plan(
      stage('build', [
        step('one', ['echo 1']),
        step('two', ['echo l1', 'warn w1', 'echo l2', 'await go', 'echo l3', 'await go2', 'echo l4'], {
          needs: ['one'],
          // The resumed attempt's timeout counts from its start: a wrong remainder (0) fails it.
          timeoutMs: 600_000,
        }),
        step('three', ['echo 3'], { needs: ['two'] }),
      ]),
      stage('after', [step('four', ['echo 4'])]),
    );
    const records = new Records();
    await runUntilDetached(p, executor, records, 'build/two', 'l2');
    expect(records.running('build', 'two')).toMatchObject({ attempt: 1, position: { stdout: 2, stderr: 1 } });

    // Output while no process watches; the rest while the successor follows.
    executor.raise('go');
    records.onLine = (key, line) => {
      if (key === 'build/two' && line.text === 'l3') executor.raise('go2');
    };
    const eventsBefore = records.events.length;
    const result = await runPipeline(p, ctx, executor, resumeOptions(records));

    expect(result.status, JSON.stringify(result)).toBe('success');
    expect(result.detached).toBeUndefined();
    expect(records.text('build/two')).toEqual(['l1', 'l2', 'l3', 'l4']);
    expect(records.text('build/two', 'stderr')).toEqual(['w1']);
    expect(records.text('build/three')).toEqual(['3']);
    expect(records.text('after/four')).toEqual(['4']);
    expect(executor.started).toEqual(['build/one', 'build/two', 'build/three', 'after/four']);
    expect(executor.resumed).toEqual(['b1']);
    expect(executor.destroyed).toEqual(['b1']);
    // The followed attempt and its stage are not announced again; the rest is as usual.
    expect(records.events.slice(eventsBefore)).toEqual([
      'stepFinished build/two success',
      'stepStarted build/three 1',
      'stepFinished build/three success',
      'stageFinished build success',
      'stageStarted after',
      'stepStarted after/four 1',
      'stepFinished after/four success',
      'stageFinished after success',
    ]);
    expect(result.stages[0]!.steps.map((s) => [s.name, s.status, s.attempts])).toEqual([
      ['one', 'success', 1],
      ['two', 'success', 1],
      ['three', 'success', 1],
    ]);
  });

  it('a step that failed (exit 3) while nobody watched is read back: failure, exit code 3, its output', async () => {
    const executor = new MemoryExecutor();
    const p = plan(
      stage('test', [step('unit', ['echo a', 'await go', 'echo b', 'exit 3'])]),
      stage('deploy', [step('ship', ['echo ship'])]),
    );
    const records = new Records();
    await runUntilDetached(p, executor, records, 'test/unit', 'a');
    executor.raise('go');
    const ref = records.refs.get('test/unit')!;
    const ended = await executor.waitStep(
      { buildId: 'b1', workspace: '/memory/b1' },
      ref,
      new AbortController().signal,
    );
    expect(ended).toEqual({ kind: 'exited', exitCode: 3 });

    const result = await runPipeline(p, ctx, executor, resumeOptions(records));
    expect(result.status).toBe('failure');
    expect(result.stages[0]!.steps[0]).toMatchObject({
      status: 'failure',
      exitCode: 3,
      reason: { code: 'exit_code', message: 'exited with code 3' },
    });
    expect(records.text('test/unit')).toEqual(['a', 'b']);
    expect(result.stages[1]!.status).toBe('skipped');
    expect(executor.started).toEqual(['test/unit']);
  });

  it('a followed step that vanished ends the build `error` with reason `gone`', async () => {
    const executor = new MemoryExecutor();
    const p = plan(stage('build', [step('two', ['echo a', 'hang'])]));
    const records = new Records();
    await runUntilDetached(p, executor, records, 'build/two', 'a');
    executor.vanish('build/two');

    const result = await runPipeline(p, ctx, executor, resumeOptions(records));
    expect(result.status).toBe('error');
    expect(result.reason?.code).toBe('gone');
    expect(result.stages[0]!.steps[0]).toMatchObject({ status: 'error', reason: { code: 'gone' } });
    expect(executor.destroyed).toEqual(['b1']);
  });

  it('a step whose exit was stored before its process died is taken as stored, its container released', async () => {
    const executor = new MemoryExecutor();
    const p = plan(
      stage('test', [step('unit', ['echo a', 'exit 3'])]),
      stage('deploy', [step('ship', ['echo'])]),
    );
    const records = new Records();
    await runUntilDiedAfterExit(p, executor, records, 'test/unit');
    expect(records.running('test', 'unit').exit).toEqual({ kind: 'exited', exitCode: 3 });
    // Not released: the process died first.
    expect((await executor.listResources()).map((r) => r.step)).toContain('test/unit');

    const eventsBefore = records.events.length;
    const result = await runPipeline(p, ctx, executor, resumeOptions(records));
    expect(result.stages[0]!.steps[0]).toMatchObject({ status: 'failure', exitCode: 3, attempts: 1 });
    expect(result.stages[1]!.status).toBe('skipped');
    expect(records.text('test/unit')).toEqual(['a']); // nothing read twice
    expect(executor.started).toEqual(['test/unit']);
    expect(records.events.slice(eventsBefore)).toEqual([
      'stepFinished test/unit failure',
      'stageFinished test failure',
      'stageFinished deploy skipped',
    ]);
    expect(await executor.listResources()).toEqual([]);
  });

  it('a step released after its exit was stored, its process dead before the records: the stored exit, not `gone`', async () => {
    const executor = new MemoryExecutor();
    const p = plan(
      stage('build', [step('two', ['echo a', 'echo b'])]),
      stage('after', [step('x', ['echo x'])]),
    );
    const records = new Records();
    await runUntilDiedAfterExit(p, executor, records, 'build/two');
    const ref = records.refs.get('build/two')!;
    // What the dead process did next: the release. The executor has no such step any more.
    await executor.releaseStep({ buildId: 'b1', workspace: '/memory/b1' }, ref);

    const result = await runPipeline(p, ctx, executor, resumeOptions(records));
    expect(result.status, JSON.stringify(result)).toBe('success');
    expect(result.stages[0]!.steps[0]).toMatchObject({ status: 'success', exitCode: 0 });
    expect(records.text('build/two')).toEqual(['a', 'b']);
    expect(records.text('after/x')).toEqual(['x']);
  });

  it('a build whose workspace is gone ends `error` with reason `gone`, nothing started', async () => {
    const executor = new MemoryExecutor();
    const p = plan(stage('build', [step('two', ['echo a', 'hang'])]));
    const records = new Records();
    await runUntilDetached(p, executor, records, 'build/two', 'a');
    await executor.removeResources('b1');

    const result = await runPipeline(p, ctx, executor, resumeOptions(records));
    expect(result.status).toBe('error');
    expect(result.reason).toEqual({ code: 'gone', message: 'the workspace of build b1 is gone' });
    expect(executor.resumed).toEqual([]);
    expect(executor.started).toEqual(['build/two']);
  });

  it('a cancel that came while no process watched stops the followed step and skips the rest', async () => {
    const executor = new MemoryExecutor();
    const p = plan(stage('build', [step('slow', ['echo a', 'hang'])]), stage('after', [step('x', ['echo'])]));
    const records = new Records();
    await runUntilDetached(p, executor, records, 'build/slow', 'a');
    const cancel = new AbortController();
    cancel.abort();

    const result = await runPipeline(p, ctx, executor, { ...resumeOptions(records), signal: cancel.signal });
    expect(result.status).toBe('cancelled');
    expect(result.stages[0]!.steps[0]).toMatchObject({ status: 'cancelled', reason: { code: 'cancelled' } });
    expect(result.stages[1]!.status).toBe('skipped');
    expect(executor.finished).toEqual(['build/slow']);
    expect(await executor.listResources()).toEqual([]);
  });

  it("a resumed step's timeout counts from when it started, not from the resume", async () => {
    const executor = new MemoryExecutor();
    const p = plan(stage('build', [step('slow', ['echo a', 'hang'], { timeoutMs: 600_000 })]));
    const records = new Records();
    await runUntilDetached(p, executor, records, 'build/slow', 'a');
    // Its record says it has run for the whole timeout already.
    const running = records.running('build', 'slow');
    records.state.stages.build!.steps.slow = { ...running, startedAt: running.startedAt - 600_000 };

    const result = await runPipeline(p, ctx, executor, resumeOptions(records));
    expect(result.stages[0]!.steps[0]).toMatchObject({
      status: 'failure',
      reason: { code: 'timeout', message: 'timed out after 10m' },
    });
    expect(records.text('build/slow')).toEqual(['a']);
  });

  it('the pending phase does not count against the timeout', async () => {
    const executor = new MemoryExecutor();
    const timeoutMs = 30;
    const records = new Records();
    const observer: BuildObserver = {
      ...records.observer,
      stepPending: (stage, name, text) => {
        records.observer.stepPending!(stage, name, text);
        // Released well after the timeout would have passed, had the pending phase counted.
        setTimeout(() => executor.raise('pulled'), timeoutMs * 5);
      },
    };
    const result = await runPipeline(
      plan(stage('build', [step('s', ['echo ran'], { image: 'pending:pulled', timeoutMs })])),
      ctx,
      executor,
      { observer },
    );
    expect(result.status, JSON.stringify(result)).toBe('success');
    expect(records.events).toContain('stepPending build/s waiting for pulled');
    expect(records.text('build/s')).toEqual(['ran']);
  });

  it('a detach during the pending phase returns at once; the successor starts that attempt', async () => {
    const executor = new MemoryExecutor();
    const p = plan(stage('build', [step('s', ['echo ran'], { image: 'pending:pulled' })]));
    const records = new Records();
    const detach = new AbortController();
    const observer: BuildObserver = {
      ...records.observer,
      stepPending: () => detach.abort(),
    };
    const first = await runPipeline(p, ctx, executor, {
      observer,
      onStepRunning: records.onStepRunning,
      detach: detach.signal,
    });
    expect(first.detached).toBe(true);
    expect(records.running('build', 's').ref).toBeUndefined();
    expect(executor.started).toEqual([]);

    executor.raise('pulled');
    const result = await runPipeline(p, ctx, executor, resumeOptions(records));
    expect(result.status).toBe('success');
    expect(records.refs.get('build/s')?.attempt).toBe(1);
    expect(records.text('build/s')).toEqual(['ran']);
    expect(records.events.filter((e) => e.startsWith('stepStarted'))).toEqual(['stepStarted build/s 1']);
  });

  it('retries go on after a resumed attempt that failed', async () => {
    const executor = new MemoryExecutor();
    const p = plan(stage('build', [step('flaky', ['echo try', 'await go', 'flaky 1'], { retries: 1 })]));
    const records = new Records();
    await runUntilDetached(p, executor, records, 'build/flaky', 'try');
    executor.raise('go');

    const result = await runPipeline(p, ctx, executor, resumeOptions(records));
    expect(result.stages[0]!.steps[0]).toMatchObject({ status: 'success', attempts: 2 });
    expect(records.events.filter((e) => e.startsWith('stepStarted'))).toEqual([
      'stepStarted build/flaky 1',
      'stepStarted build/flaky 2',
    ]);
    expect(records.text('build/flaky')).toEqual(['try', 'try']);
  });

  it('an approval stage that was waiting asks the approver again', async () => {
    const executor = new MemoryExecutor();
    const p: PipelinePlan = plan({ ...stage('deploy', [step('ship', ['echo shipped'])]), approval: true });
    const records = new Records();
    const detach = new AbortController();
    const first = await runPipeline(p, ctx, executor, {
      observer: { ...records.observer, stageWaiting: () => detach.abort() },
      approver: {
        request: (_stage, signal) => new Promise((_, reject) => signal.addEventListener('abort', reject)),
      },
      detach: detach.signal,
    });
    expect(first.detached).toBe(true);
    records.state.stages.deploy = { waiting: true, steps: {} };

    const asked: string[] = [];
    const result = await runPipeline(p, ctx, executor, {
      ...resumeOptions(records),
      approver: {
        request: (stage) => {
          asked.push(stage);
          return Promise.resolve({ decision: 'approve' });
        },
      },
    });
    expect(asked).toEqual(['deploy']);
    expect(result.status).toBe('success');
    expect(records.text('deploy/ship')).toEqual(['shipped']);
  });

  it('afterStep runs after a successful attempt and may turn it into an error', async () => {
    const executor = new MemoryExecutor();
    const seen: string[] = [];
    const result = await runPipeline(
      plan(stage('a', [step('ok', ['echo'], { artifacts: ['dist/'] }), step('bad', ['exit 1'])])),
      ctx,
      executor,
      {
        parallelism: 1,
        afterStep: (stage, s, handle, exit) => {
          seen.push(`${stage}/${s.name} ${s.artifacts.join()} ${handle.workspace}`);
          return Promise.resolve({
            kind: 'error',
            code: 'internal',
            message: `artifacts failed after ${exit.kind}`,
          });
        },
      },
    );
    expect(seen).toEqual(['a/ok dist/ /memory/b1']);
    expect(result.stages[0]!.steps[0]).toMatchObject({
      status: 'error',
      reason: { code: 'internal', message: 'artifacts failed after exited' },
    });
  });
});

describe('maskingSink positions', () => {
  const SECRET = 'hunter2secret';

  /** Executor pieces of some lines, cut at `max` like an executor's splitter cuts them. */
  function piecesOf(lines: Array<{ stream: OutputStream; text: string }>, max: number) {
    const pieces: Array<{ stream: OutputStream; text: string; continues: boolean }> = [];
    const splitters = Object.fromEntries(
      (['stdout', 'stderr'] as const).map((stream) => [
        stream,
        new LineSplitter((text, continues) => pieces.push({ stream, text, continues }), {
          maxLineLength: max,
        }),
      ]),
    ) as Record<OutputStream, LineSplitter>;
    for (const line of lines) splitters[line.stream].write(Buffer.from(`${line.text}\n`));
    return pieces;
  }

  type Emitted = Array<{ stream: OutputStream; text: string; pieces: number }>;

  /** Feeds the pieces after `from` (per stream, as tailStep does) through a masking sink. */
  function feed(
    pieces: ReturnType<typeof piecesOf>,
    from: OutputPosition,
    count: number,
    end: boolean,
  ): Emitted {
    const out: Emitted = [];
    const sink = maskingSink(
      createMasker([SECRET]),
      (stream, text, n) => out.push({ stream, text, pieces: n }),
      from,
    );
    const skipped = { stdout: 0, stderr: 0 };
    for (const piece of pieces.slice(0, count)) {
      if (skipped[piece.stream]++ < from[piece.stream]) continue;
      sink.line(piece.stream, piece.text, piece.continues);
    }
    if (end) sink.end();
    return out;
  }

  const textOf = (out: Emitted, stream: OutputStream) =>
    out.filter((e) => e.stream === stream).map((e) => e.text);

  it('property: output before a detach plus output resumed from the stored positions is the whole, nothing twice', () => {
    const fragment = fc.constantFrom('a', 'bc', 'xyz', SECRET, SECRET.slice(0, 5), ' ', '1234567');
    const line = fc.record({
      stream: fc.constantFrom<OutputStream>('stdout', 'stderr'),
      text: fc.array(fragment, { maxLength: 6 }).map((parts) => parts.join('')),
    });
    fc.assert(
      fc.property(
        fc.array(line, { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 4, max: 16 }),
        fc.nat(),
        (lines, max, at) => {
          const pieces = piecesOf(lines, max);
          const split = at % (pieces.length + 1);
          const whole = feed(pieces, { stdout: 0, stderr: 0 }, pieces.length, true);
          const before = feed(pieces, { stdout: 0, stderr: 0 }, split, false);
          // What the server computes from the stored log: the highest position per stream.
          const stored: OutputPosition = { stdout: 0, stderr: 0 };
          for (const e of before) stored[e.stream] = Math.max(stored[e.stream], e.pieces);
          const after = feed(pieces, stored, pieces.length, true);
          for (const stream of ['stdout', 'stderr'] as const) {
            expect([...textOf(before, stream), ...textOf(after, stream)]).toEqual(textOf(whole, stream));
            expect(textOf(whole, stream).join('\n')).not.toContain(SECRET);
          }
        },
      ),
    );
  });

  it('a line longer than the piece cap, cut again after masking, carries the count after its last piece', () => {
    const long = `${'x'.repeat(MAX_LINE_LENGTH - 4)}${SECRET}${'y'.repeat(MAX_LINE_LENGTH)}`;
    const pieces = piecesOf(
      [
        { stream: 'stdout', text: 'first' },
        { stream: 'stdout', text: long },
        { stream: 'stdout', text: 'last' },
      ],
      MAX_LINE_LENGTH,
    );
    expect(pieces.map((p) => p.continues)).toEqual([false, true, true, false, false]);
    const out = feed(pieces, { stdout: 0, stderr: 0 }, pieces.length, true);
    expect(out.map((e) => e.pieces)).toEqual([1, 4, 4, 4, 5]);
    expect(out[1]!.text + out[2]!.text + out[3]!.text).toBe(
      `${'x'.repeat(MAX_LINE_LENGTH - 4)}${MASK}${'y'.repeat(MAX_LINE_LENGTH)}`,
    );
    // Detached after the first two of the long line's three pieces: it comes again whole.
    expect(feed(pieces, { stdout: 0, stderr: 0 }, 3, false).map((e) => e.pieces)).toEqual([1]);
  });
});
