import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../blobs/fs-blob-store.js';
import { S3BlobStore } from '../../blobs/s3-blob-store.js';
import { startTestS3 } from '../../blobs/testing/s3rver.js';
import { BlobLogStore } from './blob-log-store.js';
import { FsLogStore } from './fs-log-store.js';
import { logStoreConformance } from './log-store.case.js';

logStoreConformance('FsLogStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-logs-'));
  return {
    store: new FsLogStore(dir),
    reopen: () => new FsLogStore(dir),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

logStoreConformance('BlobLogStore on files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-logs-'));
  const blobs = new FsBlobStore(dir);
  return {
    store: new BlobLogStore(blobs),
    reopen: () => new BlobLogStore(new FsBlobStore(dir)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});

logStoreConformance('BlobLogStore on S3 (s3rver)', async () => {
  const s3 = await startTestS3();
  const store = () =>
    new BlobLogStore(new S3BlobStore({ bucket: s3.bucket, prefix: 'slipway', client: s3.client() }));
  return { store: store(), reopen: store, cleanup: () => s3.close() };
});

describe('BlobLogStore', () => {
  it('writes each batch as one object named by its first and last seq', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-logs-'));
    try {
      const blobs = new FsBlobStore(dir);
      const store = new BlobLogStore(blobs);
      const line = (seq: number) => ({
        seq,
        stage: 's',
        step: 't',
        stream: 'stdout' as const,
        n: seq,
        time: 0,
        text: `${seq}`,
      });
      await store.append(7, [line(1), line(2)]);
      await store.append(7, [line(3)]);
      const keys: string[] = [];
      for await (const blob of blobs.list('logs/7/')) keys.push(blob.key);
      expect(keys.sort()).toEqual([
        'logs/7/000000000001-000000000002.ndjson',
        'logs/7/000000000003-000000000003.ndjson',
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('FsLogStore', () => {
  /** Files under `dir` this process holds open. */
  async function openUnder(dir: string): Promise<string[]> {
    const open: string[] = [];
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
      if (target.startsWith(dir + '/')) open.push(target);
    }
    return open;
  }

  it("keeps a build's chunk open while it writes, closes it on close and remove, and appends again after either", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-logs-'));
    try {
      const store = new FsLogStore(dir);
      const line = (seq: number) => ({
        seq,
        stage: 's',
        step: 't',
        stream: 'stdout' as const,
        n: seq,
        time: 0,
        text: `${seq}`,
      });
      await store.append(1, [line(1), line(2)]);
      await store.append(1, [line(3)]);
      expect(await openUnder(dir)).toHaveLength(1);
      store.close(1);
      await store.append(2, [line(1)]);
      await store.remove(2);
      // close() lets go of the file without waiting: the next look finds it closed.
      for (let i = 0; i < 100 && (await openUnder(dir)).length > 0; i++) await new Promise(setImmediate);
      expect(await openUnder(dir)).toEqual([]);

      await store.append(1, [line(4)]);
      await store.append(2, [line(1), line(2)]);
      expect((await store.read(1, 0)).map((l) => l.seq)).toEqual([1, 2, 3, 4]);
      expect((await store.read(2, 0)).map((l) => l.seq)).toEqual([1, 2]);
      expect((await new FsLogStore(dir).read(1, 0)).map((l) => l.seq)).toEqual([1, 2, 3, 4]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
