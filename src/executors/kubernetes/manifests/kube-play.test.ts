/**
 * The generated build pod run for real with `podman kube play` (Podman 4.3; no Kubernetes API
 * server can run on these machines). What Podman cannot do is substituted, minimally:
 * - it has no ephemeral containers: the step containers are appended as regular containers
 *   (all start with the pod, so a step reaching the service retries until it answers, where
 *   the executor would have waited for the service's startupProbe);
 * - it has no downwardAPI volumes ("HostPath, ConfigMap, EmptyDir, and PersistentVolumeClaim
 *   are currently the only supported VolumeSource"): `slipway-control` is a hostPath directory
 *   whose `stop` file the test writes, as the kubelet would from the annotation;
 * - a `kind: Secret` document is stored as a Podman secret that its own `secretKeyRef` lookup
 *   then fails to read ("is not valid JSON"): each Secret is created with `podman secret create`
 *   holding its `data` as JSON, the form that lookup reads, under a name of at most 64
 *   characters (Podman's limit; Kubernetes allows 253). ConfigMaps (binaryData included)
 *   go in the same YAML as the pod;
 * - it does not expand `$(NAME)` nor reduce `$$` in `command`/`args` as a kubelet does: the
 *   generated `$$` (every `$` of a script) is reduced here.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_IMAGE } from '../../docker/testing/test-engine.js';
import type { StepSpec } from '../../types.js';
import type { Pod, Secret } from '../kube-api.js';
import { assertKubeValid, ephemeralContainerErrors } from '../testing/schema.js';
import { buildPodObjects, CONTROL_VOLUME, stepObjects } from './index.js';

function podman(...args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync('podman', args, { encoding: 'utf8' });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function must(...args: string[]): string {
  const result = podman(...args);
  if (result.status !== 0)
    throw new Error(`podman ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

const root = mkdtempSync(join(tmpdir(), 'slipway-kube-play-'));
const buildId = `kube-play-${process.pid}-${Date.now()}`;
const secrets: string[] = [];
let podName = '';

function step(key: string, commands: string[], secretEnv: Record<string, string> = {}): StepSpec {
  return {
    key,
    stage: 'test',
    step: key,
    commands,
    env: { PLAIN: 'visible' },
    secrets: secretEnv,
    attempt: 1,
  };
}

const steps = {
  ok: step(
    'build/compile & test',
    [
      'cat /workspace/hello.txt',
      'echo "api key: $API_KEY, plain: $PLAIN"',
      // All containers start at once here; the executor would wait for the startupProbe instead.
      'i=0; until wget -qO- http://localhost:8080/hello.txt; do i=$((i+1)); [ $i -lt 600 ]; sleep 0.1; done',
    ],
    { API_KEY: 'k3y-for-the-step' },
  ),
  three: step('test/exit three', ['echo going to exit 3', 'exit 3']),
  stopped: step('test/stopped', ['echo stopped step started', 'sleep 600']),
};
const names: Record<keyof typeof steps, string> = { ok: '', three: '', stopped: '' };

beforeAll(() => {
  const source = join(root, 'source');
  mkdirSync(source);
  writeFileSync(join(source, 'hello.txt'), 'hello from the seed\n');
  const tar = spawnSync('tar', ['-czf', '-', '-C', source, 'hello.txt']);
  expect(tar.status).toBe(0);

  const objects = buildPodObjects({
    installation: 'kube-play-test',
    namespace: 'ci-builds',
    build: {
      buildId,
      project: 'a/b',
      branch: 'feature/ÄÖ',
      image: TEST_IMAGE,
      services: [
        {
          name: 'web',
          image: TEST_IMAGE,
          env: { GREETING: 'hi', TOKEN: 's3cr3t-of-the-service' },
          secrets: [{ env: 'TOKEN', secret: 'token' }],
          commands: [
            'echo "service token: $TOKEN, greeting: $GREETING"',
            'exec httpd -f -p 8080 -h /workspace',
          ],
          waitFor: 8080,
        },
      ],
    },
    helperImage: TEST_IMAGE,
    serviceAccountName: 'slipway-build',
    pullPolicy: 'Never',
    seed: tar.stdout,
  });
  podName = objects.pod.metadata!.name!;
  const pod: Pod = structuredClone(objects.pod);
  const stepSecrets: Secret[] = [];
  for (const [id, s] of Object.entries(steps) as [keyof typeof steps, StepSpec][]) {
    const { container, secret } = stepObjects({
      installation: 'kube-play-test',
      namespace: 'ci-builds',
      build: { buildId, project: 'a/b', branch: 'feature/ÄÖ', image: TEST_IMAGE },
      pod: { name: podName, uid: '5f0b6f2e-0000-4000-8000-000000000001' },
      step: s,
      stopGraceSeconds: 2,
      pullPolicy: 'Never',
    });
    expect(ephemeralContainerErrors(container)).toEqual([]);
    names[id] = container.name;
    pod.spec!.containers.push(container);
    if (secret) stepSecrets.push(secret);
  }
  for (const object of [objects.pod, ...objects.seed, ...stepSecrets, objects.serviceSecret])
    assertKubeValid(object);

  const control = join(root, 'control');
  mkdirSync(control);
  // As the kubelet writes the pod's slipway.dev/stop annotation: this step is to stop.
  writeFileSync(join(control, 'stop'), `other-step ${names.stopped}`);
  const volume = pod.spec!.volumes!.find((v) => v.name === CONTROL_VOLUME)!;
  delete volume.downwardAPI;
  volume.hostPath = { path: control, type: 'Directory' };

  // Podman secret names have at most 64 characters (Kubernetes allows 253): a short name each.
  const renamed = new Map<string, string>();
  for (const [n, secret] of [objects.serviceSecret!, ...stepSecrets].entries()) {
    const name = `slipway-kube-play-${process.pid}-${n}`;
    const file = join(root, `${name}.json`);
    writeFileSync(file, JSON.stringify(secret.data));
    must('secret', 'create', name, file);
    secrets.push(name);
    renamed.set(secret.metadata!.name!, name);
  }
  for (const container of pod.spec!.containers) {
    for (const env of container.env ?? []) {
      const ref = env.valueFrom?.secretKeyRef;
      if (ref) ref.name = renamed.get(ref.name!)!;
    }
  }
  // As a kubelet does (podman kube play does not): `$$` in command and args is `$`.
  for (const container of [...(pod.spec!.initContainers ?? []), ...pod.spec!.containers]) {
    container.command = container.command?.map((arg) => arg.replaceAll('$$', '$'));
  }
  const manifest = join(root, 'pod.yaml');
  writeFileSync(manifest, [...objects.seed, pod].map((o) => stringify(o)).join('---\n'));
  must('kube', 'play', '--start', manifest);
}, 120_000);

afterAll(() => {
  if (podName) podman('pod', 'rm', '-f', '-t', '0', podName);
  for (const name of secrets) podman('secret', 'rm', name);
  rmSync(root, { recursive: true, force: true });
});

function waitExit(container: string): number {
  return Number(must('wait', `${podName}-${container}`).trim());
}

function logs(container: string): string[] {
  return must('logs', `${podName}-${container}`).split('\n').filter(Boolean);
}

describe('podman kube play runs the generated build pod (steps appended as regular containers: podman has no ephemeral containers)', () => {
  it('a step sees the seed in /workspace, its secret and plain env, and the service on localhost', () => {
    expect(waitExit(names.ok)).toBe(0);
    expect(logs(names.ok)).toEqual([
      'hello from the seed',
      'api key: k3y-for-the-step, plain: visible',
      'hello from the seed',
    ]);
    expect(logs('svc-web')).toContain('service token: s3cr3t-of-the-service, greeting: hi');
  });

  it('a step exits with its own status and output', () => {
    expect(waitExit(names.three)).toBe(3);
    expect(logs(names.three)).toEqual(['going to exit 3']);
  });

  it('a step named in the stop file ends with 143 (SIGTERM) or 137 (after the grace)', () => {
    expect([143, 137]).toContain(waitExit(names.stopped));
  });

  it('the hold container keeps the pod up while steps come and go', () => {
    const state = must('inspect', '--format', '{{.State.Status}}', `${podName}-hold`).trim();
    expect(state).toBe('running');
  });
});
