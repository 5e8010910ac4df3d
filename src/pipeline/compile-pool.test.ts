/**
 * The worker pool the server compiles with, run on the built worker script (`npx tsc -p
 * tsconfig.build.json` first, as `npm test` does): results equal the in-process compiler's, a
 * slow file holds a worker and not this thread, and a compile over its time bound is stopped
 * with a clear error while the pool goes on working.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CompilePool } from './compile-pool.js';
import { compilePipeline, type CompileInput } from './compile.js';
import { TEST_CONTEXT } from './testing/context.js';

const workerUrl = new URL('../../dist/pipeline/compile-worker.js', import.meta.url);

/** 100,001 values: several seconds of parsing, a stand-in for any file that is slow to compile. */
const SLOW = `steps:\n  - name: a\n    commands: [${Array(100_001).fill('x').join(',')}]\n`;

/** Just under 1 MiB of values: many seconds of parsing, far over a bound of one second. */
const SLOWER = `steps:\n  - name: a\n    commands: [${Array(500_000).fill('x').join(',')}]\n`;

const input = (file: string, source: string): CompileInput => ({ file, source, context: TEST_CONTEXT });

describe('CompilePool', () => {
  let pool: CompilePool | undefined;
  beforeAll(() => {
    expect(existsSync(fileURLToPath(workerUrl)), 'build first: npx tsc -p tsconfig.build.json').toBe(true);
  });
  afterEach(async () => {
    await pool?.close();
  });

  it('gives the in-process result, plans and errors alike', async () => {
    pool = new CompilePool({ workerUrl });
    const fixture = (name: string) =>
      readFileSync(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)), 'utf8');
    for (const name of [
      'valid/pipeline-md-example.yml',
      'invalid/expansion-too-long.yml',
      'invalid/too-deep.yml',
    ]) {
      const i = input(name, fixture(name));
      expect(await pool.compile(i)).toEqual(compilePipeline(i));
    }
  });

  it('a slow file holds a worker, not the event loop', async () => {
    pool = new CompilePool({ workerUrl, timeoutMs: 120_000 });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const [slow, quick] = await Promise.all([
      pool.compile(input('slow.yml', SLOW)),
      pool.compile(input('quick.yml', 'steps: [{ name: a, commands: [x] }]')),
    ]);
    delay.disable();
    expect(slow.ok ? [] : slow.errors.map((e) => e.message)).toEqual([
      'too many values at steps[0].commands[99994]: the file has more than 100000 values',
    ]);
    expect(quick.ok).toBe(true);
    // In this thread the same compile holds the loop for seconds. Generous for load 8.
    expect(delay.max / 1e6, 'longest event-loop delay in ms').toBeLessThan(1_000);
  }, 180_000);

  it('stops a compile over its time bound, says so, and keeps compiling', async () => {
    pool = new CompilePool({ workerUrl, size: 1, timeoutMs: 1_000 });
    const result = await pool.compile(input('slow.yml', SLOWER));
    expect(result).toEqual({
      ok: false,
      errors: [
        {
          code: 'limit_exceeded',
          file: 'slow.yml',
          line: 1,
          col: 1,
          path: '',
          message:
            'compiling the file took longer than 1 s and was stopped; the server bounds it so that one file cannot hold its compiler',
        },
      ],
    });
    // The terminated worker is replaced: the pool of one still compiles (its start-up is not
    // part of the bound).
    const next = await pool.compile(input('ok.yml', 'steps: [{ name: a, commands: [x] }]'));
    expect(next.ok).toBe(true);
  }, 180_000);

  it('ends a worker left idle for its idle time, and starts another for the next compile', async () => {
    pool = new CompilePool({ workerUrl, idleMs: 50 });
    const ok = input('ok.yml', 'steps: [{ name: a, commands: [x] }]');
    expect((await pool.compile(ok)).ok).toBe(true);
    // An idle server holds no worker (each is a V8 heap of its own).
    await vi.waitFor(() => expect(pool?.workers).toBe(0), { timeout: 60_000, interval: 20 });
    expect((await pool.compile(ok)).ok).toBe(true);
  }, 120_000);
});
