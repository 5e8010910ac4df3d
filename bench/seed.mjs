// Issue 9 benchmark: what seeding the workspace costs. `slipway run --executor local` of one
// `true` step in a git checkout holding a large ignored node_modules, against the same run in an
// empty checkout and against a plain `sh -c true`, measured in the same run.
//
// BENCH_SEED_FILES (default 20000) files of BENCH_SEED_KB (default 15) KiB: about 300 MB.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLIPWAY, fmt, median, repeat, table, timeCommand } from './lib.mjs';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FILES = Number(process.env.BENCH_SEED_FILES ?? 20_000);
const KB = Number(process.env.BENCH_SEED_KB ?? 15);
const PER_PACKAGE = 100;

export async function benchSeed() {
  const root = await mkdtemp(join(tmpdir(), 'slipway-bench-seed-'));
  try {
    const empty = join(root, 'empty');
    const big = join(root, 'big');
    await checkout(empty);
    await checkout(big);
    const started = Date.now();
    await writeNodeModules(join(big, 'node_modules'));
    const generatedMs = Date.now() - started;
    console.log(
      `generated node_modules: ${FILES.toLocaleString('en')} files, ${Math.round((FILES * KB) / 1024)} MiB in ${fmt(generatedMs)}`,
    );

    const slipway = (cwd) => () =>
      timeCommand(
        'node',
        [
          SLIPWAY,
          'run',
          '--executor',
          'local',
          '--branch',
          'main',
          '--commit',
          'abc',
          '--project',
          'bench/seed',
          '--no-color',
        ],
        { cwd },
      );
    const results = {};
    for (const [name, fn] of Object.entries({
      shell: () => timeCommand('sh', ['-c', 'true']),
      emptyCheckout: slipway(empty),
      bigCheckout: slipway(big),
    })) {
      await fn(); // warm-up (also the page cache for the big tree)
      results[name] = median(await repeat(RUNS, fn));
    }
    const summary = {
      runs: RUNS,
      files: FILES,
      fileKiB: KB,
      generatedMs,
      medianMs: results,
      ratios: {
        big_vs_empty: results.bigCheckout / results.emptyCheckout,
        big_vs_shell: results.bigCheckout / results.shell,
        empty_vs_shell: results.emptyCheckout / results.shell,
      },
    };
    console.log(
      table([
        ['case', 'median', 'ratio to empty', 'ratio to sh'],
        ['plain sh -c true', fmt(results.shell), '', '1.00'],
        [
          'slipway run, empty checkout',
          fmt(results.emptyCheckout),
          '1.00',
          summary.ratios.empty_vs_shell.toFixed(1),
        ],
        [
          `slipway run, ignored node_modules (${FILES} files)`,
          fmt(results.bigCheckout),
          summary.ratios.big_vs_empty.toFixed(2),
          summary.ratios.big_vs_shell.toFixed(1),
        ],
      ]),
    );
    return summary;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** A git checkout with a one-step pipeline, a tracked source file and node_modules ignored. */
async function checkout(dir) {
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, '.slipway.yml'), 'steps:\n  - name: one\n    commands: ["true"]\n');
  await writeFile(join(dir, '.gitignore'), 'node_modules/\n');
  await writeFile(join(dir, 'package.json'), '{"name":"bench","private":true}\n');
  await writeFile(join(dir, 'src', 'index.js'), 'console.log("hello");\n');
  const git = (...args) =>
    execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@example.com', ...args], {
      cwd: dir,
      stdio: 'ignore',
    });
  git('init', '--quiet', '--initial-branch=main');
  git('add', '.');
  git('commit', '--quiet', '-m', 'init');
}

async function writeNodeModules(dir) {
  const content = randomBytes(KB * 1024);
  const packages = Math.ceil(FILES / PER_PACKAGE);
  for (let p = 0; p < packages; p++) await mkdir(join(dir, `pkg-${p}`, 'lib'), { recursive: true });
  let next = 0;
  const worker = async () => {
    while (next < FILES) {
      const i = next++;
      await writeFile(join(dir, `pkg-${Math.floor(i / PER_PACKAGE)}`, 'lib', `file-${i}.js`), content);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}
