import { describe, expect, it } from 'vitest';
import type { PipelinePlan, StepPlan } from '../pipeline/types.js';
import { notRunResult, pipelineImages, refuseHostRun, refuseImageless } from './host-guard.js';

const step = (name: string, image?: string): StepPlan => ({
  name,
  ...(image !== undefined ? { image } : {}),
  commands: ['true'],
  env: {},
  secrets: [],
  retries: 0,
  allowFailure: false,
  needs: [],
  artifacts: [],
  pos: { line: 1, col: 1 },
});
const plan = (extra: Partial<PipelinePlan> = {}, steps = [step('a')]): PipelinePlan => ({
  file: '.slipway.yml',
  env: {},
  services: [],
  stages: [{ name: 'test', approval: false, steps, pos: { line: 1, col: 1 } }],
  ...extra,
});

describe('pipelineImages', () => {
  it('is empty for a pipeline that names no image', () => {
    expect(pipelineImages(plan())).toEqual([]);
  });

  it('lists the top-level, step and service images once each', () => {
    const named = plan(
      {
        image: 'busybox',
        services: [{ name: 'db', image: 'postgres:15', env: {}, secrets: [] }],
      },
      [step('a', 'node:20'), step('b', 'busybox'), step('c')],
    );
    expect(pipelineImages(named)).toEqual(['busybox', 'node:20', 'postgres:15']);
  });

  it("counts the project's default image when the file names none", () => {
    expect(pipelineImages(plan(), 'alpine:3')).toEqual(['alpine:3']);
    expect(pipelineImages(plan({ image: 'busybox' }), 'alpine:3')).toEqual(['busybox']);
    expect(pipelineImages(plan(), null)).toEqual([]);
  });
});

describe('refuseHostRun', () => {
  const noEngine = {
    executor: 'local',
    localChosen: false,
    noContainer: 'unix:///x (default): no socket there',
  };

  it('refuses images on a local executor that auto fell back to, saying which and why', () => {
    expect(refuseHostRun(['busybox'], noEngine, 'use --executor local.')).toEqual({
      code: 'executor',
      message:
        'the pipeline names image busybox, but no container engine is available ' +
        '(unix:///x (default): no socket there); it was not run as host processes. ' +
        'To run it on the host on purpose, use --executor local.',
    });
    expect(refuseHostRun(['a', 'b'], noEngine, 'x')?.message).toContain('names images a, b,');
  });

  it('lets through local chosen by name, container executors and pipelines without images', () => {
    expect(refuseHostRun(['busybox'], { ...noEngine, localChosen: true }, 'x')).toBeUndefined();
    expect(refuseHostRun(['busybox'], { executor: 'docker', localChosen: false }, 'x')).toBeUndefined();
    expect(refuseHostRun([], noEngine, 'x')).toBeUndefined();
  });
});

describe('notRunResult', () => {
  it('is an error with the reason and every step skipped, never started', () => {
    const reason = { code: 'executor' as const, message: 'no engine' };
    expect(notRunResult(plan(), reason)).toEqual({
      status: 'error',
      durationMs: 0,
      reason,
      stages: [
        {
          name: 'test',
          status: 'skipped',
          durationMs: 0,
          steps: [
            { name: 'a', status: 'skipped', exitCode: null, durationMs: 0, attempts: 0, allowFailure: false },
          ],
        },
      ],
    });
  });
});

describe('refuseImageless', () => {
  const fixes = 'add `image:`.';

  it('names the steps and services a container executor has no image for, before any step runs', () => {
    const reason = refuseImageless(
      plan({ services: [{ name: 'db', env: {}, secrets: [] }] }, [step('a'), step('b', 'busybox')]),
      'docker',
      fixes,
    );
    expect(reason).toEqual({
      code: 'executor',
      message:
        'the docker executor runs every step in a container, but the pipeline names no image for test/a, service db; add `image:`.',
    });
  });

  it('accepts a top-level image, images on every step, and host executors', () => {
    expect(refuseImageless(plan({ image: 'busybox' }), 'docker', fixes)).toBeUndefined();
    expect(refuseImageless(plan({}, [step('a', 'busybox')]), 'docker', fixes)).toBeUndefined();
    expect(refuseImageless(plan(), 'local', fixes)).toBeUndefined();
  });

  it('keeps a long list short', () => {
    const steps = Array.from({ length: 8 }, (_, i) => step(`s${i}`));
    expect(refuseImageless(plan({}, steps), 'docker', fixes)?.message).toContain('s4, 3 more;');
  });
});
