/**
 * What the docker executor leaves on the engine, found by labels alone: listing and removal
 * work in any process (after a crash, from another replica), and adoption of a step container
 * checks its labels before anything follows it.
 */
import type { ExecutorResource } from '../types.js';
import { ExecutorError } from '../types.js';
import type { DockerClient, Labels } from './client.js';
import { errorText, isGone } from './util.js';

/** Label keys on everything the executor creates. */
export const LABELS = {
  managed: 'slipway.managed',
  /** The executor build id; on a server it carries the installation (`s<installation>-<id>`). */
  build: 'slipway.build',
  project: 'slipway.project',
  branch: 'slipway.branch',
  /** `stage/step` of a step container; empty on build-wide resources. */
  step: 'slipway.step',
  /** The attempt of a step container (1, 2, …). */
  attempt: 'slipway.attempt',
  service: 'slipway.service',
  /** workspace | caches | infra | service | step | seed | collect */
  role: 'slipway.role',
} as const;

export type Role = 'workspace' | 'caches' | 'infra' | 'service' | 'step' | 'seed' | 'collect';

/** The engine's JSON filter map for these labels (`key=value` each). */
export function labelFilter(...labels: string[]): string {
  return JSON.stringify({ label: labels });
}

/**
 * Whether `labels` are those of something this executor made for `buildId` (and `role`).
 * Engines are not trusted to AND label filters: Podman 4's compatible API ORs several label
 * filters for volumes, so what a list returns is always checked again with this.
 */
export function isOfBuild(labels: Labels | null | undefined, buildId: string, role?: Role): boolean {
  return (
    labels?.[LABELS.managed] === 'true' &&
    labels[LABELS.build] === buildId &&
    (role === undefined || labels[LABELS.role] === role)
  );
}

/** Whether `labels` are those of attempt `attempt` of step `key` of build `buildId`. */
export function isStepContainer(
  labels: Labels | null | undefined,
  buildId: string,
  key: string,
  attempt: number,
): boolean {
  return (
    isOfBuild(labels, buildId, 'step') &&
    labels?.[LABELS.step] === key &&
    labels[LABELS.attempt] === String(attempt)
  );
}

/** Everything the executor still has on the engine, for any build. */
export async function listResources(client: DockerClient): Promise<ExecutorResource[]> {
  const filters = labelFilter(`${LABELS.managed}=true`);
  const [containers, volumes, networks] = await Promise.all([
    client.listContainers({ all: true, filters }),
    client.listVolumes({ filters }),
    client.listNetworks({ filters }),
  ]);
  const resources: ExecutorResource[] = [];
  const describe = (labels: Labels | null | undefined) => {
    const l = labels ?? {};
    return {
      buildId: l[LABELS.build] ?? '',
      ...(l[LABELS.project] ? { project: l[LABELS.project] } : {}),
      ...(l[LABELS.step] ? { step: l[LABELS.step] } : {}),
    };
  };
  for (const c of containers) {
    if (c.Labels?.[LABELS.managed] !== 'true') continue;
    resources.push({ kind: 'container', id: c.Id, running: c.State === 'running', ...describe(c.Labels) });
  }
  for (const v of volumes.Volumes ?? []) {
    if (v.Labels?.[LABELS.managed] !== 'true') continue;
    resources.push({ kind: 'volume', id: v.Name, running: false, ...describe(v.Labels) });
  }
  for (const n of networks) {
    if (n.Labels?.[LABELS.managed] !== 'true') continue;
    resources.push({ kind: 'network', id: n.Id, running: false, ...describe(n.Labels) });
  }
  return resources;
}

/**
 * Removes every container, volume and network labelled with `buildId`. Idempotent: what is
 * already gone is no failure. Throws an `internal` ExecutorError listing what could not go.
 */
export async function removeResources(client: DockerClient, buildId: string): Promise<void> {
  const filters = labelFilter(`${LABELS.managed}=true`, `${LABELS.build}=${buildId}`);
  const failures: string[] = [];
  const attempt = async (what: string, remove: () => Promise<unknown>) => {
    try {
      await remove();
    } catch (error) {
      if (!isGone(error)) failures.push(`${what}: ${errorText(error)}`);
    }
  };
  const ofBuild = (r: { Labels?: Labels | null }) => isOfBuild(r.Labels, buildId);
  const containers = (await client.listContainers({ all: true, filters })).filter(ofBuild);
  // Containers that joined the infra container's network namespace go first: Podman refuses
  // to remove a container others depend on.
  const isInfra = (c: { Labels?: Labels | null }) => c.Labels?.[LABELS.role] === 'infra';
  const removeContainer = (id: string) =>
    attempt(`container ${id}`, () => client.getContainer(id).remove({ force: true, v: true }));
  await Promise.all(containers.filter((c) => !isInfra(c)).map((c) => removeContainer(c.Id)));
  await Promise.all(containers.filter(isInfra).map((c) => removeContainer(c.Id)));
  const [volumes, networks] = await Promise.all([
    client.listVolumes({ filters }),
    client.listNetworks({ filters }),
  ]);
  await Promise.all([
    ...(volumes.Volumes ?? [])
      .filter(ofBuild)
      .map((v) => attempt(`volume ${v.Name}`, () => client.getVolume(v.Name).remove())),
    ...networks
      .filter(ofBuild)
      .map((n) => attempt(`network ${n.Name}`, () => client.getNetwork(n.Id).remove())),
  ]);
  if (failures.length > 0) {
    throw new ExecutorError(
      'internal',
      `could not remove everything of build ${buildId}:\n  ${failures.join('\n  ')}`,
    );
  }
}
