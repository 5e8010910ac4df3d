/**
 * A pod's volumes as directories under the kubelet's state dir, bind-mounted into its
 * containers: emptyDir (0777, like the kubelet's), configMap and projected configMap /
 * downwardAPI / secret-with-items sources (files written from the objects), downwardAPI (files
 * rewritten atomically when the pod's annotations or labels change: write a temporary file,
 * then rename it over the old one, so a reader never sees half a value), and a
 * persistentVolumeClaim as a directory per claim that outlives the pod.
 */
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import type { IConfigMapProjection } from 'kubernetes-models/v1/ConfigMapProjection';
import type { IDownwardAPIVolumeFile } from 'kubernetes-models/v1/DownwardAPIVolumeFile';
import type { IKeyToPath } from 'kubernetes-models/v1/KeyToPath';
import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { Pod } from '../../../kube-api.js';
import type { PodHost } from './types.js';

/** A volume that could not be set up: the kubelet's FailedMount message (it retries). */
export class MountError extends Error {
  override readonly name = 'MountError';
}

/** The value of a downward-API `fieldPath` (env `fieldRef` and downwardAPI volume items). */
export function fieldValue(pod: Pod, fieldPath: string, hostIP: string | undefined): string | undefined {
  const metadata = pod.metadata ?? {};
  const keyed = /^metadata\.(annotations|labels)\['(.*)'\]$/.exec(fieldPath);
  if (keyed) {
    const map = keyed[1] === 'annotations' ? metadata.annotations : metadata.labels;
    return map?.[keyed[2] ?? ''] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return metadata.name;
    case 'metadata.namespace':
      return metadata.namespace;
    case 'metadata.uid':
      return metadata.uid;
    case 'metadata.annotations':
      return formatMap(metadata.annotations);
    case 'metadata.labels':
      return formatMap(metadata.labels);
    case 'spec.nodeName':
      return pod.spec?.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName;
    case 'status.podIP':
      return pod.status?.podIP;
    case 'status.hostIP':
      return hostIP;
    default:
      return undefined;
  }
}

/** The kubelet's format for a whole label or annotation map: `key="value"` lines, sorted. */
function formatMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((key) => `${key}=${JSON.stringify(map?.[key] ?? '')}`)
    .join('\n');
}

export class PodVolumes {
  /** Host directory of each volume, by volume name. */
  readonly paths = new Map<string, string>();

  constructor(
    private readonly podDir: string,
    private readonly pvcDir: string,
  ) {}

  /**
   * Sets up every volume of the pod (idempotent: called again on each retry). Throws
   * {@link MountError} with the kubelet's message when a ConfigMap is missing.
   */
  async setUp(host: PodHost, hostIP: string | undefined): Promise<void> {
    const pod = host.pod();
    if (!pod) return;
    for (const volume of pod.spec?.volumes ?? []) {
      const dir = await this.dirFor(volume);
      this.paths.set(volume.name, dir);
      await this.fill(volume, dir, pod, host, hostIP);
    }
  }

  /** Rewrites the downward-API files (annotations or labels changed). */
  async refreshDownwardApi(host: PodHost, hostIP: string | undefined): Promise<void> {
    const pod = host.pod();
    if (!pod) return;
    for (const volume of pod.spec?.volumes ?? []) {
      const dir = this.paths.get(volume.name);
      if (!dir) continue;
      if (volume.downwardAPI) {
        await writeDownwardApi(
          dir,
          volume.downwardAPI.items ?? [],
          volume.downwardAPI.defaultMode,
          pod,
          hostIP,
        );
      }
      for (const source of volume.projected?.sources ?? []) {
        if (source.downwardAPI) {
          await writeDownwardApi(
            dir,
            source.downwardAPI.items ?? [],
            volume.projected?.defaultMode,
            pod,
            hostIP,
          );
        }
      }
    }
  }

  /** Removes the pod's volumes (not the claims' directories: a PVC outlives its pods). */
  async tearDown(): Promise<void> {
    await rm(join(this.podDir, 'volumes'), { recursive: true, force: true });
  }

  private async dirFor(volume: IVolume): Promise<string> {
    if (volume.persistentVolumeClaim) {
      const dir = join(this.pvcDir, safeName(volume.persistentVolumeClaim.claimName));
      await mkdir(dir, { recursive: true, mode: 0o777 });
      return dir;
    }
    const dir = join(this.podDir, 'volumes', safeName(volume.name));
    await mkdir(dir, { recursive: true });
    // emptyDir is world-writable on a real node, so that a non-root container can use it.
    if (volume.emptyDir) await chmod(dir, 0o777);
    return dir;
  }

