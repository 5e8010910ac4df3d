import { defineConfig } from 'vitest/config';
import LongestFirst from './vitest.sequencer.js';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'e2e/**/*.test.ts'],
    // Real engines, servers and browsers on a shared 2-core CI machine: a bound for hangs, not a speed test.
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Three files at a time: most tests wait on an engine, a server, a browser or the stand-in
    // Kubernetes API's Podman, not on a CPU, and every test is written for a loaded machine.
    // (Vitest's default on 2 CPUs is one at a time; two took 765 s, three 653 s; four gained
    // nothing, 648 s, and only loaded the machine more.)
    maxWorkers: 3,
    sequence: { sequencer: LongestFirst },
  },
});
