import { describe, expect, it } from 'vitest';
import { ExecutorError } from '../types.js';
import type { Pod } from './kube-api.js';
import { podUpRule, stepStartRule } from './start-rules.js';

const TIMES = { pullGraceMs: 20_000, pendingMs: 300_000 };
type Status = NonNullable<Pod['status']>;
const pod = (status: Status): { pod: Pod; deleted: boolean } => ({
  pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, status },
  deleted: false,
});
const waiting = (name: string, reason: string, message = '') => ({
  name,
  image: 'x',
  imageID: '',
  ready: false,
  restartCount: 0,
  state: { waiting: { reason, message } },
});
const running = (name: string, started = true) => ({
  name,
  image: 'x',
  imageID: '',
  ready: started,
  started,
  restartCount: 0,
  state: { running: { startedAt: '2026-11-30T12:00:00Z' } },
});

describe('stepStartRule', () => {
  const rule = (said: string[] = []) =>
    stepStartRule('p', 'step-a-1', 'img:1', TIMES, 0, (t) => said.push(t));

  it('is started once the container runs, with the kubelet start time', () => {
    expect(rule()(pod({ ephemeralContainerStatuses: [running('step-a-1')] }), 5)).toEqual({
      running: { startedAt: '2026-11-30T12:00:00Z' },
    });
  });

  it('retries a failing pull for the grace, then fails image_pull naming the image; a pull that recovers resets it', () => {
    const said: string[] = [];
    const r = rule(said);
    const failing = pod({
      ephemeralContainerStatuses: [waiting('step-a-1', 'ImagePullBackOff', 'Back-off pulling "img:1"')],
    });
    expect(r(failing, 1_000)).toBeUndefined();
    expect(
      r(pod({ ephemeralContainerStatuses: [waiting('step-a-1', 'ContainerCreating')] }), 15_000),
    ).toBeUndefined();
    expect(r(failing, 30_000)).toBeUndefined(); // the grace counts again from here
    expect(r(failing, 50_000)).toEqual({
      exit: {
        kind: 'error',
        code: 'image_pull',
        message: 'cannot pull image "img:1": ImagePullBackOff: Back-off pulling "img:1"',
      },
    });
    // Each change of the waiting reason is said once (ContainerCreating is the normal case: not said).
    expect(said).toEqual(Array(2).fill('waiting: ImagePullBackOff: Back-off pulling "img:1"'));
  });

  it('fails at once on a waiting reason that never resolves', () => {
    expect(
      rule()(pod({ ephemeralContainerStatuses: [waiting('step-a-1', 'InvalidImageName', 'bad')] }), 1),
    ).toMatchObject({
      exit: { code: 'image_pull' },
    });
    expect(
      rule()(
        pod({
          ephemeralContainerStatuses: [
            waiting('step-a-1', 'CreateContainerConfigError', 'secret "s" not found'),
          ],
        }),
        1,
      ),
    ).toEqual({
      exit: {
        kind: 'error',
        code: 'internal',
        message: `the step's container cannot start: CreateContainerConfigError: secret "s" not found`,
      },
    });
  });

  it('gives up after the pending time with the last waiting reason; the pod deleted or evicted ends it at once', () => {
    const r = rule();
    expect(
      r(pod({ ephemeralContainerStatuses: [waiting('step-a-1', 'ContainerCreating')] }), 299_999),
    ).toBeUndefined();
    expect(
      r(pod({ ephemeralContainerStatuses: [waiting('step-a-1', 'ContainerCreating')] }), 300_000),
    ).toEqual({
      exit: {
        kind: 'error',
        code: 'internal',
        message: `the step's container did not start within 5m (ContainerCreating)`,
      },
    });
    expect(rule()({ pod: undefined, deleted: true }, 1)).toMatchObject({ exit: { code: 'gone' } });
    expect(rule()(pod({ reason: 'Evicted', message: 'low on memory' }), 1)).toMatchObject({
      exit: { code: 'evicted', message: 'the build pod p was evicted: low on memory' },
    });
    expect(rule()({ pod: undefined, deleted: false }, 1)).toBeUndefined();
  });
});

describe('podUpRule', () => {
  const services = [{ name: 'db', env: {}, secrets: [], waitFor: 5432 }];
  const rule = () => podUpRule('p', services, { ...TIMES, serviceMs: 60_000 }, 0);
  const scheduled = { conditions: [{ type: 'PodScheduled', status: 'True' }] };

  it('is up once hold runs and the service with wait_for has started', () => {
    const r = rule();
    expect(
      r(pod({ ...scheduled, containerStatuses: [running('hold'), running('svc-db', false)] }), 1),
    ).toBeUndefined();
    expect(
      r(pod({ ...scheduled, containerStatuses: [running('hold'), running('svc-db', true)] }), 2),
    ).toEqual({ up: true });
  });

  it('fails an unschedulable pod only after the pending time, with the scheduler message', () => {
    const r = rule();
    const stuck = pod({
      phase: 'Pending',
      conditions: [
        {
          type: 'PodScheduled',
          status: 'False',
          reason: 'Unschedulable',
          message: '0/3 nodes are available',
        },
      ],
    });
    expect(r(stuck, 299_000)).toBeUndefined();
    const result = r(stuck, 300_000);
    expect(result && 'error' in result && result.error.message).toBe(
      'the build pod p could not be scheduled within 5m: 0/3 nodes are available',
    );
  });

  it('fails a service whose port never answers, a failed seed, an image that cannot be pulled', () => {
    const r = rule();
    expect(
      r(pod({ ...scheduled, containerStatuses: [running('hold'), running('svc-db', false)] }), 10),
    ).toBeUndefined();
    const late = r(
      pod({ ...scheduled, containerStatuses: [running('hold'), running('svc-db', false)] }),
      60_010,
    );
    expect(late && 'error' in late && [late.error.code, late.error.message]).toEqual([
      'service',
      'service db did not accept connections on port 5432 within 1m',
    ]);
    const seed = rule()(
      pod({
        ...scheduled,
        initContainerStatuses: [
          {
            name: 'seed',
            image: 'x',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 2 } },
          },
        ],
      }),
      1,
    );
    expect(seed && 'error' in seed && seed.error).toBeInstanceOf(ExecutorError);
    expect(seed && 'error' in seed && seed.error.code).toBe('workspace');
    const r2 = rule();
    const pulling = pod({ ...scheduled, containerStatuses: [waiting('hold', 'ErrImagePull', 'not found')] });
    expect(r2(pulling, 0)).toBeUndefined();
    const pull = r2(pulling, 20_000);
    expect(pull && 'error' in pull && [pull.error.code, pull.error.message]).toEqual([
      'image_unavailable',
      'the build pod: cannot pull its image: ErrImagePull: not found',
    ]);
  });
});
