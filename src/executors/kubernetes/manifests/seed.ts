import type { ConfigMap } from '../kube-api.js';

/**
 * Bytes of the gzip'd tar in one seed ConfigMap. The API server refuses a ConfigMap over
 * 1 MiB (its `data` and `binaryData` together, and `binaryData` travels base64: 4/3 of it),
 * so 720 KiB becomes 960 KiB of base64, leaving 64 KiB for the metadata.
 */
export const SEED_CHUNK_BYTES = 720 * 1024;
/** Above this (compressed) a checkout is refused rather than pushed through etcd. */
export const MAX_SEED_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Where the `seed` init container sees the chunks: `<dir>/<nnnn>/seed.tgz`, in order. */
export const SEED_DIR = '/slipway/seed';
export const SEED_KEY = 'seed.tgz';

/** The checkout is larger than the seed limit. */
export class SeedTooLargeError extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(
      `the checkout is ${mib(size)} compressed, over the limit of ${mib(limit)} (--max-seed-bytes) for copying it ` +
        'into the build pod through the Kubernetes API: clone the repository in a step instead, or raise the limit',
    );
    this.name = 'SeedTooLargeError';
  }
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** The chunk directories in the `seed` container, zero-padded so that a glob lists them in order. */
export function seedChunkDir(index: number): string {
  return `${SEED_DIR}/${String(index).padStart(4, '0')}`;
}

/** The seed as ConfigMaps `<pod>-seed-<n>` (binaryData `seed.tgz`, immutable). */
export function seedConfigMaps(
  seed: Buffer,
  pod: string,
  namespace: string,
  metadata: { labels: Record<string, string>; annotations: Record<string, string> },
  maxBytes: number = MAX_SEED_BYTES_DEFAULT,
): ConfigMap[] {
  if (seed.length > maxBytes) throw new SeedTooLargeError(seed.length, maxBytes);
  const maps: ConfigMap[] = [];
  for (let offset = 0, n = 0; offset < seed.length || n === 0; offset += SEED_CHUNK_BYTES, n++) {
    maps.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: `${pod}-seed-${n}`,
        namespace,
        labels: { ...metadata.labels },
        annotations: { ...metadata.annotations },
      },
      immutable: true,
      binaryData: { [SEED_KEY]: seed.subarray(offset, offset + SEED_CHUNK_BYTES).toString('base64') },
    });
  }
  return maps;
}

/** The `seed` init container's script: every chunk in order, through `tar -xz`, into the workspace. */
export function seedScript(workspaceDir: string): string {
  return `cat ${SEED_DIR}/*/${SEED_KEY} | tar -xzf - -C ${workspaceDir}`;
}
