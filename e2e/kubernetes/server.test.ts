/**
 * `slipway server --executor kubernetes` and `slipway run --executor kubernetes --dry-run`, as
 * a user runs them, against the in-test STAND-IN of the Kubernetes API server (no real
 * cluster runs on these machines; the stand-in checks objects against the official schemas
 * and runs the pods on Podman, so the steps really run).
 */
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { enginePlan, findTestEngine } from '../../src/executors/docker/testing/test-engine.js';
import { createKubeApi } from '../../src/executors/kubernetes/client/index.js';
import type { KubeApi } from '../../src/executors/kubernetes/kube-api.js';
import { startStandIn, type StandIn } from '../../src/executors/kubernetes/testing/stand-in/index.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { runCli, workdir } from '../cli-helpers.js';
import { buildFinished, cleanup, ServerProcess, waitFor, type Api } from '../server/server-harness.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('slipway server on the stand-in Kubernetes API', () => {
    it('has a container engine to run the pods on', () => {
      throw new Error(plan.reason);
    });
  });
}

const IMAGE = found.available ? found.image : 'localhost/busybox:latest';
const INSTALLATION = `e2e-${process.pid.toString(36)}${Date.now().toString(36)}`;
const SECRET = 'k8s-s3cr3t-Value';

const PIPELINE = [
  `image: ${IMAGE}`,
  'services:',
  '  - name: web',
  `    image: ${IMAGE}`,
  '    commands:',
  '      - mkdir -p /tmp/www && echo hello-from-service > /tmp/www/index.html',
  '      - exec httpd -f -p 8080 -h /tmp/www',
  '    wait_for: 8080',
  'stages:',
  '  - name: build',
  '    steps:',
  '      - name: first',
  '        env:',
  '          TOKEN: { from_secret: token }',
  '        commands:',
  '          - cat seeded.txt',
  '          - echo "token is $TOKEN"',
  '          - echo made-by-first > made.txt',
  '  - name: check',
  '    steps:',
  '      - name: second',
  '        commands:',
  '          - cat made.txt',
  '          - wget -qO- http://localhost:8080/index.html',
  '',
].join('\n');

const finished = (api: Api, id: number) => buildFinished(api, id, 180_000);

