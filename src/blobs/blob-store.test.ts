import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobStoreConformance } from './blob-store.case.js';
import { createBlobStore } from './create.js';
import { BlobError } from './errors.js';
import { FsBlobStore } from './fs-blob-store.js';
import { S3BlobStore, s3ClientConfig } from './s3-blob-store.js';
import { startTestS3, type TestS3 } from './testing/s3rver.js';

blobStoreConformance('filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'slipway-blobs-'));
  return { store: new FsBlobStore(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

blobStoreConformance('s3 (s3rver on loopback)', async () => {
  const s3 = await startTestS3();
  return {
    store: new S3BlobStore({ bucket: s3.bucket, prefix: 'some/prefix', client: s3.client() }),
    cleanup: () => s3.close(),
  };
});

blobStoreConformance('s3 at the bucket root', async () => {
  const s3 = await startTestS3();
  return { store: new S3BlobStore({ bucket: s3.bucket, client: s3.client() }), cleanup: () => s3.close() };
});

describe('FsBlobStore', () => {
  it('leaves no temp files behind after failed puts and prunes emptied directories', async () => {
    const root = await mkdtemp(join(tmpdir(), 'slipway-blobs-'));
    try {
      const store = new FsBlobStore(root);
      await expect(store.put('a/b', Buffer.alloc(5), { size: 4 })).rejects.toBeInstanceOf(BlobError);
      await store.put('x/y/z', 'ok');
      expect(await readdir(join(root, 'tmp'))).toEqual([]);
      await store.deletePrefix('x/');
      expect(await readdir(join(root, 'objects'))).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('S3BlobStore against s3rver', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startTestS3('other-bucket');
  });
  afterAll(async () => {
    await s3.close();
  });

  it('keeps prefixes of two stores in one bucket apart', async () => {
    const a = new S3BlobStore({ bucket: s3.bucket, prefix: 'a', client: s3.client() });
    const b = new S3BlobStore({ bucket: s3.bucket, prefix: 'a-b', client: s3.client() });
    await a.put('k', 'from a');
    await b.put('k', 'from b');
    const keys: string[] = [];
    for await (const blob of a.list('')) keys.push(blob.key);
    expect(keys).toEqual(['k']);
    expect(await a.deletePrefix('')).toBe(1);
    expect(await b.head('k')).toMatchObject({ size: 6 });
  });

  it('reports a missing bucket as a storage error that names it, not as a missing object', async () => {
    const store = new S3BlobStore({ bucket: 'no-such-bucket', client: s3.client() });
    await expect(store.get('k')).rejects.toMatchObject({
      code: 'storage',
      message: expect.stringContaining('s3://no-such-bucket') as unknown,
    });
    await expect(store.put('k', Readable.from(['x']))).rejects.toMatchObject({ code: 'storage' });
  });

  it('is what createBlobStore makes of s3://bucket/prefix with AWS_* settings', async () => {
    const saved = { ...process.env };
    try {
      process.env.AWS_ENDPOINT_URL = s3.endpoint;
      process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
      process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
      process.env.AWS_REGION = 'eu-west-1';
      const store = createBlobStore(`s3://${s3.bucket}/team/ci/`);
      expect(store).toBeInstanceOf(S3BlobStore);
      expect(store.description).toBe(`s3://${s3.bucket}/team/ci`);
      await store.put('hello', 'world');
      const direct = new S3BlobStore({ bucket: s3.bucket, client: s3.client() });
      expect(await direct.head('team/ci/hello')).toMatchObject({ size: 5 });
    } finally {
      process.env = saved;
    }
  });
});

describe('createBlobStore', () => {
  it('makes a filesystem store of a path or file:// URL', () => {
    expect(createBlobStore('/var/lib/slipway/blobs').description).toBe('fs:/var/lib/slipway/blobs');
    expect(createBlobStore('blobs', { baseDir: '/data' }).description).toBe('fs:/data/blobs');
    expect(createBlobStore('file:///srv/blobs').description).toBe('fs:/srv/blobs');
  });

  it('refuses specs it cannot use, saying why', () => {
    expect(() => createBlobStore('')).toThrow(/empty/);
    expect(() => createBlobStore('gs://bucket')).toThrow(/unsupported scheme/);
    expect(() => createBlobStore('s3://Bad_Bucket')).toThrow(/not a valid S3 bucket name/);
    expect(() => createBlobStore('s3://bucket/a/../b')).toThrow(/segment/);
  });

  it('takes endpoint, region and path style from the environment', () => {
    expect(
      s3ClientConfig({}, { AWS_ENDPOINT_URL: 'http://minio:9000', AWS_REGION: 'eu-central-1' }),
    ).toMatchObject({
      endpoint: 'http://minio:9000',
      region: 'eu-central-1',
      forcePathStyle: true,
    });
    expect(s3ClientConfig({}, {})).toMatchObject({ region: 'us-east-1', forcePathStyle: false });
    expect(
      s3ClientConfig({}, { AWS_ENDPOINT_URL_S3: 'http://s3.local', SLIPWAY_S3_FORCE_PATH_STYLE: 'false' }),
    ).toMatchObject({
      endpoint: 'http://s3.local',
      forcePathStyle: false,
    });
  });
});
