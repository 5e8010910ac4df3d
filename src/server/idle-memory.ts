/**
 * Gives memory back once the server goes quiet.
 *
 * V8 keeps the young generation it grew to during start-up or a burst of builds (two
 * semi-spaces of up to 16 MB: ~25 MB resident) until a collection meant to reduce memory
 * shrinks it, and a server that sits idle makes none: measured, an idle server kept 107 MB
 * for as long as watched (40 s and more) where two full collections leave 88 MB. Browsers
 * collect in idle time; Node does not. So the server measures its event loop over short
 * windows and, after a quiet window, runs a full collection if its heap grew since the last
 * one: a few times at most per quiet spell, when nobody waits on the event loop.
 *
 * One collection after a burst is not enough: it frees the burst's objects, but the old
 * generation's pages they leave empty or sparse are given back only by the collections after it
 * (measured after 500 builds: 41 MB of old space holding 23 MB, 27 MB after one more). So a
 * collection that gave memory back is followed by another in the next quiet window. And a cache
 * that drops what it held once the burst is over ({@link memoryReleased}) has the next quiet window
 * collect it, even when this quiet spell's collections are spent: the dropped objects still count
 * as used until a collection, so the heap's figures cannot tell.
 *
 * Not a smaller young generation instead: `--max-semi-space-size` cannot be set from inside a
 * running process, and keeping it at its start size (`--semi-space-growth-factor=1`, which
 * can) made the server's collections 6-10× more costly per build.
 */
import { performance } from 'node:perf_hooks';
import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export interface IdleCollectorOptions {
  /** Length of the windows the event loop's use is measured over. Default 5 s. */
  windowMs?: number;
  /** A window whose event-loop utilisation (0-1) is below this is quiet. Default 0.05. */
  quietBelow?: number;
  /** Growth of the heap's resident size (bytes) since the last collection that warrants one. Default 4 MiB. */
  growthBytes?: number;
  /** The collection; default V8's full garbage collection. */
  collect?: () => void;
  /** The heap's resident size in bytes; default V8's. */
  heapBytes?: () => number;
  /** The young generation's size in bytes; default V8's `new_space`. */
  youngBytes?: () => number;
}

/**
 * Collections at most per quiet spell. After 500 builds the third still gave back 3 MB; one
 * that gives back less than {@link GAVE_BACK_BYTES} ends the spell's collections anyway.
 */
const MAX_PER_SPELL = 5;

/** A young generation above this size (it starts at 1 MB) is still the one a busy time grew. */
const YOUNG_GROWN_BYTES = 4 * 1024 * 1024;

/** A collection that gave back at least this much (bytes of the heap's size) may leave more to the next. */
const GAVE_BACK_BYTES = 1024 * 1024;

/** Something dropped a good part of what it held since the last look (see {@link memoryReleased}). */
let released = false;

/**
 * Tells the idle collector that a cache dropped what a burst had it hold (e.g. parsed log
 * chunks nobody reads any more): the next quiet window collects, whatever the heap's figures say.
 */
export function memoryReleased(): void {
  released = true;
}

/**
 * Starts collecting when idle (see the module comment); returns what stops it. Without a way
 * to collect (`fullGc()` gives none) it does nothing.
 */
export function collectWhenIdle(options: IdleCollectorOptions = {}): () => void {
  const collect = options.collect ?? fullGc();
  if (collect === undefined) return () => undefined;
  const quietBelow = options.quietBelow ?? 0.05;
  const growthBytes = options.growthBytes ?? 4 * 1024 * 1024;
  const heapBytes = options.heapBytes ?? (() => getHeapStatistics().total_physical_size);
  const youngBytes = options.youngBytes ?? newSpaceBytes;
  // The first quiet window collects what start-up left.
  let afterLast = 0;
  let gaveBack = false;
  let spell = 0;
  let last = performance.eventLoopUtilization();
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, last);
    last = now;
    if (utilization >= quietBelow) {
      spell = 0;
      return;
    }
    // V8 shrinks its young generation in a full collection only when it has seen allocation
    // slow down over a few seconds, so the first collection after a busy time often leaves it:
    // the next quiet windows try again, a few times at most.
    const before = heapBytes();
    const grew = gaveBack || before >= afterLast + growthBytes || youngBytes() > YOUNG_GROWN_BYTES;
    if (released) released = false;
    else if (spell >= MAX_PER_SPELL || !grew) return;
    else spell++;
    collect();
    afterLast = heapBytes();
    gaveBack = before - afterLast >= GAVE_BACK_BYTES;
  }, options.windowMs ?? 5000);
  // Never what keeps the process alive.
  timer.unref();
  return () => clearInterval(timer);
}

function newSpaceBytes(): number {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * V8's full collection (which also shrinks the young generation), or undefined where it cannot
 * be had. Node exposes it only with `--expose-gc` on its command line, which `slipway server`
 * does not control (a shebang, npm's shims); the flag set at run time installs `gc` in contexts
 * made after it, so one new context hands it over, and the flag is cleared again.
 */
export function fullGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return exposed as () => void;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('typeof gc === "function" ? gc : undefined');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
