/**
 * The idle-time collection of `slipway server`: V8's full collection is reachable without
 * `--expose-gc`, and the collector runs it after quiet windows only, a bounded number of times
 * per quiet spell, again after the event loop was busy.
 */
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { collectWhenIdle, fullGc, memoryReleased } from './idle-memory.js';

describe('fullGc', () => {
  it('collects what nothing references, and leaves no `gc` to later contexts', async () => {
    const gc = fullGc();
    expect(typeof gc).toBe('function');
    let target: object | undefined = { big: new Array(1000).fill('x') };
    const ref = new WeakRef(target);
    target = undefined;
    // A WeakRef's target is kept until the current job ends.
    await new Promise((resolve) => setImmediate(resolve));
    gc!();
    expect(ref.deref()).toBeUndefined();
    if (typeof (globalThis as { gc?: unknown }).gc !== 'function')
      expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});

describe('collectWhenIdle', () => {
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());

  /** Resolves once the collector has looked at the heap `n` more times (one look per quiet window). */
  function looks(bytes = () => 100 * 1024 * 1024): {
    heapBytes: () => number;
    after: (n: number) => Promise<void>;
  } {
    let count = 0;
    const waiting: { at: number; resolve: () => void }[] = [];
    return {
      heapBytes: () => {
        count++;
        for (const w of waiting.filter((x) => x.at <= count)) {
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve();
        }
        return bytes();
      },
      after: (n) => new Promise((resolve) => waiting.push({ at: count + n, resolve })),
    };
  }

  it('collects once after start-up when the heap then stays as it is', async () => {
    const heap = looks();
    let collected = 0;
    stop = collectWhenIdle({
      windowMs: 10,
      collect: () => collected++,
      heapBytes: heap.heapBytes,
      youngBytes: () => 1024 * 1024,
    });
    await heap.after(8);
    expect(collected).toBe(1);
  });

  it('tries a few times while the young generation stays grown, and again after a busy window', async () => {
    const heap = looks();
    let collected = 0;
    stop = collectWhenIdle({
      windowMs: 25,
      // Quiet unless held: this test's own runner may use part of a short window.
      quietBelow: 0.5,
      collect: () => collected++,
      heapBytes: heap.heapBytes,
      youngBytes: () => 32 * 1024 * 1024,
    });
    await heap.after(12);
    expect(collected).toBe(5);
    // The event loop held for several whole windows: a busy window, then a new quiet spell.
    const until = Date.now() + 200;
    while (Date.now() < until);
    await heap.after(2);
    expect(collected).toBeGreaterThan(5);
  });

  it('collects again after a collection that gave memory back, until one gives none', async () => {
    // The first collection gives back 8 MB, the next nothing.
    let heap = 100 * 1024 * 1024;
    let collected = 0;
    const looked = looks(() => heap);
    stop = collectWhenIdle({
      windowMs: 10,
      collect: () => {
        if (++collected === 1) heap -= 8 * 1024 * 1024;
      },
      heapBytes: looked.heapBytes,
      youngBytes: () => 1024 * 1024,
    });
    await looked.after(10);
    expect(collected).toBe(2);
  });

  it('collects in the next quiet window once a cache says it dropped what it held', async () => {
    const heap = looks();
    let collected = 0;
    stop = collectWhenIdle({
      windowMs: 10,
      collect: () => collected++,
      heapBytes: heap.heapBytes,
      youngBytes: () => 1024 * 1024,
    });
    await heap.after(6);
    expect(collected).toBe(1);
    memoryReleased();
    await heap.after(6);
    expect(collected).toBe(2);
  });
});
