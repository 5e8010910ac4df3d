/**
 * The LogStore conformance suite (contract in `types.ts`), run against every implementation:
 *
 *   logStoreConformance('fs', async () => ({ store: new FsLogStore(dir), reopen: () => new FsLogStore(dir) }));
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogStore, StoredLogLine } from './types.js';

export interface LogStoreTarget {
  store: LogStore;
  /** A second instance on the same storage: a restarted server. */
  reopen: () => LogStore;
  cleanup?: () => Promise<void>;
}

function lines(from: number, count: number, step = 'unit'): StoredLogLine[] {
  return Array.from({ length: count }, (_, i) => ({
    seq: from + i,
    stage: 'test',
    step,
    stream: i % 3 === 0 ? 'stderr' : 'stdout',
    n: from + i,
    time: 1_700_000_000_000 + from + i,
    text: `line ${from + i} ✓ "quoted" \\ tab\t`,
  }));
}

export function logStoreConformance(name: string, make: () => Promise<LogStoreTarget>): void {
  describe(`log store conformance: ${name}`, () => {
    let target: LogStoreTarget;
    let store: LogStore;
    let nextBuild = 1000;
    const build = () => ++nextBuild;

    beforeAll(async () => {
      target = await make();
      store = target.store;
    });
    afterAll(async () => {
      await target?.cleanup?.();
    });

    it('has nothing for a build without lines', async () => {
      const id = build();
      expect(await store.lastSeq(id)).toBe(0);
      expect(await store.read(id, 0)).toEqual([]);
    });

    it('returns appended batches in order, after a seq and up to a limit', async () => {
      const id = build();
      await store.append(id, lines(1, 3));
      await store.append(id, []);
      await store.append(id, lines(4, 1));
      await store.append(id, lines(5, 5, 'lint'));
      expect(await store.read(id, 0)).toEqual(lines(1, 4).concat(lines(5, 5, 'lint')));
      expect((await store.read(id, 2)).map((l) => l.seq)).toEqual([3, 4, 5, 6, 7, 8, 9]);
      expect((await store.read(id, 2, 3)).map((l) => l.seq)).toEqual([3, 4, 5]);
      expect(await store.read(id, 9)).toEqual([]);
      expect(await store.lastSeq(id)).toBe(9);
    });

    it('keeps text exactly: unicode, quotes, backslashes, empty lines, a 64 KiB line', async () => {
      const id = build();
      const long = 'x'.repeat(64 * 1024);
      const odd: StoredLogLine[] = ['', ' ', 'ünïcødé 文字 🚀', '{"json":"inside"}', long, '\u0000nul'].map(
        (text, i) => ({
          seq: i + 1,
          stage: '',
          step: 'slipway',
          stream: 'system',
          n: i + 1,
          time: 1,
          text,
        }),
      );
      await store.append(id, odd);
      expect(await store.read(id, 0)).toEqual(odd);
    });

    it('keeps builds apart, including ids that are prefixes of others', async () => {
      const a = build() * 10;
      const b = a * 10 + 1; // "…0" and "…01": a's id is a prefix of b's
      await store.append(a, lines(1, 2));
      await store.append(b, lines(1, 5));
      expect((await store.read(a, 0)).length).toBe(2);
      expect(await store.lastSeq(a)).toBe(2);
      await store.remove(a);
      expect(await store.read(a, 0)).toEqual([]);
      expect(await store.lastSeq(a)).toBe(0);
      expect((await store.read(b, 0)).length).toBe(5);
      await store.remove(a); // removing twice is fine
    });

    it('lets a restarted server continue where the last one stopped', async () => {
      const id = build();
      await store.append(id, lines(1, 10));
      const again = target.reopen();
      expect(await again.lastSeq(id)).toBe(10);
      await again.append(id, lines(11, 5));
      expect((await again.read(id, 8)).map((l) => l.seq)).toEqual([9, 10, 11, 12, 13, 14, 15]);
      expect((await store.read(id, 0)).length).toBe(15);
    });

    it('keeps where each output line came from (attempt, pieces) across a restart', async () => {
      const id = build();
      const withSrc = lines(1, 3).map((l, i) => ({ ...l, src: { attempt: 2, pieces: i + 1 } }));
      const system: StoredLogLine = { ...lines(4, 1)[0]!, stream: 'system' };
      await store.append(id, [...withSrc, system]);
      const read = await target.reopen().read(id, 0);
      expect(read).toEqual([...withSrc, system]);
      expect(read[3]).not.toHaveProperty('src');
    });

    it('reads a long log across many batches, from anywhere in it', async () => {
      const id = build();
      let seq = 1;
      for (let batch = 0; batch < 12; batch++) {
        await store.append(id, lines(seq, 2000));
        seq += 2000;
      }
      expect(await store.lastSeq(id)).toBe(24_000);
      const middle = await store.read(id, 11_999, 3);
      expect(middle.map((l) => l.seq)).toEqual([12_000, 12_001, 12_002]);
      const tail = await store.read(id, 23_990);
      expect(tail.length).toBe(10);
      expect((await store.read(id, 0)).length).toBe(24_000);
    }, 60_000);
  });
}
