import { isAbsolute, resolve } from 'node:path';
import { BlobError } from './errors.js';
import { FsBlobStore } from './fs-blob-store.js';
import { S3BlobStore, s3ClientConfig } from './s3-blob-store.js';
import type { S3ConnectionOptions } from './s3-blob-store.js';
import { s3Sdk } from './s3-sdk.js';
import type { BlobStore } from './types.js';

/**
 * The blob store a `--blobs` value names:
 *   - `s3://bucket` or `s3://bucket/some/prefix`: S3 or an S3-compatible store; endpoint,
 *     region and credentials come the usual AWS way (`AWS_ENDPOINT_URL`, `AWS_REGION`,
 *     `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, shared config files, instance roles), or
 *     from `s3` options;
 *   - `file:///abs/path`, or a plain path (relative to `baseDir`, default the working
 *     directory): files under that directory.
 * Throws `BlobError('invalid_spec')` with what is wrong for anything else.
 */
export function createBlobStore(
  spec: string,
  options: { baseDir?: string; s3?: S3ConnectionOptions } = {},
): BlobStore {
  const trimmed = spec.trim();
  if (trimmed === '')
    throw new BlobError('invalid_spec', 'blob store is empty: give a directory or s3://bucket/prefix');
  if (/^s3:\/\//i.test(trimmed)) {
    const rest = trimmed.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new BlobError('invalid_spec', `blob store ${spec}: "${bucket}" is not a valid S3 bucket name`);
    }
    if (
      prefix !== '' &&
      prefix.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')
    ) {
      throw new BlobError(
        'invalid_spec',
        `blob store ${spec}: the prefix "${prefix}" has an empty, "." or ".." segment`,
      );
    }
    return new S3BlobStore({ bucket, prefix, client: new (s3Sdk().S3Client)(s3ClientConfig(options.s3)) });
  }
  if (/^file:\/\//i.test(trimmed)) {
    const path = decodeURIComponent(new URL(trimmed).pathname);
    return new FsBlobStore(path);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new BlobError(
      'invalid_spec',
      `blob store ${spec}: unsupported scheme; use a directory or s3://bucket/prefix`,
    );
  }
  return new FsBlobStore(isAbsolute(trimmed) ? trimmed : resolve(options.baseDir ?? process.cwd(), trimmed));
}
