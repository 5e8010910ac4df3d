/**
 * Blob storage for logs and artifacts: one small interface, a filesystem store for one
 * machine and an S3 store for many, chosen by `--blobs` through {@link createBlobStore}.
 */
export type { BlobStore, BlobInfo, PutOptions } from './types.js';
export { BlobError } from './errors.js';
export type { BlobErrorCode } from './errors.js';
export { FsBlobStore } from './fs-blob-store.js';
export { S3BlobStore, s3ClientConfig } from './s3-blob-store.js';
export type { S3BlobStoreOptions, S3ConnectionOptions } from './s3-blob-store.js';
export { createBlobStore } from './create.js';
export { checkKey } from './keys.js';
