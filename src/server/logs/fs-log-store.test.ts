/**
 * FsLogStore's cache of parsed chunks lets go of them once nobody reads them (the contract
 * every store keeps is in log-store.case.ts, run by log-store.test.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FsLogStore } from './fs-log-store.js';
import type { StoredLogLine } from './types.js';

function lines(count: number): StoredLogLine[] {
  return Array.from({ length: count }, (_, i) => ({
    seq: i + 1,
    stage: 'test',
    step: 'unit',
    stream: 'stdout',
    n: i + 1,
    time: 1_700_000_000_000 + i,
    text: `line ${i + 1}`,
  }));
}

describe('FsLogStore parsed-chunk cache', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-fs-logs-'));
    // Only the clock and timers are faked: the files are real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(async () => {
    vi.useRealTimers();
    await rm(dir, { recursive: true, force: true });
  });

  it('drops a chunk nobody read for 10 s, each when it is due, and still reads it afterwards', async () => {
    const store = new FsLogStore(dir);
    await store.append(1, lines(5));
    await store.append(2, lines(5));
    store.close(1);
    store.close(2);
    const a = await store.read(1, 0);
    vi.advanceTimersByTime(6_000);
    await store.read(2, 0);
    expect(store.cachedChunks).toBe(2);

    // Build 1's chunk is due at 10 s, build 2's at 16 s.
    vi.advanceTimersByTime(4_000);
    expect(store.cachedChunks).toBe(1);
    vi.advanceTimersByTime(6_000);
    expect(store.cachedChunks).toBe(0);

    expect(await store.read(1, 0)).toEqual(a);
    expect(store.cachedChunks).toBe(1);
  });
});
