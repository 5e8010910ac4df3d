/**
 * The stand-in kubelet on real Podman, driven directly through an in-test PodHost (no HTTP):
 * what it reports is what the executor's tests will see through the stand-in API server.
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { IContainerStatus } from 'kubernetes-models/v1/ContainerStatus';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../../../testing/until.js';
import { engineRequired } from '../../../../docker/testing/test-engine.js';
import type { ConfigMap, Pod } from '../../../kube-api.js';
import { PodmanKubelet } from './podman-kubelet.js';
import type { PodHost, PodStatus } from './types.js';

const IMAGE = 'localhost/busybox:latest';
const run = promisify(execFile);
const podmanHere = await run('podman', ['image', 'exists', IMAGE]).then(
  () => true,
  () => false,
);
if (!podmanHere && engineRequired())
  throw new Error(`CI requires Podman with ${IMAGE} (scripts/setup-podman.sh)`);

/** A PodHost over one pod object, recording every status it is given and every Warning. */
class TestHost implements PodHost {
  readonly statuses: PodStatus[] = [];
  readonly warnings: { reason: string; message: string }[] = [];
  readonly secrets = new Map<string, string>();
  readonly configMaps = new Map<string, ConfigMap>();
  wasRemoved = false;
  private readonly changed = new EventEmitter();

  constructor(public current: Pod | undefined) {}

  pod(): Pod | undefined {
    return this.current;
  }
  /** Changes the stored pod as the API server would (a copy, then stored). */
  change(mutate: (pod: Pod) => void): void {
    if (!this.current) throw new Error('the pod is gone');
    const pod = structuredClone(this.current);
    mutate(pod);
    this.current = pod;
  }
  updateStatus(mutate: (status: PodStatus) => void): void {
    if (!this.current) return;
    const status = structuredClone(this.current.status ?? {});
    mutate(status);
    this.current = { ...this.current, status };
    this.statuses.push(structuredClone(status));
    this.changed.emit('change');
  }
  secretValue(name: string, key: string): string | undefined {
    return this.secrets.get(`${name}/${key}`);
  }
  configMap(name: string): ConfigMap | undefined {
    return this.configMaps.get(name);
  }
  warn(reason: string, message: string): void {
    this.warnings.push({ reason, message });
    this.changed.emit('change');
  }
  removed(): void {
    this.wasRemoved = true;
    this.current = undefined;
    this.changed.emit('change');
  }

  /** Resolves with the first status (past or future) that `test` accepts. */
  async waitFor<T>(
    what: string,
    test: (status: PodStatus) => T | undefined | false,
    limitMs = 90_000,
  ): Promise<T> {
    const seen = (): T | undefined => {
      for (const status of this.statuses) {
        const found = test(status);
        if (found) return found;
      }
      return undefined;
    };
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const found = seen();
        if (found === undefined) return;
        cleanup();
        resolve(found);
      };
      const timer = setTimeout(() => {
        cleanup();
        const last = JSON.stringify(this.statuses.at(-1), null, 1);
        reject(
          new Error(
            `waited ${limitMs} ms for ${what}; last status: ${last}; warnings: ${JSON.stringify(this.warnings)}`,
          ),
        );
      }, limitMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.changed.off('change', check);
      };
      this.changed.on('change', check);
      check();
    });
  }

  async waitRemoved(): Promise<void> {
    if (this.wasRemoved) return;
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (!this.wasRemoved) return;
        this.changed.off('change', check);
        resolve();
      };
      this.changed.on('change', check);
    });
  }
}

const namespace = `kubelet-test-${process.pid}`;

function podObject(name: string, spec: Pod['spec']): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, uid: `uid-${name}`, annotations: {} },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 30,
      ...spec,
      containers: spec?.containers ?? [],
    },
    status: { phase: 'Pending' },
  };
}

function container(
  status: PodStatus,
  kind: 'init' | 'regular' | 'ephemeral',
  name: string,
): IContainerStatus | undefined {
  const list =
    kind === 'init'
      ? status.initContainerStatuses
      : kind === 'regular'
        ? status.containerStatuses
        : status.ephemeralContainerStatuses;
  return list?.find((c) => c.name === name);
}

async function leftovers(): Promise<string> {
  const filters = [
    '--filter',
    'label=slipway-stand-in=1',
    '--filter',
    `label=slipway-stand-in.namespace=${namespace}`,
  ];
  const containers = await run('podman', ['ps', '-a', '-q', ...filters]);
  const pods = await run('podman', ['pod', 'ps', '-q', ...filters]);
  return `${containers.stdout}${pods.stdout}`.trim();
}

