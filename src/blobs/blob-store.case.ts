/**
 * The blob store conformance suite: what every `BlobStore` must do (see the contract in
 * `types.ts`). Run from each store's test file:
 *
 *   blobStoreConformance('s3', async () => ({ store: new S3BlobStore(…), cleanup }));
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobError } from './errors.js';
import type { BlobStore } from './types.js';

export interface BlobStoreTarget {
  store: BlobStore;
  cleanup?: () => Promise<void>;
}

export async function readAll(stream: Readable | undefined): Promise<Buffer | undefined> {
  if (stream === undefined) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

async function keysOf(store: BlobStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const blob of store.list(prefix)) keys.push(blob.key);
  return keys.sort();
}

/** A stream of `total` pseudo-random bytes in 64 KiB chunks, never all in memory. */
function generated(total: number, seed = 1): { stream: Readable; sha256: Promise<string> } {
  const hash = createHash('sha256');
  let resolveHash: (hex: string) => void = () => undefined;
  const sha256 = new Promise<string>((resolve) => (resolveHash = resolve));
  function* chunks() {
    let left = total;
    let state = seed;
    while (left > 0) {
      const size = Math.min(64 * 1024, left);
      const chunk = Buffer.allocUnsafe(size);
      for (let i = 0; i < size; i++) {
        if (i % 4 === 0) state = (state * 1103515245 + 12345) >>> 0;
        chunk[i] = (state >>> ((i % 4) * 8)) & 0xff;
      }
      hash.update(chunk);
      left -= size;
      yield chunk;
    }
    resolveHash(hash.digest('hex'));
  }
  return { stream: Readable.from(chunks()), sha256 };
}

function failingStream(afterBytes: number): Readable {
  async function* chunks() {
    yield Buffer.alloc(afterBytes, 1);
    await new Promise((resolve) => setTimeout(resolve, 10));
    throw new Error('disk read failed');
  }
  return Readable.from(chunks());
}