  private async fill(
    volume: IVolume,
    dir: string,
    pod: Pod,
    host: PodHost,
    hostIP: string | undefined,
  ): Promise<void> {
    const name = volume.name;
    if (volume.configMap) {
      const { name: cmName = '', items, optional, defaultMode } = volume.configMap;
      await writeConfigMap(dir, name, { name: cmName, items, optional }, defaultMode, host);
    }
    if (volume.downwardAPI) {
      await writeDownwardApi(
        dir,
        volume.downwardAPI.items ?? [],
        volume.downwardAPI.defaultMode,
        pod,
        hostIP,
      );
    }
    if (volume.secret) {
      const { secretName = '', items, optional, defaultMode } = volume.secret;
      await writeSecretItems(dir, name, secretName, items, optional, defaultMode, host, pod);
    }
    for (const source of volume.projected?.sources ?? []) {
      const mode = volume.projected?.defaultMode;
      if (source.configMap) await writeConfigMap(dir, name, source.configMap, mode, host);
      if (source.downwardAPI) await writeDownwardApi(dir, source.downwardAPI.items ?? [], mode, pod, hostIP);
      if (source.secret) {
        const { name: secretName = '', items, optional } = source.secret;
        await writeSecretItems(dir, name, secretName, items, optional, mode, host, pod);
      }
    }
  }
}

async function writeConfigMap(
  dir: string,
  volume: string,
  source: IConfigMapProjection,
  defaultMode: number | undefined,
  host: PodHost,
): Promise<void> {
  const configMap = host.configMap(source.name ?? '');
  if (!configMap) {
    if (source.optional) return;
    throw new MountError(
      `MountVolume.SetUp failed for volume "${volume}" : configmap "${source.name}" not found`,
    );
  }
  const values = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(configMap.data ?? {})) values.set(key, Buffer.from(value));
  for (const [key, value] of Object.entries(configMap.binaryData ?? {}))
    values.set(key, Buffer.from(value, 'base64'));
  const items: IKeyToPath[] = source.items ?? [...values.keys()].map((key) => ({ key, path: key }));
  for (const item of items) {
    const value = values.get(item.key);
    if (value === undefined) {
      if (source.optional) continue;
      throw new MountError(
        `MountVolume.SetUp failed for volume "${volume}" : configmap references non-existent config key: ${item.key}`,
      );
    }
    await atomicWrite(dir, item.path, value, item.mode ?? defaultMode);
  }
}

/** Secret volumes need `items`: the kubelet's host can look up a key, not list a Secret's keys. */
async function writeSecretItems(
  dir: string,
  volume: string,
  secretName: string,
  items: IKeyToPath[] | undefined,
  optional: boolean | undefined,
  defaultMode: number | undefined,
  host: PodHost,
  pod: Pod,
): Promise<void> {
  if (!items) {
    throw new MountError(
      `MountVolume.SetUp failed for volume "${volume}" : the stand-in kubelet mounts a secret only with items`,
    );
  }
  for (const item of items) {
    const value = host.secretValue(secretName, item.key);
    if (value === undefined) {
      if (optional) continue;
      throw new MountError(
        `MountVolume.SetUp failed for volume "${volume}" : couldn't find key ${item.key} in Secret ${pod.metadata?.namespace}/${secretName}`,
      );
    }
    await atomicWrite(dir, item.path, Buffer.from(value), item.mode ?? defaultMode ?? 0o644);
  }
}

async function writeDownwardApi(
  dir: string,
  items: IDownwardAPIVolumeFile[],
  defaultMode: number | undefined,
  pod: Pod,
  hostIP: string | undefined,
): Promise<void> {
  for (const item of items) {
    if (!item.fieldRef) continue;
    const value = fieldValue(pod, item.fieldRef.fieldPath, hostIP) ?? '';
    await atomicWrite(dir, item.path, Buffer.from(value), item.mode ?? defaultMode);
  }
}

async function atomicWrite(
  dir: string,
  path: string,
  value: Buffer,
  mode: number | undefined,
): Promise<void> {
  const target = join(dir, normalize(path).replace(/^(\.\.(\/|$))+/, ''));
  await mkdir(dirname(target), { recursive: true });
  const temporary = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, value, { mode: mode ?? 0o644 });
  await chmod(temporary, mode ?? 0o644);
  await rename(temporary, target);
}

/** A volume or claim name as one path segment. */
function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_') || '_';
}