describe.skipIf(plan.action !== 'run')('slipway on the stand-in Kubernetes API server (Podman)', () => {
  let standIn: StandIn;
  let kube: KubeApi;

  beforeAll(async () => {
    standIn = await startStandIn({ kubelet: 'podman' });
    kube = await createKubeApi({ kubeconfig: standIn.kubeconfigPath });
  }, 120_000);

  afterAll(async () => {
    await cleanup();
    await standIn?.close();
  }, 120_000);

  const serverArgs = (): string[] => [
    '--kubeconfig',
    standIn.kubeconfigPath,
    '--helper-image',
    IMAGE,
    '--pull',
    'never',
    '--installation',
    INSTALLATION,
  ];

  it(
    'runs a build as one pod: seed, services on localhost, a shared workspace, a masked secret; then removes it; a killed server re-attaches',
    { timeout: 400_000 },
    async () => {
      const server = await ServerProcess.start({ executor: 'kubernetes', args: serverArgs() });
      const api = server.api();
      const slug = `k8s/app-${INSTALLATION}`;
      const repo = await TestRepo.create({ '.slipway.yml': PIPELINE, 'seeded.txt': 'from-the-checkout\n' });
      await api.ok('POST', '/projects', { slug, repoUrl: repo.url });
      await api.ok('PUT', `/projects/${slug}/secrets/token`, { value: SECRET });
      const build = await api.ok<Build>('POST', `/projects/${slug}/builds`, { branch: 'main' });
      const done = await finished(api, build.id);
      const log = await api.storedLog(build.id);
      const text = (step: string) =>
        log.filter((l) => l.step === step && l.stream !== 'system').map((l) => l.text);
      expect(done.status, log.map((l) => `${l.step}: ${l.text}`).join('\n')).toBe('success');
      expect(text('first')).toEqual(['from-the-checkout', expect.stringMatching(/^token is \*+$/)]);
      expect(text('second')).toEqual(['made-by-first', 'hello-from-service']);
      expect(JSON.stringify(log)).not.toContain(SECRET);
      // Nothing of the build is left on the cluster.
      const selector = `slipway.dev/installation=${INSTALLATION}`;
      await waitFor(
        'the build pod to go',
        async () => ((await kube.listPods(selector)).items.length === 0 ? true : undefined),
        60_000,
        200,
      );
      expect(await kube.listSecrets(selector)).toEqual([]);
      expect(await kube.listConfigMaps(selector)).toEqual([]);

      // kill -9 while a step runs: the next server follows it to its end, no line lost or twice.
      const slow = `k8s/slow-${INSTALLATION}`;
      const slowRepo = await TestRepo.create({
        '.slipway.yml': [
          `image: ${IMAGE}`,
          'steps:',
          '  - name: work',
          '    commands:',
          '      - echo before',
          '      - sleep 4',
          '      - echo after',
          '',
        ].join('\n'),
      });
      await api.ok('POST', '/projects', { slug: slow, repoUrl: slowRepo.url });
      const second = await api.ok<Build>('POST', `/projects/${slow}/builds`, { branch: 'main' });
      await waitFor(
        'the step to print',
        async () => ((await api.storedLog(second.id)).some((l) => l.text === 'before') ? true : undefined),
        120_000,
        200,
      );
      await server.kill9();
      const next = await server.restart();
      const api2 = next.api();
      const resumed = await finished(api2, second.id);
      expect(resumed.status).toBe('success');
      const lines = (await api2.storedLog(second.id)).filter(
        (l) => l.step === 'work' && l.stream !== 'system',
      );
      expect(lines.map((l) => l.text)).toEqual(['before', 'after']);
      await next.stop();
    },
  );

  it(
    'slipway run --executor kubernetes runs the pipeline in a pod and exits; doctor finds the cluster and every permission',
    { timeout: 180_000 },
    async () => {
      const dir = await workdir({
        '.slipway.yml': [
          `image: ${IMAGE}`,
          'steps:',
          '  - name: hello',
          '    commands: ["cat note.txt", "echo from-the-pod"]',
          '',
        ].join('\n'),
        'note.txt': 'copied-in\n',
      });
      const k8s = [
        '--kubeconfig',
        standIn.kubeconfigPath,
        '--helper-image',
        IMAGE,
        '--pull',
        'never',
        '--installation',
        INSTALLATION,
      ];
      const run = await runCli(['run', '--executor', 'kubernetes', '--include-ignored', ...k8s], {
        cwd: dir,
      });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toContain('copied-in');
      expect(run.stdout).toContain('from-the-pod');
      expect((await kube.listPods(`slipway.dev/installation=${INSTALLATION}`)).items).toEqual([]);
      const doctor = await runCli(['doctor', '--kubeconfig', standIn.kubeconfigPath], { cwd: dir });
      expect(doctor.code).toBe(0);
      expect(doctor.stdout).toMatch(/^ok +kubernetes .*v1\.34/m);
      expect(doctor.stdout).toContain('permissions');
    },
  );

  it(
    'run --dry-run -o yaml prints the objects, valid and with no secret value, and creates nothing',
    { timeout: 120_000 },
    async () => {
      const dir = await workdir({
        '.slipway.yml': [
          `image: ${IMAGE}`,
          'steps:',
          '  - name: hello',
          '    env:',
          '      TOKEN: { from_secret: token }',
          '    commands: ["echo hi"]',
          '',
        ].join('\n'),
      });
      const before = standIn.requests.length;
      const result = await runCli(
        [
          'run',
          '--executor',
          'kubernetes',
          '--dry-run',
          '-o',
          'yaml',
          '--kubeconfig',
          standIn.kubeconfigPath,
          '--secret',
          `token=${SECRET}`,
        ],
        { cwd: dir },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).not.toContain(SECRET);
      const docs = parseAllDocuments(result.stdout).map((d) => d.toJSON() as { kind: string });
      expect(docs.map((d) => d.kind)).toEqual(
        expect.arrayContaining(['Pod', 'Secret', 'EphemeralContainer']),
      );
      expect(standIn.requests.length).toBe(before);
    },
  );
});
