import { configDefaults, defineConfig } from 'vitest/config';
import LongestFirst from './vitest.sequencer.js';

/** The unit files that need a process of their own (see `projects` below). */
const ISOLATED = [
  'src/executors/**/*.test.ts',
  // Process-wide state: whether memory was given back, gc.
  'src/server/idle-memory.test.ts',
  // vi.mock / vi.spyOn / the environment / process.on.
  'src/server/logs/fs-log-store.test.ts',
  'src/server/sources/git-spawner.test.ts',
  'src/cli/remote/remote-verbs.test.ts',
  'src/cli/remote/approve.test.ts',
  'src/cli/remote/commands.test.ts',
  'src/blobs/blob-store.test.ts',
  'src/server/secrets/cipher.test.ts',
  'src/server/data-dir.test.ts',
];

export default defineConfig({
  test: {
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
    // Most unit files import the whole server (Fastify, Kysely, the AWS SDK...), and a fresh
    // process per file evaluates it all again: src/ without the executors spent 470 s importing
    // beside 1061 s of tests (a run of 591 s); sharing a process per worker, 92 s (369 s). So
    // those files share their worker's process (modules are evaluated once per worker; Vitest
    // still restores mocks after each file). A new unit file joins them unless it is listed in
    // ISOLATED: e2e, the executors' files (engines, pods) and those that mock, spy, set the
    // environment or read process-wide state keep a process of their own.
    projects: [
      {
        extends: true,
        test: {
          name: 'shared',
          include: ['src/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ISOLATED],
          isolate: false,
        },
      },
      { extends: true, test: { name: 'isolated', include: ['e2e/**/*.test.ts', ...ISOLATED] } },
    ],
  },
});
