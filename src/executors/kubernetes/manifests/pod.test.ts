import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StepSpec } from '../../types.js';
import type { ServicePlan } from '../../../pipeline/types.js';
import { cacheStepDir } from '../../cache-home.js';
import { ephemeralContainerErrors, kubeSchemaErrors } from '../testing/schema.js';
import {
  buildPodObjects,
  DNS_LABEL,
  LABEL_VALUE,
  MAX_SEED_BYTES_DEFAULT,
  SEED_CHUNK_BYTES,
  SeedTooLargeError,
  stepObjects,
  type BuildPodInput,
} from './index.js';

const anyText = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 300 }),
  fc.constantFrom('feature/' + 'ÄÖ…'.repeat(100), 'a/b', 'build/compile & test', '-'),
);
const envName = fc.oneof(
  fc.constantFrom('TOKEN', 'DB_PASSWORD', 'a.b', 'with space', 'ÄÖ'),
  fc.string({ minLength: 1, maxLength: 20 }),
);
const envMap = fc.dictionary(envName, fc.string({ maxLength: 40 }), { maxKeys: 4 });

const service: fc.Arbitrary<ServicePlan> = fc
  .record({
    name: anyText,
    image: fc.option(fc.constantFrom('redis:7', 'localhost/busybox:latest'), { nil: undefined }),
    env: envMap,
    secretNames: fc.array(envName, { maxLength: 3 }),
    commands: fc.option(fc.array(fc.string(), { minLength: 1, maxLength: 3 }), { nil: undefined }),
    waitFor: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
  })
  .map(({ secretNames, env, ...rest }) => {
    const withSecrets = { ...env };
    for (const [i, n] of secretNames.entries()) withSecrets[n] = `svc-secret-${i}-${rest.name.length}`;
    return { ...rest, env: withSecrets, secrets: secretNames.map((n) => ({ env: n, secret: `s-${n}` })) };
  });

const buildInput: fc.Arbitrary<BuildPodInput> = fc.record(
  {
    installation: anyText,
    namespace: fc.constantFrom('ci-builds', 'default'),
    build: fc.record({
      buildId: anyText,
      project: anyText,
      branch: anyText,
      image: fc.constant('localhost/busybox:latest'),
      services: fc.uniqueArray(service, { maxLength: 3, selector: (s) => s.name }),
    }),
    helperImage: fc.constant('localhost/busybox:latest'),
    serviceAccountName: fc.constant('slipway-build'),
    pullPolicy: fc.option(fc.constantFrom('Always' as const, 'IfNotPresent' as const, 'Never' as const), {
      nil: undefined,
    }),
    resources: fc.option(
      fc.record({ cpu: fc.constantFrom('500m', '2'), memory: fc.constantFrom('256Mi', '1Gi') }),
      { nil: undefined },
    ),
    serviceResources: fc.option(fc.record({ memory: fc.constant('128Mi') }), { nil: undefined }),
    workspace: fc.option(
      fc.oneof(
        fc.record({ kind: fc.constant('emptyDir' as const), sizeLimit: fc.constant('2Gi') }),
        fc.record({ kind: fc.constant('pvc' as const), claimName: fc.constant('ws') }),
      ),
      { nil: undefined },
    ),
    seed: fc.option(
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((a) => Buffer.from(a)),
      { nil: undefined },
    ),
    runAsUser: fc.option(fc.nat(65535), { nil: undefined }),
  },
  { requiredKeys: ['installation', 'namespace', 'build', 'helperImage', 'serviceAccountName'] },
);

const step: fc.Arbitrary<StepSpec> = fc.record({
  key: anyText,
  stage: fc.constant('build'),
  step: anyText,
  image: fc.option(fc.constant('localhost/busybox:latest'), { nil: undefined }),
  commands: fc.array(fc.string(), { maxLength: 3 }),
  env: envMap,
  secrets: fc.dictionary(
    envName,
    fc.string({ minLength: 1, maxLength: 30 }).map((s) => `step-secret-${s}`),
    { maxKeys: 3 },
  ),
  attempt: fc.nat(20),
});

/** Every name (metadata, containers, volumes) and label value in an object. */
function namesAndLabels(object: { metadata?: { name?: string; labels?: Record<string, string> } }): {
  names: string[];
  labels: string[];
} {
  return { names: [object.metadata?.name ?? ''], labels: Object.values(object.metadata?.labels ?? {}) };
}

