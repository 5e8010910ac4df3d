/** The stand-in kubelet's decisions before Podman is asked (no engine needed). */
import type { IContainerStatus } from 'kubernetes-models/v1/ContainerStatus';
import { describe, expect, it } from 'vitest';
import { expand, invalidImageMessage, parseQuantity, podMemoryLimit, runArgs } from './container-config.js';
import { podPhase, type PodState } from './pod-status.js';

describe('stand-in kubelet: container config', () => {
  it('expands $(VAR) as Kubernetes does: defined names only, $$ escapes, other $ kept', () => {
    const vars = new Map([['A', 'x']]);
    expect(expand('$(A)-$(B)-$$(A)-$$-$1-$x-$', vars)).toBe('x-$(B)-$(A)-$-$1-$x-$');
    expect(expand('echo $(A', vars)).toBe('echo $(A');
  });

  it('rejects image references the distribution grammar rejects (InvalidImageName)', () => {
    for (const ok of [
      'localhost/busybox:latest',
      'busybox',
      'registry:5000/a/b_c:1.0',
      `a@sha256:${'0'.repeat(64)}`,
    ]) {
      expect(invalidImageMessage(ok)).toBeUndefined();
    }
    expect(invalidImageMessage('Busybox')).toBe(
      'Failed to apply default image tag "Busybox": couldn\'t parse image name "Busybox": ' +
        'invalid reference format: repository name must be lowercase',
    );
    expect(invalidImageMessage('a b')).toMatch(/invalid reference format$/);
    expect(invalidImageMessage('')).toMatch(/invalid reference format$/);
  });

  it('reads resource quantities; the pod limit is the sum only when every container has one', () => {
    expect(parseQuantity('512Mi')).toBe(512 * 2 ** 20);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(parseQuantity('lots')).toBeUndefined();
    const limited = { name: 'a', resources: { limits: { memory: '64Mi' } } };
    expect(
      podMemoryLimit({
        apiVersion: 'v1',
        kind: 'Pod',
        spec: { containers: [limited, { ...limited, name: 'b' }] },
      }),
    ).toBe(128 * 2 ** 20);
    expect(
      podMemoryLimit({ apiVersion: 'v1', kind: 'Pod', spec: { containers: [limited, { name: 'b' }] } }),
    ).toBeUndefined();
  });

  it('command replaces ENTRYPOINT, args replace CMD; ephemeral containers get no resources', () => {
    const base = {
      podmanPod: 'ns-p',
      podmanName: 'ns-p-c',
      labels: { l: '1' },
      logPath: '/logs/p/c.log',
      env: new Map([['GREETING', 'hi']]),
      volumes: new Map([['workspace', '/state/ws']]),
      runAsUser: 1000,
    };
    const container = {
      name: 'c',
      image: 'localhost/busybox:latest',
      command: ['/bin/sh', '-c'],
      args: ['echo $(GREETING) $$HOME'],
      workingDir: '/workspace',
      resources: { limits: { memory: '1Mi', cpu: '500m' } },
      volumeMounts: [{ name: 'workspace', mountPath: '/workspace', readOnly: true }],
    };
    const args = runArgs({ ...base, container, resources: true });
    expect(args.slice(-2)).toEqual(['localhost/busybox:latest', 'echo hi $HOME']);
    expect(args).toEqual(
      expect.arrayContaining(['--entrypoint', '["/bin/sh","-c"]', '--env', 'GREETING=hi', '--user', '1000']),
    );
    expect(args.join(' ')).toContain('--memory 1048576 --memory-swap 1048576 --cpus 0.5');
    expect(args.join(' ')).toContain('--volume /state/ws:/workspace:ro');
    expect(args.join(' ')).toContain('--log-driver k8s-file --log-opt path=/logs/p/c.log');
    expect(runArgs({ ...base, container, resources: false })).not.toContain('--memory');
    expect(
      runArgs({ ...base, container: { name: 'c', image: 'i', args: ['x'] }, resources: true }).slice(-2),
    ).toEqual(['i', 'x']);
  });
});

describe('stand-in kubelet: pod phase', () => {
  const running: IContainerStatus = {
    name: 'a',
    image: 'i',
    imageID: '',
    ready: true,
    restartCount: 0,
    state: { running: {} },
  };
  const exited = (name: string, exitCode: number): IContainerStatus => ({
    ...running,
    name,
    state: { terminated: { exitCode } },
  });
  const state = (init: IContainerStatus[], containers: IContainerStatus[]): PodState => ({
    scheduled: true,
    sandboxReady: true,
    init,
    containers,
    ephemeral: [],
  });

  it('follows getPhase for restartPolicy Never', () => {
    expect(podPhase(state([exited('seed', 1)], []))).toBe('Failed');
    expect(podPhase(state([{ ...running, name: 'seed' }], []))).toBe('Pending');
    expect(
      podPhase(state([exited('seed', 0)], [running, { ...running, name: 'b', state: { waiting: {} } }])),
    ).toBe('Pending');
    expect(podPhase(state([], [running, exited('b', 1)]))).toBe('Running');
    expect(podPhase(state([], [exited('a', 0), exited('b', 0)]))).toBe('Succeeded');
    expect(podPhase(state([], [exited('a', 0), exited('b', 2)]))).toBe('Failed');
    expect(podPhase({ ...state([], []), scheduled: false })).toBe('Pending');
  });
});