export function blobStoreConformance(name: string, make: () => Promise<BlobStoreTarget>): void {
  describe(`blob store conformance: ${name}`, () => {
    let target: BlobStoreTarget;
    let store: BlobStore;
    let n = 0;
    /** A fresh prefix per test: tests share one store. */
    const fresh = () => `t${++n}-${Date.now().toString(36)}`;

    beforeAll(async () => {
      target = await make();
      store = target.store;
    });
    afterAll(async () => {
      await target?.cleanup?.();
    });

    it('stores and returns buffers, strings and streams byte for byte', async () => {
      const p = fresh();
      const binary = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0]);
      await store.put(`${p}/bin`, binary);
      await store.put(`${p}/text.txt`, 'héllo wörld\n', { contentType: 'text/plain' });
      await store.put(`${p}/stream`, Readable.from([Buffer.from('a'), Buffer.from('bc')]), { size: 3 });
      await store.put(`${p}/empty`, Buffer.alloc(0), { size: 0 });
      expect(await readAll(await store.get(`${p}/bin`))).toEqual(binary);
      expect((await readAll(await store.get(`${p}/text.txt`)))?.toString('utf8')).toBe('héllo wörld\n');
      expect((await readAll(await store.get(`${p}/stream`)))?.toString()).toBe('abc');
      expect(await readAll(await store.get(`${p}/empty`))).toEqual(Buffer.alloc(0));
      expect(await store.head(`${p}/bin`)).toMatchObject({ key: `${p}/bin`, size: binary.length });
      expect(await store.head(`${p}/empty`)).toMatchObject({ size: 0 });
    });

    it('answers undefined for missing keys and for prefixes that are not objects', async () => {
      const p = fresh();
      await store.put(`${p}/dir/file`, 'x');
      expect(await store.get(`${p}/missing`)).toBeUndefined();
      expect(await store.head(`${p}/missing`)).toBeUndefined();
      expect(await store.get(`${p}/dir`)).toBeUndefined();
      expect(await store.head(`${p}/dir`)).toBeUndefined();
      expect(await store.get(`${p}/dir/file/below`)).toBeUndefined();
    });

    it('replaces an object on a second put', async () => {
      const p = fresh();
      await store.put(`${p}/k`, 'first version');
      await store.put(`${p}/k`, 'second');
      expect((await readAll(await store.get(`${p}/k`)))?.toString()).toBe('second');
      expect((await store.head(`${p}/k`))?.size).toBe(6);
    });

    it('keeps keys with spaces, unicode and odd characters apart and intact', async () => {
      const p = fresh();
      const keys = [
        `${p}/with space.txt`,
        `${p}/ünïcødé/文件.bin`,
        `${p}/a+b=c&d%20e`,
        `${p}/semi;colon`,
        `${p}/.hidden`,
      ];
      for (const [i, key] of keys.entries()) await store.put(key, `v${i}`);
      for (const [i, key] of keys.entries())
        expect((await readAll(await store.get(key)))?.toString()).toBe(`v${i}`);
      expect(new Set(await keysOf(store, `${p}/`))).toEqual(new Set(keys));
    });

    it('lists by plain string prefix, with sizes', async () => {
      const p = fresh();
      for (const key of ['b/2', 'a/1', 'a/10/x', 'ab', 'a-b', 'c/deep/er/file'])
        await store.put(`${p}/${key}`, key);
      expect(await keysOf(store, `${p}/`)).toEqual(
        ['a-b', 'a/1', 'a/10/x', 'ab', 'b/2', 'c/deep/er/file'].map((k) => `${p}/${k}`),
      );
      expect(await keysOf(store, `${p}/a/1`)).toEqual([`${p}/a/1`, `${p}/a/10/x`]);
      expect(await keysOf(store, `${p}/a/`)).toEqual([`${p}/a/1`, `${p}/a/10/x`]);
      expect(await keysOf(store, `${p}/a`)).toEqual(['a-b', 'a/1', 'a/10/x', 'ab'].map((k) => `${p}/${k}`));
      expect(await keysOf(store, `${p}/zzz`)).toEqual([]);
      const sizes: number[] = [];
      for await (const blob of store.list(`${p}/c/`)) sizes.push(blob.size);
      expect(sizes).toEqual(['c/deep/er/file'.length]);
    });

    it('deletes by prefix: exactly the matching objects, and nothing is no error', async () => {
      const p = fresh();
      for (const key of ['logs/4/a', 'logs/4/b', 'logs/42/a', 'logs/5/a', 'artifacts/4/x'])
        await store.put(`${p}/${key}`, key);
      expect(await store.deletePrefix(`${p}/logs/4/`)).toBe(2);
      expect(await keysOf(store, `${p}/`)).toEqual(
        ['artifacts/4/x', 'logs/42/a', 'logs/5/a'].map((k) => `${p}/${k}`),
      );
      expect(await store.deletePrefix(`${p}/logs/4/`)).toBe(0);
      expect(await store.deletePrefix(`${p}/nothing-here/`)).toBe(0);
      // The emptied "directory" can hold objects again.
      await store.put(`${p}/logs/4/c`, 'again');
      expect(await keysOf(store, `${p}/logs/4/`)).toEqual([`${p}/logs/4/c`]);
      expect(await store.deletePrefix(`${p}/`)).toBe(4);
      expect(await keysOf(store, `${p}/`)).toEqual([]);
    });

    it('deletes more objects than one S3 batch holds', async () => {
      const p = fresh();
      const count = 1005;
      for (let i = 0; i < count; i += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, count - i) }, (_, j) =>
            store.put(`${p}/many/${String(i + j).padStart(5, '0')}`, 'x'),
          ),
        );
      }
      expect((await keysOf(store, `${p}/many/`)).length).toBe(count);
      expect(await store.deletePrefix(`${p}/many/`)).toBe(count);
      expect(await keysOf(store, `${p}/many/`)).toEqual([]);
    }, 120_000);

    it('refuses keys that could leave the store or alias another key, before any I/O', async () => {
      const bad = ['', '/abs', '../up', 'a/../b', 'a/./b', 'a//b', 'a/', 'a\\b', 'nul\0byte', '.', '..'];
      for (const key of bad) {
        await expect(store.put(key, 'x'), key).rejects.toMatchObject({
          name: 'BlobError',
          code: 'invalid_key',
        });
        await expect(store.get(key), key).rejects.toBeInstanceOf(BlobError);
        await expect(store.head(key), key).rejects.toBeInstanceOf(BlobError);
      }
      await expect(keysOf(store, '../')).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.deletePrefix('/etc/')).rejects.toMatchObject({ code: 'invalid_key' });
      await expect(store.deletePrefix('a/../')).rejects.toMatchObject({ code: 'invalid_key' });
    });

    it('fails a put whose body is shorter or longer than announced, leaving the old object', async () => {
      const p = fresh();
      await store.put(`${p}/k`, 'original');
      await expect(
        store.put(`${p}/k`, Readable.from([Buffer.from('abc')]), { size: 10 }),
      ).rejects.toMatchObject({
        code: 'size_mismatch',
      });
      await expect(store.put(`${p}/k`, Buffer.alloc(100), { size: 10 })).rejects.toMatchObject({
        code: 'size_mismatch',
      });
      await expect(store.put(`${p}/new`, Buffer.alloc(11), { size: 10 })).rejects.toMatchObject({
        code: 'size_mismatch',
      });
      expect((await readAll(await store.get(`${p}/k`)))?.toString()).toBe('original');
      expect(await store.head(`${p}/new`)).toBeUndefined();
      expect(await keysOf(store, `${p}/`)).toEqual([`${p}/k`]);
    });

    it('fails a put whose body stream fails, and stores nothing', async () => {
      const p = fresh();
      await expect(store.put(`${p}/broken`, failingStream(1000))).rejects.toThrow(/disk read failed/);
      expect(await store.head(`${p}/broken`)).toBeUndefined();
      expect(await keysOf(store, `${p}/`)).toEqual([]);
    });

    it('stops a put when its signal aborts, and stores nothing', async () => {
      const p = fresh();
      const controller = new AbortController();
      async function* slow() {
        yield Buffer.alloc(1024, 1);
        controller.abort();
        await new Promise((resolve) => setTimeout(resolve, 50));
        yield Buffer.alloc(1024, 2);
      }
      await expect(
        store.put(`${p}/aborted`, Readable.from(slow()), { signal: controller.signal }),
      ).rejects.toThrow();
      expect(await store.head(`${p}/aborted`)).toBeUndefined();
    });

    it('streams a large object in and out (multipart on S3) without changing a byte', async () => {
      const p = fresh();
      const size = 21 * 1024 * 1024 + 123;
      const body = generated(size, 7);
      await store.put(`${p}/large.bin`, body.stream, { size });
      expect((await store.head(`${p}/large.bin`))?.size).toBe(size);
      const hash = createHash('sha256');
      let read = 0;
      for await (const chunk of (await store.get(`${p}/large.bin`))!) {
        hash.update(chunk as Buffer);
        read += (chunk as Buffer).length;
      }
      expect(read).toBe(size);
      expect(hash.digest('hex')).toBe(await body.sha256);
    }, 120_000);

    it('handles concurrent puts of different keys', async () => {
      const p = fresh();
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.put(`${p}/c/${i}`, `value ${i}`)));
      const keys = await keysOf(store, `${p}/c/`);
      expect(keys.length).toBe(20);
      for (let i = 0; i < 20; i++)
        expect((await readAll(await store.get(`${p}/c/${i}`)))?.toString()).toBe(`value ${i}`);
    });
  });
}
