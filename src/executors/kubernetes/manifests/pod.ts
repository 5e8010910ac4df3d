import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IEnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import type { ServicePlan } from '../../../pipeline/types.js';
import type { ConfigMap, Pod, Secret } from '../kube-api.js';
import {
  buildAnnotations,
  buildLabels,
  CONTROL_DIR,
  CONTROL_VOLUME,
  HOLD_CONTAINER,
  podName,
  secretKey,
  SEED_CONTAINER,
  serviceContainerName,
  STOP_ANNOTATION,
  WORKSPACE_DIR,
  WORKSPACE_VOLUME,
} from './names.js';
import { CACHES_DIR, CACHES_VOLUME, cacheRestoreObjects, type CacheRestore } from './caches.js';
import { MAX_SEED_BYTES_DEFAULT, SEED_KEY, seedChunkDir, seedConfigMaps, seedScript } from './seed.js';
import { literalArgs } from './wrapper.js';

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';
export interface ResourceSpec {
  cpu?: string;
  memory?: string;
}

export interface BuildPodInput {
  installation: string;
  namespace: string;
  build: { buildId: string; project: string; branch: string; image?: string; services: ServicePlan[] };
  /** Has `sh`, `tar`, `gzip`, `cat`, `sleep` (e.g. `busybox:1.36`): runs `seed` and `hold`. */
  helperImage: string;
  /** The build pods' permission-less ServiceAccount (`slipway-build`). */
  serviceAccountName: string;
  pullPolicy?: PullPolicy;
  /** Requests = limits on `hold`, so the pod's, so what the steps share. */
  resources?: ResourceSpec;
  /** Requests = limits on each service container. */
  serviceResources?: ResourceSpec;
  /** Default: an `emptyDir` (works on a cluster with no StorageClass). */
  workspace?: { kind: 'emptyDir'; sizeLimit?: string } | { kind: 'pvc'; claimName: string };
  /** gzip'd tar of the checkout, unpacked into the workspace by the `seed` init container. */
  seed?: Buffer;
  /** Above this the seed is refused with {@link SeedTooLargeError}; default 64 MiB. */
  maxSeedBytes?: number;
  /** The pod's `securityContext.runAsUser`; default none (the images' own users). */
  runAsUser?: number;
  /**
   * Step caches: the build has cached steps, so the pod gets the `slipway-caches` volume
   * (see ./caches.ts); `restores` are unpacked into their steps' staging directories by `seed`.
   */
  caches?: { restores: readonly CacheRestore[] };
}

export interface BuildPodObjects {
  pod: Pod;
  /** The services' secret env (`<pod>-services`), read with `secretKeyRef`; none when no service has secrets. */
  serviceSecret?: Secret;
  /** `<pod>-seed-<n>` and the cache restores' `<pod>-cache-<i>-<n>`: create them before the pod. */
  seed: ConfigMap[];
}

/** How a `hold` container waits: forever, ending at once (status 0) on SIGTERM. */
const HOLD_SCRIPT = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/**
 * The objects of a build's pod (see DESIGN.md): the pod with `seed` (if there is a seed),
 * `hold` and one container per service; the services' Secret; the seed ConfigMaps. None of
 * them carries a secret value in plain text outside a Secret's data. Pure: no I/O.
 *
 * @throws SeedTooLargeError when the seed is over `maxSeedBytes`.
 */
