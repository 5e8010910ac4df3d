/**
 * `slipway run --executor kubernetes --dry-run`: the objects a build would create, built by
 * the same functions the executor uses, with nothing sent to a cluster. Secret values are
 * never printed (each becomes `(redacted)`), and the checkout's bytes are summed up, not shown.
 */
import { stringify } from 'yaml';
import type { PipelinePlan } from '../../pipeline/types.js';
import type { StepSpec } from '../types.js';
import type { ConfigMap, Secret } from './kube-api.js';
import { buildPodObjects, stepObjects, type BuildPodInput } from './manifests/index.js';

export const REDACTED = '(redacted)';

export interface DryRunInput {
  plan: PipelinePlan;
  build: { buildId: string; project: string; branch: string };
  installation: string;
  namespace: string;
  helperImage: string;
  pull?: BuildPodInput['pullPolicy'];
  resources?: BuildPodInput['resources'];
  seed?: Buffer;
  stopGraceSeconds?: number;
}

/** Every object in creation order: the build's Secret and seed, the pod, each step's Secret and container. */
export function dryRunObjects(input: DryRunInput): object[] {
  const { plan } = input;
  const redactedServices = plan.services.map((s) => ({
    ...s,
    env: { ...s.env, ...Object.fromEntries(s.secrets.map((ref) => [ref.env, REDACTED])) },
  }));
  const built = buildPodObjects({
    installation: input.installation,
    namespace: input.namespace,
    build: { ...input.build, ...(plan.image ? { image: plan.image } : {}), services: redactedServices },
    helperImage: input.helperImage,
    serviceAccountName: 'slipway-build',
    ...(input.pull ? { pullPolicy: input.pull } : {}),
    ...(input.resources ? { resources: input.resources } : {}),
    ...(input.seed ? { seed: input.seed } : {}),
  });
  const podName = built.pod.metadata?.name ?? '';
  const objects: object[] = [];
  if (built.serviceSecret) objects.push(redactSecret(built.serviceSecret));
  objects.push(...built.seed.map(summarizeSeed));
  objects.push(built.pod);
  for (const stage of plan.stages) {
    for (const step of stage.steps) {
      const spec: StepSpec = {
        key: `${stage.name}/${step.name}`,
        stage: stage.name,
        step: step.name,
        ...(step.image !== undefined ? { image: step.image } : {}),
        commands: step.commands,
        env: step.env,
        secrets: Object.fromEntries(step.secrets.map((ref) => [ref.env, REDACTED])),
        attempt: 1,
      };
      const { container, secret } = stepObjects({
        installation: input.installation,
        namespace: input.namespace,
        build: { ...input.build, ...(plan.image ? { image: plan.image } : {}) },
        pod: { name: podName, uid: '(the pod uid)' },
        step: spec,
        stopGraceSeconds: input.stopGraceSeconds ?? 2,
        ...(input.pull ? { pullPolicy: input.pull } : {}),
      });
      if (secret) objects.push(redactSecret(secret));
      // Added to the running pod when the step starts (PATCH pods/<pod>/ephemeralcontainers).
      objects.push({
        apiVersion: 'v1',
        kind: 'EphemeralContainer',
        metadata: {
          name: container.name,
          annotations: { 'slipway.dev/added-to-pod': podName, 'slipway.dev/step': spec.key },
        },
        spec: container,
      });
    }
  }
  return objects;
}

export function renderDryRun(objects: readonly object[], format: 'yaml' | 'json'): string {
  if (format === 'json')
    return JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2) + '\n';
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}

function redactSecret(secret: Secret): Secret {
  const keys = [...Object.keys(secret.data ?? {}), ...Object.keys(secret.stringData ?? {})];
  const { data: _data, stringData: _stringData, ...rest } = secret;
  return { ...rest, stringData: Object.fromEntries(keys.map((k) => [k, REDACTED])) };
}

function summarizeSeed(configMap: ConfigMap): ConfigMap {
  const entries = Object.entries(configMap.binaryData ?? {});
  const bytes = entries.reduce((sum, [, b64]) => sum + Buffer.byteLength(b64, 'base64'), 0);
  const { binaryData: _binary, ...rest } = configMap;
  return {
    ...rest,
    metadata: {
      ...rest.metadata,
      annotations: {
        ...rest.metadata?.annotations,
        'slipway.dev/dry-run': `binaryData left out: ${entries.length} key(s), ${bytes} bytes of the gzip'd checkout`,
      },
    },
  };
}
