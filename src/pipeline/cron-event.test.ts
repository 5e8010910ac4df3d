import { describe, expect, it } from 'vitest';
import { whyStageSkipped } from '../orchestrator/when.js';
import { compilePipeline, formatPipelineError, type PipelinePlan } from './index.js';
import { TEST_CONTEXT } from './testing/context.js';

/** `when: { event: [cron] }`: the event of builds that a project's schedule starts. */
const SOURCE = `
stages:
  - name: nightly
    when: { event: [cron] }
    steps: [{ name: soak, commands: ["echo $SLIPWAY_EVENT"] }]
  - name: always
    steps: [{ name: test, commands: [make test] }]
  - name: release
    when: { event: [push, tag] }
    steps: [{ name: ship, commands: [./ship] }]
`;

function compile(event: 'cron' | 'push'): PipelinePlan {
  const result = compilePipeline({ file: 'p.yml', source: SOURCE, context: { ...TEST_CONTEXT, event } });
  if (!result.ok) throw new Error(result.errors.map(formatPipelineError).join('\n'));
  return result.plan;
}

describe('event cron', () => {
  it('is accepted by when.event and given to steps as SLIPWAY_EVENT', () => {
    const plan = compile('cron');
    expect(plan.stages[0]?.when).toEqual({ event: ['cron'] });
    expect(plan.stages[0]?.steps[0]?.env.SLIPWAY_EVENT).toBe('cron');
  });

  it('runs the cron stage of a scheduled build and skips it for a push', () => {
    const ctx = { branch: 'main' };
    const [nightly, always, release] = compile('cron').stages;
    expect(whyStageSkipped(nightly?.when, { ...ctx, event: 'cron' }, 'success')).toBeUndefined();
    expect(whyStageSkipped(always?.when, { ...ctx, event: 'cron' }, 'success')).toBeUndefined();
    expect(whyStageSkipped(release?.when, { ...ctx, event: 'cron' }, 'success')).toEqual({
      code: 'when',
      message: 'skipped: event "cron" is not one of push, tag',
    });
    expect(whyStageSkipped(nightly?.when, { ...ctx, event: 'push' }, 'success')).toEqual({
      code: 'when',
      message: 'skipped: event "push" is not one of cron',
    });
  });

  it('is listed among the events an unknown one is told', () => {
    const bad = compilePipeline({
      file: 'p.yml',
      source:
        'stages:\n  - name: a\n    when: { event: [crontab] }\n    steps: [{ name: x, commands: [x] }]\n',
      context: TEST_CONTEXT,
    });
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.errors.map(formatPipelineError)).toEqual([
        'p.yml:3:21: invalid event "crontab" at stages[0].when.event[0]; expected one of push, tag, pull_request, manual, cron',
      ]);
    }
  });
});
