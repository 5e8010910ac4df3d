/** Waits `ms`, or less if `signal` aborts (never rejects). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** The next wait of an exponential back-off from 50 ms, capped at `maxMs`. */
export function backoff(previousMs: number, maxMs: number): number {
  return Math.min(maxMs, previousMs === 0 ? 50 : previousMs * 2);
}