describe('buildPodObjects and stepObjects', () => {
  it('generate only schema-valid objects with valid names and labels, whatever the input', () => {
    fc.assert(
      fc.property(buildInput, step, (input, s) => {
        const objects = buildPodObjects(input);
        const all = [objects.pod, ...(objects.serviceSecret ? [objects.serviceSecret] : []), ...objects.seed];
        const { container, secret } = stepObjects({
          installation: input.installation,
          namespace: input.namespace,
          build: input.build,
          pod: { name: objects.pod.metadata!.name!, uid: 'd6a1b1c4-6f1b-4b59-9a7e-0f3c1c1b2a3d' },
          step: s,
          stopGraceSeconds: 2,
        });
        if (secret) all.push(secret);
        for (const object of all) {
          expect(kubeSchemaErrors(object)).toEqual([]);
          const { names, labels } = namesAndLabels(object);
          for (const name of names) expect(name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
          for (const label of labels) {
            expect(label).toMatch(LABEL_VALUE);
            expect(label.length).toBeLessThanOrEqual(63);
          }
        }
        expect(ephemeralContainerErrors(container)).toEqual([]);
        const spec = objects.pod.spec!;
        for (const c of [...spec.containers, ...(spec.initContainers ?? []), container]) {
          expect(c.name.length).toBeLessThanOrEqual(63);
          expect(c.name).toMatch(DNS_LABEL);
        }
        expect(objects.pod.metadata!.name!.length).toBeLessThanOrEqual(63);
        expect(new Set(spec.containers.map((c) => c.name)).size).toBe(spec.containers.length);
      }),
      { numRuns: 60 },
    );
  });

  it('secrets never appear plain in the pod or the ephemeral container (steps and services)', () => {
    fc.assert(
      fc.property(buildInput, step, (input, s) => {
        const objects = buildPodObjects(input);
        const { container, secret } = stepObjects({
          installation: input.installation,
          namespace: input.namespace,
          build: input.build,
          pod: { name: objects.pod.metadata!.name!, uid: 'u1' },
          step: s,
          stopGraceSeconds: 2,
        });
        const visible =
          JSON.stringify(objects.pod) + JSON.stringify(container) + JSON.stringify(objects.seed);
        const secrets = [
          ...Object.values(s.secrets),
          ...input.build.services.flatMap((svc) => svc.secrets.map((r) => svc.env[r.env]!)),
        ];
        for (const value of secrets) {
          expect(visible).not.toContain(value);
          expect(visible).not.toContain(Buffer.from(value).toString('base64'));
        }
        // …and they are in the Secrets, read by secretKeyRef.
        const stepSecretValues = Object.values(secret?.data ?? {}).map((v) =>
          Buffer.from(v, 'base64').toString(),
        );
        expect(stepSecretValues.sort()).toEqual(Object.values(s.secrets).sort());
        for (const name of Object.keys(s.secrets)) {
          const env = container.env!.find((e) => e.name === name)!;
          expect(env.value).toBeUndefined();
          expect(env.valueFrom?.secretKeyRef?.name).toBe(secret!.metadata!.name);
        }
        const serviceSecretValues = Object.values(objects.serviceSecret?.data ?? {}).map((v) =>
          Buffer.from(v, 'base64').toString(),
        );
        expect(serviceSecretValues.length).toBe(
          input.build.services.reduce((n, svc) => n + new Set(svc.secrets.map((r) => r.env)).size, 0),
        );
      }),
      { numRuns: 60 },
    );
  });

  it('lays out the pod as DESIGN.md says', () => {
    const objects = buildPodObjects({
      installation: 'prod',
      namespace: 'ci',
      build: {
        buildId: 'b1',
        project: 'a/b',
        branch: 'main',
        image: 'node:20',
        services: [
          {
            name: 'redis',
            image: 'redis:7',
            env: { A: '1', PASS: 'p' },
            secrets: [{ env: 'PASS', secret: 'redis' }],
            waitFor: 6379,
          },
        ],
      },
      helperImage: 'busybox:1.36',
      serviceAccountName: 'slipway-build',
      resources: { cpu: '1', memory: '1Gi' },
      seed: Buffer.from('x'),
    });
    const spec = objects.pod.spec!;
    expect(spec).toMatchObject({
      restartPolicy: 'Never',
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      serviceAccountName: 'slipway-build',
      terminationGracePeriodSeconds: 30,
    });
    expect(spec.initContainers!.map((c) => c.name)).toEqual(['seed']);
    expect(spec.containers.map((c) => c.name)).toEqual(['hold', 'svc-redis']);
    expect(spec.containers[0]!.resources).toEqual({
      requests: { cpu: '1', memory: '1Gi' },
      limits: { cpu: '1', memory: '1Gi' },
    });
    expect(spec.containers[1]!.startupProbe).toEqual({
      tcpSocket: { port: 6379 },
      periodSeconds: 1,
      failureThreshold: 300,
    });
    expect(spec.containers[1]!.env).toEqual([
      { name: 'A', value: '1' },
      {
        name: 'PASS',
        valueFrom: {
          secretKeyRef: { name: `${objects.pod.metadata!.name}-services`, key: 'svc-redis.PASS' },
        },
      },
    ]);
    expect(objects.pod.metadata!.labels!['slipway.dev/project']).toMatch(/^a-b-[0-9a-f]{8}$/);
    expect(objects.pod.metadata!.annotations!['slipway.dev/project']).toBe('a/b');
    expect(objects.seed.map((m) => m.metadata!.name)).toEqual([`${objects.pod.metadata!.name}-seed-0`]);
  });

  it('splits the seed into ConfigMaps each under 1 MiB with base64, and refuses one over the limit', () => {
    const seed = Buffer.alloc(SEED_CHUNK_BYTES * 2 + 10, 7);
    const input: BuildPodInput = {
      installation: 'i',
      namespace: 'ci',
      build: { buildId: 'b', project: 'p', branch: 'm', services: [] },
      helperImage: 'busybox',
      serviceAccountName: 'slipway-build',
      seed,
    };
    const { seed: maps, pod } = buildPodObjects(input);
    expect(maps).toHaveLength(3);
    for (const map of maps) expect(JSON.stringify(map).length).toBeLessThan(1024 * 1024);
    const joined = Buffer.concat(maps.map((m) => Buffer.from(m.binaryData!['seed.tgz']!, 'base64')));
    expect(joined.equals(seed)).toBe(true);
    expect(pod.spec!.initContainers![0]!.volumeMounts!.map((m) => m.mountPath)).toEqual([
      '/workspace',
      '/slipway/seed/0000',
      '/slipway/seed/0001',
      '/slipway/seed/0002',
    ]);
    expect(() => buildPodObjects({ ...input, maxSeedBytes: SEED_CHUNK_BYTES })).toThrow(SeedTooLargeError);
    expect(() => buildPodObjects({ ...input, seed: Buffer.alloc(MAX_SEED_BYTES_DEFAULT + 1) })).toThrow(
      'the checkout is 64.0 MiB compressed, over the limit of 64.0 MiB (--max-seed-bytes)',
    );
  });

  it('gives a build with caches the slipway-caches volume and its restores as seed ConfigMaps, valid for the API', () => {
    const archive = Buffer.alloc(SEED_CHUNK_BYTES + 10, 3);
    const objects = buildPodObjects({
      installation: 'i',
      namespace: 'ci',
      build: { buildId: 'b', project: 'p', branch: 'm', services: [] },
      helperImage: 'busybox',
      serviceAccountName: 'slipway-build',
      caches: { restores: [{ step: 'build/npm ci', archive }] },
    });
    const name = objects.pod.metadata!.name!;
    expect(objects.seed.map((m) => m.metadata!.name)).toEqual([`${name}-cache-0-0`, `${name}-cache-0-1`]);
    const joined = Buffer.concat(objects.seed.map((m) => Buffer.from(m.binaryData!['cache.tgz']!, 'base64')));
    expect(joined.equals(archive)).toBe(true);
    const seed = objects.pod.spec!.initContainers![0]!;
    expect(seed.volumeMounts!.map((m) => [m.mountPath, m.readOnly ?? false])).toEqual([
      ['/workspace', false],
      ['/slipway/caches', false],
      ['/slipway/cache-seed/000/0000', true],
      ['/slipway/cache-seed/000/0001', true],
    ]);
    expect(seed.command!.join(' ')).toContain(`${cacheStepDir('/slipway/caches', 'build/npm ci')}`);
    expect(objects.pod.spec!.volumes!.find((v) => v.name === 'slipway-caches')).toEqual({
      name: 'slipway-caches',
      emptyDir: {},
    });
    expect(kubeSchemaErrors(objects.pod)).toEqual([]);
    // Without restores: the volume, no seed container.
    const empty = buildPodObjects({
      installation: 'i',
      namespace: 'ci',
      build: { buildId: 'b', project: 'p', branch: 'm', services: [] },
      helperImage: 'busybox',
      serviceAccountName: 'slipway-build',
      caches: { restores: [] },
    });
    expect(empty.pod.spec!.initContainers).toBeUndefined();
    expect(empty.pod.spec!.volumes!.map((v) => v.name)).toContain('slipway-caches');
    // A step mounts it read-write (no subPath: ephemeral containers may not have one).
    const { container } = stepObjects({
      installation: 'i',
      namespace: 'ci',
      build: { buildId: 'b', project: 'p', branch: 'm', image: 'busybox' },
      pod: { name, uid: 'u' },
      step: { key: 's/t', stage: 's', step: 't', commands: ['true'], env: {}, secrets: {}, attempt: 1 },
      stopGraceSeconds: 1,
      caches: true,
    });
    expect(container.volumeMounts).toContainEqual({ name: 'slipway-caches', mountPath: '/slipway/caches' });
    expect(ephemeralContainerErrors(container)).toEqual([]);
  });
});