describe.skipIf(!podmanHere)('stand-in kubelet on Podman', () => {
  let stateDir: string;
  let kubelet: PodmanKubelet;

  beforeAll(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'slipway-kubelet-'));
    kubelet = new PodmanKubelet({ namespace, stateDir });
  });
  afterAll(async () => {
    await kubelet?.close();
    await rm(stateDir, { recursive: true, force: true });
  });

  it('runs a build pod: seed from a ConfigMap, hold, a probed service; a step exits 3 with its output logged; annotations reach the downwardAPI file; delete honours SIGTERM and leaves nothing', async () => {
    const host = new TestHost(
      podObject('build-a', {
        volumes: [
          { name: 'workspace', emptyDir: {} },
          { name: 'seed', projected: { sources: [{ configMap: { name: 'build-a-seed-0' } }] } },
          {
            name: 'slipway-control',
            downwardAPI: {
              items: [{ path: 'stop', fieldRef: { fieldPath: "metadata.annotations['slipway.dev/stop']" } }],
            },
          },
        ],
        initContainers: [
          {
            name: 'seed',
            image: IMAGE,
            command: ['/bin/sh', '-e', '-c', 'cp /seed/file.txt /workspace/file.txt'],
            volumeMounts: [
              { name: 'seed', mountPath: '/seed', readOnly: true },
              { name: 'workspace', mountPath: '/workspace' },
            ],
          },
        ],
        containers: [
          {
            name: 'hold',
            image: IMAGE,
            command: ['/bin/sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done'],
            volumeMounts: [
              { name: 'workspace', mountPath: '/workspace' },
              { name: 'slipway-control', mountPath: '/slipway/control', readOnly: true },
            ],
          },
          {
            name: 'svc-web',
            image: IMAGE,
            // Listens only after a second, so that the probe is seen failing before it passes; exits on
            // SIGTERM (httpd as PID 1 would ignore it, and the delete would wait the whole grace).
            command: [
              '/bin/sh',
              '-c',
              'trap "exit 0" TERM; (mkdir -p /www && echo pong > /www/index.html && sleep 1 && httpd -f -p 5000 -h /www) & wait',
            ],
            startupProbe: { tcpSocket: { port: 5000 }, periodSeconds: 1, failureThreshold: 120 },
            volumeMounts: [{ name: 'workspace', mountPath: '/workspace' }],
          },
        ],
      }),
    );
    host.configMaps.set('build-a-seed-0', {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'build-a-seed-0' },
      data: { 'file.txt': 'seeded\n' },
    });
    kubelet.startPod(host);

    await host.waitFor(
      'the service started',
      (s) => container(s, 'regular', 'svc-web')?.started && s.phase === 'Running',
    );
    expect(
      host.statuses.some(
        (s) =>
          container(s, 'regular', 'svc-web')?.state?.running && !container(s, 'regular', 'svc-web')?.started,
      ),
    ).toBe(true);
    const seed = container(host.statuses.at(-1) ?? {}, 'init', 'seed');
    expect(seed?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    await host.waitFor('ready', (s) => s.conditions?.find((c) => c.type === 'Ready')?.status === 'True');
    const running = host.statuses.at(-1) ?? {};
    expect(running.podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(running.conditions?.find((c) => c.type === 'Initialized')?.status).toBe('True');

    host.change((pod) => {
      pod.spec = {
        ...pod.spec,
        containers: pod.spec?.containers ?? [],
        ephemeralContainers: [
          {
            name: 'step-1',
            image: IMAGE,
            command: [
              '/bin/sh',
              '-c',
              'cat /workspace/file.txt; wget -q -O - http://127.0.0.1:5000/; exit 3',
            ],
            workingDir: '/workspace',
            volumeMounts: [{ name: 'workspace', mountPath: '/workspace' }],
          },
        ],
      };
    });
    kubelet.ephemeralContainersAdded(host, ['step-1']);
    const terminated = await host.waitFor(
      'the step ended',
      (s) => container(s, 'ephemeral', 'step-1')?.state?.terminated,
    );
    expect(terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(terminated.containerID).toMatch(/^podman:\/\/[0-9a-f]{64}$/);
    const step = container(host.statuses.at(-1) ?? {}, 'ephemeral', 'step-1');
    expect(step).toMatchObject({ name: 'step-1', ready: false, restartCount: 0 });
    expect(host.statuses.at(-1)?.phase).toBe('Running');

    const logFile = kubelet.logFile('build-a', 'step-1');
    expect(logFile).toBeDefined();
    const lines = (await readFile(logFile ?? '', 'utf8')).trimEnd().split('\n');
    expect(lines.map((line) => line.replace(/^\S+ /, ''))).toEqual(['stdout F seeded', 'stdout F pong']);
    for (const line of lines) expect(Date.parse(line.split(' ')[0] ?? '')).not.toBeNaN();

    host.change((pod) => {
      pod.metadata = { ...pod.metadata, annotations: { 'slipway.dev/stop': 'step-1 step-2' } };
    });
    kubelet.annotationsChanged(host);
    await until(async () => {
      const seen = await run('podman', ['exec', `${namespace}-build-a-hold`, 'cat', '/slipway/control/stop']);
      return seen.stdout === 'step-1 step-2';
    });

    kubelet.deletePod(host, 30);
    await host.waitRemoved();
    const final = host.statuses.at(-1) ?? {};
    // The hold container's TERM trap exits 0: SIGTERM came first, not SIGKILL (137).
    expect(container(final, 'regular', 'hold')?.state?.terminated?.exitCode).toBe(0);
    expect(await leftovers()).toBe('');
    expect(kubelet.logFile('build-a', 'step-1')).toBeUndefined();
  });

  it('a missing image: ErrImagePull, then ImagePullBackOff, with Warning events, never started; a bad reference: InvalidImageName', async () => {
    const host = new TestHost(
      podObject('build-b', {
        containers: [
          { name: 'hold', image: 'localhost/slipway-no-such-image:1', command: ['sleep', '60'] },
          { name: 'bad', image: 'Not A/Valid:Ref' },
        ],
      }),
    );
    kubelet.startPod(host);
    await host.waitFor(
      'ErrImagePull',
      (s) => container(s, 'regular', 'hold')?.state?.waiting?.reason === 'ErrImagePull',
    );
    const backOff = await host.waitFor('ImagePullBackOff', (s) => {
      const waiting = container(s, 'regular', 'hold')?.state?.waiting;
      return waiting?.reason === 'ImagePullBackOff' && waiting;
    });
    expect(backOff.message).toContain('localhost/slipway-no-such-image:1');
    const invalid = await host.waitFor(
      'InvalidImageName',
      (s) => container(s, 'regular', 'bad')?.state?.waiting?.reason === 'InvalidImageName' && s,
    );
    expect(invalid.phase).toBe('Pending');
    expect(host.warnings).toEqual(
      expect.arrayContaining([
        {
          reason: 'Failed',
          message: expect.stringMatching(
            /^Failed to pull image "localhost\/slipway-no-such-image:1": /,
          ) as unknown,
        },
        { reason: 'BackOff', message: 'Back-off pulling image "localhost/slipway-no-such-image:1"' },
        { reason: 'Failed', message: 'Error: InvalidImageName' },
      ]),
    );
    expect(host.statuses.every((s) => !container(s, 'regular', 'hold')?.state?.running)).toBe(true);
    kubelet.deletePod(host, 30);
    await host.waitRemoved();
    expect(await leftovers()).toBe('');
  });

  it('a missing Secret: CreateContainerConfigError with the kubelet message, then the container runs once the Secret appears', async () => {
    const host = new TestHost(
      podObject('build-c', {
        containers: [
          {
            name: 'main',
            image: IMAGE,
            command: ['/bin/sh', '-c', 'echo "token=$TOKEN"'],
            env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } }],
          },
        ],
      }),
    );
    kubelet.startPod(host);
    const waiting = await host.waitFor(
      'CreateContainerConfigError',
      (s) =>
        container(s, 'regular', 'main')?.state?.waiting?.reason === 'CreateContainerConfigError' &&
        container(s, 'regular', 'main')?.state?.waiting,
    );
    expect(waiting.message).toBe('secret "creds" not found');
    expect(host.warnings).toContainEqual({ reason: 'Failed', message: 'Error: secret "creds" not found' });
    host.secrets.set('creds/token', 's3cret');
    const done = await host.waitFor('Succeeded', (s) => s.phase === 'Succeeded' && s);
    expect(container(done, 'regular', 'main')?.state?.terminated).toMatchObject({
      exitCode: 0,
      reason: 'Completed',
    });
    expect(await readFile(kubelet.logFile('build-c', 'main') ?? '', 'utf8')).toMatch(
      / stdout F token=s3cret\n$/,
    );
    kubelet.deletePod(host, 30);
    await host.waitRemoved();
  });

  it('a step over the pod memory limit is OOMKilled (a real OOM, read from the kernel log)', async () => {
    const host = new TestHost(
      podObject('build-d', {
        containers: [
          {
            name: 'hold',
            image: IMAGE,
            command: ['/bin/sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done'],
            resources: { limits: { memory: '32Mi' }, requests: { memory: '32Mi' } },
          },
        ],
        ephemeralContainers: [
          {
            name: 'step-hog',
            image: IMAGE,
            command: ['/bin/sh', '-c', 'x=a; while true; do x="$x$x"; done'],
          },
        ],
      }),
    );
    kubelet.startPod(host);
    const terminated = await host.waitFor(
      'the hog ended',
      (s) => container(s, 'ephemeral', 'step-hog')?.state?.terminated,
    );
    expect(terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
    kubelet.deletePod(host, 30);
    await host.waitRemoved();
  });
  it('faults: unschedulable holds the pod Pending until cleared; oomKill ends a step OOMKilled 137; evict fails the pod Evicted with DisruptionTarget', async () => {
    const hold = 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done';
    const host = new TestHost(
      podObject('build-e', {
        containers: [{ name: 'hold', image: IMAGE, command: ['/bin/sh', '-c', hold] }],
      }),
    );
    const message = '0/1 nodes are available: 1 Insufficient memory.';
    kubelet.faults.unschedulable(message);
    kubelet.startPod(host);
    const pending = await host.waitFor('Unschedulable', (s) =>
      s.conditions?.find((c) => c.type === 'PodScheduled'),
    );
    expect(pending).toMatchObject({ status: 'False', reason: 'Unschedulable', message });
    expect(host.warnings).toContainEqual({ reason: 'FailedScheduling', message });
    expect(host.statuses.at(-1)?.phase).toBe('Pending');
    kubelet.faults.unschedulable(undefined);
    await host.waitFor('Running', (s) => s.phase === 'Running');

    host.change((pod) => {
      pod.spec = {
        ...pod.spec,
        containers: pod.spec?.containers ?? [],
        ephemeralContainers: [{ name: 'step-x', image: IMAGE, command: ['sleep', '600'] }],
      };
    });
    kubelet.ephemeralContainersAdded(host, ['step-x']);
    await host.waitFor('the step runs', (s) => container(s, 'ephemeral', 'step-x')?.state?.running);
    await kubelet.faults.oomKill('build-e', 'step-x');
    await host.waitFor(
      'OOMKilled',
      (s) => container(s, 'ephemeral', 'step-x')?.state?.terminated?.reason === 'OOMKilled',
    );
    expect(container(host.statuses.at(-1) ?? {}, 'ephemeral', 'step-x')?.state?.terminated?.exitCode).toBe(
      137,
    );

    await kubelet.faults.evict('build-e', 'The node was low on resource: memory.');
    const evicted = await host.waitFor('Evicted', (s) => s.phase === 'Failed' && s);
    expect(evicted).toMatchObject({ reason: 'Evicted', message: 'The node was low on resource: memory.' });
    expect(evicted.conditions?.find((c) => c.type === 'DisruptionTarget')).toMatchObject({
      status: 'True',
      reason: 'TerminationByKubelet',
    });
    await host.waitFor(
      'hold killed',
      (s) => container(s, 'regular', 'hold')?.state?.terminated?.exitCode === 137,
    );
    expect(host.warnings).toContainEqual({
      reason: 'Evicted',
      message: 'The node was low on resource: memory.',
    });
    kubelet.deletePod(host, 30);
    await host.waitRemoved();
    expect(await leftovers()).toBe('');
  });
  it('removes what a crashed earlier run left (its label, a test process that is gone) when constructed', async () => {
    const name = `${namespace}-leftover`;
    const labels = [
      'slipway-stand-in=1',
      `slipway-stand-in.namespace=${namespace}`,
      'slipway-stand-in.pid=2147483646',
    ];
    await run('podman', ['pod', 'create', '--name', name, ...labels.flatMap((label) => ['--label', label])]);
    const next = new PodmanKubelet({ namespace, stateDir: join(stateDir, 'next') });
    await next.close(); // waits for the clean-up begun at construction
    expect(
      await run('podman', ['pod', 'exists', name]).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
  });
});
