import type { StepSpec } from '../../types.js';
import type { EphemeralContainer, Secret } from '../kube-api.js';
import {
  buildAnnotations,
  buildLabels,
  CONTROL_DIR,
  CONTROL_VOLUME,
  LABEL_STEP,
  labelValue,
  secretKey,
  stepContainerName,
  WORKSPACE_DIR,
  WORKSPACE_VOLUME,
} from './names.js';
import { CACHES_DIR, CACHES_VOLUME } from './caches.js';
import { envVars, type PullPolicy } from './pod.js';
import { literalArgs, stepCommand } from './wrapper.js';

export interface StepObjectsInput {
  installation: string;
  namespace: string;
  build: { buildId: string; project: string; branch: string; image?: string };
  /** The build's pod: the owner of the step's Secret (no owner reference while `uid` is empty). */
  pod: { name: string; uid: string };
  step: StepSpec;
  /** The wrapper's grace between SIGTERM and SIGKILL when the step is stopped. */
  stopGraceSeconds: number;
  pullPolicy?: PullPolicy;
  /** The pod has the step caches volume: mounted read-write (`step.commands` are already wrapped). */
  caches?: boolean;
}

export interface StepObjects {
  container: EphemeralContainer;
  /** `<pod>-<container>-env`, owned by the pod: the step's secrets, read with `secretKeyRef`. */
  secret?: Secret;
}

/**
 * One step attempt: its ephemeral container (the step wrapper in the step's image, workspace
 * and control volumes) and its Secret. Secret values are only in the Secret's data. Pure.
 */
export function stepObjects(input: StepObjectsInput): StepObjects {
  const { step, build } = input;
  const name = stepContainerName(step.key, step.attempt);
  const image = step.image ?? build.image;
  if (!image) throw new Error(`step ${step.key} has no image and the pipeline has no default image`);
  // The Secret's name carries the pod's: container names repeat from build to build.
  const secretName = `${input.pod.name}-${name}-env`;
  const data: Record<string, string> = {};
  const env = envVars(
    step.env,
    new Set(Object.keys(step.secrets)),
    (envName, value) => {
      const key = secretKey('', envName);
      data[key] = Buffer.from(value, 'utf8').toString('base64');
      return { name: secretName, key };
    },
    step.secrets,
  );
  const container: EphemeralContainer = {
    name,
    image,
    ...(input.pullPolicy ? { imagePullPolicy: input.pullPolicy } : {}),
    command: literalArgs(stepCommand(step.commands, name, input.stopGraceSeconds)),
    ...(env.length ? { env } : {}),
    workingDir: WORKSPACE_DIR,
    volumeMounts: [
      { name: WORKSPACE_VOLUME, mountPath: WORKSPACE_DIR },
      { name: CONTROL_VOLUME, mountPath: CONTROL_DIR, readOnly: true },
      ...(input.caches ? [{ name: CACHES_VOLUME, mountPath: CACHES_DIR }] : []),
    ],
  };
  if (Object.keys(data).length === 0) return { container };
  const secret: Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: secretName,
      namespace: input.namespace,
      labels: { ...buildLabels(input.installation, build), [LABEL_STEP]: labelValue(step.key) },
      annotations: { ...buildAnnotations(input.installation, build), [LABEL_STEP]: step.key },
      ...(input.pod.uid
        ? {
            ownerReferences: [
              {
                apiVersion: 'v1',
                kind: 'Pod',
                name: input.pod.name,
                uid: input.pod.uid,
                blockOwnerDeletion: false,
              },
            ],
          }
        : {}),
    },
    type: 'Opaque',
    data,
  };
  return { container, secret };
}
