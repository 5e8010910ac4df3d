import { createRequire } from 'node:module';
import type * as ClientS3 from '@aws-sdk/client-s3';
import type * as LibStorage from '@aws-sdk/lib-storage';

/**
 * The AWS SDK, loaded when an S3 store is made: it is a fifth of a server's memory at rest, and
 * servers that keep blobs in files never use it. CommonJS (the only build Node resolves for
 * these packages, `import` included), so that creating a store stays synchronous.
 */
const load = createRequire(import.meta.url);

let client: typeof ClientS3 | undefined;
let storage: typeof LibStorage | undefined;

export function s3Sdk(): typeof ClientS3 {
  client ??= load('@aws-sdk/client-s3') as typeof ClientS3;
  return client;
}

export function s3Storage(): typeof LibStorage {
  storage ??= load('@aws-sdk/lib-storage') as typeof LibStorage;
  return storage;
}
