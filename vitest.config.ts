import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'e2e/**/*.test.ts'],
    // Real engines, servers and browsers on a shared 2-core CI machine: a bound for hangs, not a speed test.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