export function buildPodObjects(input: BuildPodInput): BuildPodObjects {
  const { build, namespace } = input;
  const name = podName(build.buildId);
  const labels = buildLabels(input.installation, build);
  const annotations = buildAnnotations(input.installation, build);
  const pull = input.pullPolicy ? { imagePullPolicy: input.pullPolicy } : {};
  const workspaceMount: IVolumeMount = { name: WORKSPACE_VOLUME, mountPath: WORKSPACE_DIR };
  const controlMount: IVolumeMount = { name: CONTROL_VOLUME, mountPath: CONTROL_DIR, readOnly: true };

  const seed = input.seed
    ? seedConfigMaps(
        input.seed,
        name,
        namespace,
        { labels, annotations },
        input.maxSeedBytes ?? MAX_SEED_BYTES_DEFAULT,
      )
    : [];
  const seedVolumes: IVolume[] = seed.map((map, n) => ({
    name: `slipway-seed-${n}`,
    configMap: { name: map.metadata!.name!, items: [{ key: SEED_KEY, path: SEED_KEY }] },
  }));
  const restores = cacheRestoreObjects(input.caches?.restores ?? [], name, namespace, {
    labels,
    annotations,
  });
  const cachesMount: IVolumeMount[] = input.caches ? [{ name: CACHES_VOLUME, mountPath: CACHES_DIR }] : [];
  const seedLines = [...(seed.length ? [seedScript(WORKSPACE_DIR)] : []), ...restores.script];

  const serviceSecretName = `${name}-services`;
  const secretData: Record<string, string> = {};
  const services: IContainer[] = build.services.map((service) => {
    const container = serviceContainerName(service.name);
    const env = envVars(service.env, new Set(service.secrets.map((s) => s.env)), (envName, value) => {
      const key = secretKey(`${container}.`, envName);
      secretData[key] = Buffer.from(value, 'utf8').toString('base64');
      return { name: serviceSecretName, key };
    });
    const image = service.image ?? build.image;
    if (!image) throw new Error(`service ${service.name} has no image and the pipeline has no default image`);
    return {
      name: container,
      image,
      ...pull,
      ...(service.commands
        ? { command: literalArgs(['/bin/sh', '-e', '-c', service.commands.join('\n')]) }
        : {}),
      ...(env.length > 0 ? { env } : {}),
      ...(service.waitFor !== undefined
        ? { startupProbe: { tcpSocket: { port: service.waitFor }, periodSeconds: 1, failureThreshold: 300 } }
        : {}),
      ...resources(input.serviceResources),
      volumeMounts: [workspaceMount],
    };
  });

  const hold: IContainer = {
    name: HOLD_CONTAINER,
    image: input.helperImage,
    ...pull,
    command: literalArgs(['/bin/sh', '-c', HOLD_SCRIPT]),
    ...resources(input.resources),
    volumeMounts: [workspaceMount, controlMount],
  };
  const initContainers: IContainer[] = seedLines.length
    ? [
        {
          name: SEED_CONTAINER,
          image: input.helperImage,
          ...pull,
          command: literalArgs(['/bin/sh', '-e', '-c', seedLines.join('\n')]),
          volumeMounts: [
            workspaceMount,
            ...seedVolumes.map((v, n) => ({ name: v.name, mountPath: seedChunkDir(n), readOnly: true })),
            ...cachesMount,
            ...restores.mounts,
          ],
        },
      ]
    : [];

  const workspace = input.workspace ?? { kind: 'emptyDir' };
  const volumes: IVolume[] = [
    workspace.kind === 'pvc'
      ? { name: WORKSPACE_VOLUME, persistentVolumeClaim: { claimName: workspace.claimName } }
      : { name: WORKSPACE_VOLUME, emptyDir: workspace.sizeLimit ? { sizeLimit: workspace.sizeLimit } : {} },
    {
      name: CONTROL_VOLUME,
      downwardAPI: {
        items: [{ path: 'stop', fieldRef: { fieldPath: `metadata.annotations['${STOP_ANNOTATION}']` } }],
      },
    },
    ...seedVolumes,
    // A step may write there as into the workspace: the same bound (on a PVC workspace, none).
    ...(input.caches
      ? [
          {
            name: CACHES_VOLUME,
            emptyDir:
              workspace.kind === 'emptyDir' && workspace.sizeLimit ? { sizeLimit: workspace.sizeLimit } : {},
          },
        ]
      : []),
    ...restores.volumes,
  ];

  const pod: Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { ...labels },
      annotations: { ...annotations, [STOP_ANNOTATION]: '' },
    },
    spec: {
      restartPolicy: 'Never',
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      serviceAccountName: input.serviceAccountName,
      terminationGracePeriodSeconds: 30,
      ...(input.runAsUser !== undefined ? { securityContext: { runAsUser: input.runAsUser } } : {}),
      ...(initContainers.length ? { initContainers } : {}),
      containers: [hold, ...services],
      volumes,
    },
  };
  const serviceSecret: Secret | undefined = Object.keys(secretData).length
    ? {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: serviceSecretName,
          namespace,
          labels: { ...labels },
          annotations: { ...annotations },
        },
        type: 'Opaque',
        data: secretData,
      }
    : undefined;
  return { pod, ...(serviceSecret ? { serviceSecret } : {}), seed: [...seed, ...restores.configMaps] };
}

/**
 * Container env: the plain entries (those not named secret) as values, the secret ones as
 * `secretKeyRef`s; `toSecret` files a secret value and says where it went.
 */
export function envVars(
  plain: Record<string, string>,
  secretNames: ReadonlySet<string>,
  toSecret: (name: string, value: string) => { name: string; key: string },
  secretValues: Record<string, string> = plain,
): IEnvVar[] {
  const env: IEnvVar[] = [];
  for (const [name, value] of Object.entries(plain)) {
    if (!secretNames.has(name)) env.push({ name, value });
  }
  for (const name of secretNames) {
    // Own keys only: a variable named `__proto__` must not read the prototype.
    const value = Object.hasOwn(secretValues, name) ? secretValues[name] : undefined;
    env.push({ name, valueFrom: { secretKeyRef: toSecret(name, typeof value === 'string' ? value : '') } });
  }
  return env;
}

function resources(spec: ResourceSpec | undefined): Pick<IContainer, 'resources'> {
  const amounts: Record<string, string> = {};
  if (spec?.cpu) amounts.cpu = spec.cpu;
  if (spec?.memory) amounts.memory = spec.memory;
  return Object.keys(amounts).length
    ? { resources: { requests: { ...amounts }, limits: { ...amounts } } }
    : {};
}
