import { expect } from 'vitest';

/**
 * Asks `/healthz` one request after another until stopped; the longest round trip is how long
 * the server's event loop was held, give or take one request. Attack tests assert a generous
 * bound on it: the attacks they reproduce held the loop for seconds to minutes.
 */
export function probeHealth(url: string): { stop: () => Promise<number> } {
  let running = true;
  let longest = 0;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      const answer = await fetch(`${url}/healthz`);
      await answer.arrayBuffer();
      expect(answer.status).toBe(200);
      longest = Math.max(longest, performance.now() - started);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return longest;
    },
  };
}
