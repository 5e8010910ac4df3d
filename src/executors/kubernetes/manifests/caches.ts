import type { IVolume } from 'kubernetes-models/v1/Volume';
import type { IVolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { cacheStepDir } from '../../cache-home.js';
import type { ConfigMap } from '../kube-api.js';
import { SEED_CHUNK_BYTES } from './seed.js';

/**
 * Step caches (see ../DESIGN.md): the `slipway-caches` `emptyDir`, mounted read-write at
 * {@link CACHES_DIR} into the `seed` init container and every step, read-only into the
 * containers that copy a save out. It holds one staging directory per step
 * (`cacheStepDir(CACHES_DIR, key)`): restores handed to `prepare` (`w/`, `h/`), and the `~/`
 * paths a step kept (`keep/`).
 */
export const CACHES_VOLUME = 'slipway-caches';
export const CACHES_DIR = '/slipway/caches';
/** Where `seed` sees restore `i`'s chunks: `<dir>/<iii>/<nnnn>/cache.tgz`. */
export const CACHE_SEED_DIR = '/slipway/cache-seed';
export const CACHE_SEED_KEY = 'cache.tgz';
/** Above this (compressed, all of a build's restores) a restore is left out; default 64 MiB. */
export const MAX_CACHE_RESTORE_BYTES_DEFAULT = 64 * 1024 * 1024;

/** A restore for step `step` (its key): a gzip'd tar of `w/` and `h/`. */
export interface CacheRestore {
  step: string;
  archive: Buffer;
}

export interface CacheRestoreObjects {
  /** `<pod>-cache-<i>-<n>` (binaryData `cache.tgz`, immutable), like the seed's. */
  configMaps: ConfigMap[];
  volumes: IVolume[];
  /** The chunks' mounts in `seed`. */
  mounts: IVolumeMount[];
  /** `seed`'s script lines that unpack each restore into its step's staging directory. */
  script: string[];
}

/** The restores as ConfigMaps, volumes and `seed` script lines. Pure. */
export function cacheRestoreObjects(
  restores: readonly CacheRestore[],
  pod: string,
  namespace: string,
  metadata: { labels: Record<string, string>; annotations: Record<string, string> },
): CacheRestoreObjects {
  const objects: CacheRestoreObjects = { configMaps: [], volumes: [], mounts: [], script: [] };
  restores.forEach(({ step, archive }, i) => {
    const dir = `${CACHE_SEED_DIR}/${String(i).padStart(3, '0')}`;
    for (let offset = 0, n = 0; offset < archive.length || n === 0; offset += SEED_CHUNK_BYTES, n++) {
      const name = `${pod}-cache-${i}-${n}`;
      objects.configMaps.push({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name,
          namespace,
          labels: { ...metadata.labels },
          annotations: { ...metadata.annotations },
        },
        immutable: true,
        binaryData: {
          [CACHE_SEED_KEY]: archive.subarray(offset, offset + SEED_CHUNK_BYTES).toString('base64'),
        },
      });
      const volume = `slipway-cache-${i}-${n}`;
      objects.volumes.push({
        name: volume,
        configMap: { name, items: [{ key: CACHE_SEED_KEY, path: CACHE_SEED_KEY }] },
      });
      objects.mounts.push({
        name: volume,
        mountPath: `${dir}/${String(n).padStart(4, '0')}`,
        readOnly: true,
      });
    }
    // A restore that does not unpack leaves nothing behind (the step runs without it) and never
    // fails the pod. The step's user may not be root: the staging directories become writable
    // by all (the step removes `w/` and `h/` and writes `keep/`), files readable by all; the
    // `emptyDir` itself is 0777. `find` does not follow symlinks.
    const stepDir = cacheStepDir(CACHES_DIR, step);
    objects.script.push(
      `d=${stepDir}; if mkdir -p "$d" && cat ${dir}/*/${CACHE_SEED_KEY} | tar -xzf - -C "$d"; then ` +
        `find "$d" -type d -exec chmod a+rwx {} + && find "$d" -type f -exec chmod a+r {} + || :; ` +
        `else rm -rf "$d" || :; fi`,
    );
  });
  return objects;
}
