// Issue 3 benchmark: per-step overhead of the docker executor against raw `podman run --rm`
// of the same image and command, measured in the same run on the same engine.
//
//   npm run build && node bench/docker-overhead.mjs        (or benchDocker() from bench/run.mjs)
//
// Measured in-process through the executor (prepare → start/tail/wait/release → destroy), so Node's start-up
// is not counted; `podman run` pays its own CLI start-up, as a user's script would.
// Cases: (a) one build with 1 step vs 1 `podman run`; (b) one build with 20 steps in parallel
// vs 20 `podman run` in parallel. Ratios only: timings on shared machines are noisy.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, timeCommand, median, fmt, table } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PARALLEL = 20;
const IMAGE = process.env.SLIPWAY_TEST_IMAGE ?? 'localhost/busybox:latest';
const COMMAND = 'echo hello';

export async function benchDocker() {
  const entry = join(ROOT, 'dist', 'executors', 'docker', 'index.js');
  if (!existsSync(entry)) throw new Error('run `npm run build` first (bench imports dist/)');
  const { createDockerExecutor } = await import(pathToFileURL(entry).href);
  const { runStep } = await import(pathToFileURL(join(ROOT, 'dist', 'executors', 'lifecycle.js')).href);
  const ex = await createDockerExecutor({ pull: 'never' });
  const socket = ex.engine.address;
  let seq = 0;
  const sink = { line() {} };
  const never = () => new AbortController().signal;

  const spec = () => ({
    buildId: `bench-docker-${process.pid}-${++seq}`,
    project: 'bench/docker',
    branch: 'main',
    image: IMAGE,
    services: [],
  });
  const step = (i) => ({
    key: `bench/s${i}`,
    stage: 'bench',
    step: `s${i}`,
    commands: [COMMAND],
    env: {},
    secrets: {},
    attempt: 1,
  });
  const timed = async (fn) => {
    const started = process.hrtime.bigint();
    await fn();
    return { ms: Number(process.hrtime.bigint() - started) / 1e6 };
  };
  const mustExit0 = (exit) => {
    if (exit.kind !== 'exited' || exit.exitCode !== 0) throw new Error(`step ended ${JSON.stringify(exit)}`);
  };

  const slipwayBuild = (steps) =>
    timed(async () => {
      const h = await ex.prepare(spec());
      try {
        const exits = await Promise.all(
          Array.from({ length: steps }, (_, i) => runStep(ex, h, step(i), sink, never())),
        );
        exits.forEach(mustExit0);
      } finally {
        await ex.destroy(h);
      }
    });
  // Step only: the build's volume already exists, as for every step after a build's first.
  const slipwayStepOnly = () =>
    (async () => {
      const h = await ex.prepare(spec());
      try {
        return await timed(async () => mustExit0(await runStep(ex, h, step(0), sink, never())));
      } finally {
        await ex.destroy(h);
      }
    })();
  const podman = (n) =>
    timed(() =>
      Promise.all(
        Array.from({ length: n }, () =>
          timeCommand('podman', ['--url', socket, 'run', '--rm', IMAGE, 'sh', '-c', COMMAND]),
        ),
      ),
    );
  // Plain `podman run` (local engine, not through the API socket): the usual baseline.
  const podmanLocal = (n) =>
    timed(() =>
      Promise.all(
        Array.from({ length: n }, () => timeCommand('podman', ['run', '--rm', IMAGE, 'sh', '-c', COMMAND])),
      ),
    );

  const cases = {
    a_slipwayBuild: () => slipwayBuild(1),
    a_slipwayStep: slipwayStepOnly,
    a_podmanRun: () => podmanLocal(1),
    a_podmanRemoteRun: () => podman(1),
    b_slipwayBuild: () => slipwayBuild(PARALLEL),
    b_podmanRun: () => podmanLocal(PARALLEL),
  };
  const results = {};
  for (const [name, fn] of Object.entries(cases)) {
    await fn(); // warm-up
    const samples = [];
    for (let i = 0; i < RUNS; i++) samples.push((await fn()).ms);
    results[name] = median(samples);
  }
  const summary = {
    engine: `${ex.engine.product} ${ex.engine.version} at ${socket}`,
    runs: RUNS,
    medianMs: results,
    ratios: {
      a_build_vs_podmanRun: results.a_slipwayBuild / results.a_podmanRun,
      a_step_vs_podmanRun: results.a_slipwayStep / results.a_podmanRun,
      b_parallel_vs_podmanRun: results.b_slipwayBuild / results.b_podmanRun,
      /** Below 1 means parallel steps overlap: 20 parallel steps vs 20 × one build. */
      b_overlap: results.b_slipwayBuild / (PARALLEL * results.a_slipwayBuild),
    },
  };
  console.log(summary.engine);
  console.log(
    table([
      ['case', 'slipway (executor)', 'podman run --rm', 'ratio'],
      [
        '(a) 1 step, whole build',
        fmt(results.a_slipwayBuild),
        fmt(results.a_podmanRun),
        summary.ratios.a_build_vs_podmanRun.toFixed(2),
      ],
      [
        '(a) 1 step, step only',
        fmt(results.a_slipwayStep),
        fmt(results.a_podmanRun),
        summary.ratios.a_step_vs_podmanRun.toFixed(2),
      ],
      [
        `(b) ${PARALLEL} parallel steps`,
        fmt(results.b_slipwayBuild),
        fmt(results.b_podmanRun),
        summary.ratios.b_parallel_vs_podmanRun.toFixed(2),
      ],
    ]),
  );
  console.log(`podman --url <socket> run --rm (through the API service): ${fmt(results.a_podmanRemoteRun)}`);
  console.log(
    `overlap: ${PARALLEL} parallel steps took ${summary.ratios.b_overlap.toFixed(2)} × (${PARALLEL} × one single-step build)`,
  );
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  await benchDocker();
}
