import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'e2e/**/*.test.ts'],
    // Real engines, servers and browsers on a shared 2-core CI machine: a bound for hangs, not a speed test.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two files at a time: most tests wait on an engine, a server or a browser, not on a CPU, and
    // every test is written for a loaded machine. (Vitest's default on 2 CPUs is one at a time.)
    maxWorkers: 2,
  },
});
