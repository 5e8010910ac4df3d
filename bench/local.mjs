// Issue 2 benchmark: orchestration overhead of `slipway run --executor local` against the
// same shell commands run directly by a plain shell script, measured in the same run.
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLIPWAY, timeCommand, repeat, median, fmt, table } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const LINES = 200_000;

export async function benchLocal() {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-bench-local-'));
  try {
    const stages = Array.from(
      { length: 10 },
      (_, s) =>
        `  - name: s${s}\n    steps:\n` +
        Array.from({ length: 10 }, (_, t) => `      - name: t${t}\n        commands: ["true"]\n`).join(''),
    ).join('');
    await writeFile(join(dir, 'a.yml'), 'steps:\n  - name: one\n    commands: ["true"]\n');
    await writeFile(join(dir, 'b.yml'), `stages:\n${stages}`);
    await writeFile(join(dir, 'c.yml'), `steps:\n  - name: lines\n    commands: ["seq 1 ${LINES}"]\n`);
    // The baselines: the same commands, each step one `sh -e -c`, a stage's steps in parallel.
    await writeFile(join(dir, 'a.sh'), 'sh -e -c true\n');
    await writeFile(
      join(dir, 'b.sh'),
      Array.from(
        { length: 10 },
        () => Array.from({ length: 10 }, () => 'sh -e -c true &').join('\n') + '\nwait\n',
      ).join(''),
    );
    await writeFile(join(dir, 'c.sh'), `sh -e -c "seq 1 ${LINES}"\n`);

    const slipway =
      (file, extra = []) =>
      () =>
        timeCommand(
          'node',
          [
            SLIPWAY,
            'run',
            '--executor',
            'local',
            '-f',
            file,
            '--branch',
            'main',
            '--commit',
            'abc',
            '--project',
            'bench/local',
            '--no-color',
            ...extra,
          ],
          { cwd: dir },
        );
    const shell = (file) => () => timeCommand('sh', [file], { cwd: dir });
    const nodeStart = () => timeCommand('node', ['-e', '0']);

    const results = {};
    for (const [name, fn] of Object.entries({
      nodeStartup: nodeStart,
      aSlipway: slipway('a.yml'),
      aShell: shell('a.sh'),
      bSlipway: slipway('b.yml'),
      bShell: shell('b.sh'),
      // The shell runs a stage's 10 steps at once; slipway runs as many as there are CPUs
      // unless told: this row compares the same parallelism.
      bSlipwayPar10: slipway('b.yml', ['--parallelism', '10']),
      cSlipway: slipway('c.yml'),
      cShell: shell('c.sh'),
    })) {
      await fn(); // warm-up
      results[name] = median(await repeat(RUNS, fn));
    }
    // Fixed costs (node start, compile, workspace) cancel out between (a) and (b): what is
    // left is the cost of 99 more steps.
    const perStepSlipway = (results.bSlipway - results.aSlipway) / 99;
    const perStepShell = (results.bShell - results.aShell) / 99;
    const perStepSlipwayPar10 = (results.bSlipwayPar10 - results.aSlipway) / 99;
    const linesPerSecond = LINES / ((results.cSlipway - results.aSlipway + results.aShell) / 1000);
    const summary = {
      runs: RUNS,
      medianMs: results,
      ratios: {
        a_1x1: results.aSlipway / results.aShell,
        b_10x10: results.bSlipway / results.bShell,
        c_200k_lines: results.cSlipway / results.cShell,
      },
      perStepMs: {
        slipway: perStepSlipway,
        shell: perStepShell,
        overhead: perStepSlipway - perStepShell,
        slipwayParallelism10: perStepSlipwayPar10,
        overheadParallelism10: perStepSlipwayPar10 - perStepShell,
      },
      linesPerSecond,
    };
    console.log(
      table([
        ['case', 'slipway run', 'plain sh', 'ratio'],
        ['(a) 1 stage x 1 step', fmt(results.aSlipway), fmt(results.aShell), summary.ratios.a_1x1.toFixed(2)],
        [
          '(b) 10 stages x 10 steps',
          fmt(results.bSlipway),
          fmt(results.bShell),
          summary.ratios.b_10x10.toFixed(2),
        ],
        [
          '(b) with --parallelism 10',
          fmt(results.bSlipwayPar10),
          fmt(results.bShell),
          (results.bSlipwayPar10 / results.bShell).toFixed(2),
        ],
        [
          '(c) 1 step, 200k lines',
          fmt(results.cSlipway),
          fmt(results.cShell),
          summary.ratios.c_200k_lines.toFixed(2),
        ],
      ]),
    );
    console.log(`node start-up alone: ${fmt(results.nodeStartup)} (inside every slipway run)`);
    console.log(
      `per step: slipway ${fmt(perStepSlipway)}, plain sh ${fmt(perStepShell)}, orchestration overhead ${fmt(summary.perStepMs.overhead)} per step`,
    );
    console.log(
      `per step at the shell's parallelism (10): slipway ${fmt(perStepSlipwayPar10)}, overhead ${fmt(summary.perStepMs.overheadParallelism10)} per step`,
    );
    console.log(
      `log throughput (200k lines to stdout, fixed start-up excluded): ${Math.round(linesPerSecond).toLocaleString('en')} lines/s`,
    );
    return summary;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
