// Issue 14 benchmark: start-up and memory, each figure against a baseline of the same run.
//
//   npm run build && npm run bench -- startup
//
// (a) `slipway validate` of a small file and `slipway --help` against `node -e 0`: runs
//     alternate (A B A B ...) and the ratio is the median of the pairs' ratios;
// (b) a `slipway server`'s resident memory (VmRSS): idle, after 500 one-step builds and after
//     the 200-reader fan-out of bench/server.mjs (run against this one server), each against idle;
//     each read once the server has been left alone for BENCH_STARTUP_SETTLE_MS (20 s), as a real
//     server is between bursts: long enough for its idle-time collection (src/server/idle-memory.ts:
//     5 s windows) and for idle compile workers to end (15 s). BENCH_STARTUP_MEMORY=idle or
//     =builds stops after that moment.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SLIPWAY, median, table, timeCommand } from './lib.mjs';

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 20);
/** Milliseconds a server is left alone before its memory is read. */
const SETTLE_MS = Number(process.env.BENCH_STARTUP_SETTLE_MS ?? 20_000);

export async function benchStartup() {
  const only = (process.env.BENCH_STARTUP_CASES ?? 'cli,memory').split(',');
  const summary = {};
  if (only.includes('cli')) summary.cli = await benchCli();
  if (only.includes('memory')) summary.memory = await benchMemory();
  return summary;
}

async function benchCli() {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-bench-startup-'));
  try {
    const file = join(dir, 'small.yml');
    await writeFile(file, 'steps:\n  - name: test\n    image: busybox\n    commands: [echo hi]\n');
    const node = ['-e', '0'];
    const cases = { validate: [SLIPWAY, 'validate', '-f', file], help: [SLIPWAY, '--help'] };
    const result = {};
    for (const [name, args] of Object.entries(cases)) {
      await timeCommand(process.execPath, args); // warm the page cache
      const a = [];
      const b = [];
      for (let i = 0; i < RUNS; i++) {
        a.push((await timeCommand(process.execPath, args)).ms);
        b.push((await timeCommand(process.execPath, node)).ms);
      }
      const ratios = a.map((ms, i) => ms / b[i]);
      result[name] = {
        medianMs: median(a),
        nodeMedianMs: median(b),
        ratio: { min: Math.min(...ratios), median: median(ratios), max: Math.max(...ratios) },
      };
    }
    const r = (x) => x.toFixed(2);
    console.log(`(a) start-up against \`node -e 0\`, ${RUNS} alternating runs`);
    console.log(
      table([
        ['command', 'median', 'node -e 0', 'ratio min / median / max'],
        ...Object.entries(result).map(([name, x]) => [
          name === 'help' ? 'slipway --help' : 'slipway validate (small file)',
          `${x.medianMs.toFixed(0)} ms`,
          `${x.nodeMedianMs.toFixed(0)} ms`,
          `${r(x.ratio.min)} / ${r(x.ratio.median)} / ${r(x.ratio.max)}`,
        ]),
      ]),
    );
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function benchMemory() {
  const server = await import('./server.mjs');
  if (typeof server.startServer !== 'function' || typeof server.benchThroughput !== 'function') {
    console.log('(b) skipped: bench/server.mjs does not export startServer, benchThroughput and benchFanout');
    return { skipped: true };
  }
  const work = await mkdtemp(join(tmpdir(), 'slipway-bench-memory-'));
  const dataDir = join(work, 'server');
  const one = await server.startServer(dataDir, { globalLimit: 2 });
  // Every case of bench/server.mjs asks for a server; here they all get this one.
  const start = async () => one;
  const breakdown = {};
  const rss = async (moment) => {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
    const pid = pidOf();
    breakdown[moment] = smapsOf(pid);
    // e.g. BENCH_STARTUP_SMAPS=/tmp/smaps: the server's whole /proc/<pid>/smaps at each moment.
    if (process.env.BENCH_STARTUP_SMAPS) {
      await mkdir(process.env.BENCH_STARTUP_SMAPS, { recursive: true });
      await writeFile(
        join(process.env.BENCH_STARTUP_SMAPS, `${moment}.smaps`),
        readFileSync(`/proc/${pid}/smaps`),
      );
    }
    return rssOf(pid);
  };
  try {
    const idle = await rss('idle');
    const result = { idleMb: idle };
    if (process.env.BENCH_STARTUP_MEMORY !== 'idle') {
      await server.benchThroughput(work, start);
      result.afterBuildsMb = await rss('builds');
      if (process.env.BENCH_STARTUP_MEMORY !== 'builds') {
        await server.benchFanout(work, start);
        result.afterFanoutMb = await rss('fanout');
      }
    }
    result.breakdownMb = breakdown;
    const r = (mb) => `${mb.toFixed(1)} MB (${(mb / idle).toFixed(2)}× idle)`;
    const split = (moment) => {
      const b = breakdown[moment];
      return b ? `${b.anonymous.toFixed(1)} / ${b.file.toFixed(1)} MB` : '';
    };
    console.log(
      `\n(b) server resident memory (VmRSS) ${SETTLE_MS / 1000} s after each moment, local executor, SQLite`,
    );
    console.log(
      table([
        ['moment', 'RSS', 'of which anonymous / file-backed'],
        ['idle, after start-up', `${idle.toFixed(1)} MB`, split('idle')],
        ...(result.afterBuildsMb !== undefined
          ? [['after 500 one-step builds', r(result.afterBuildsMb), split('builds')]]
          : []),
        ...(result.afterFanoutMb !== undefined
          ? [['after the 200-reader fan-out', r(result.afterFanoutMb), split('fanout')]]
          : []),
      ]),
    );
    return result;
  } finally {
    await one.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * The `slipway server` process: this process's one child while the memory is read (the bench's
 * server keeps no pid, and the server sets its own title over its command line).
 */
function pidOf() {
  const children = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === process.pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  if (children.length !== 1) throw new Error(`expected one server process, found ${children.length}`);
  return children[0];
}

/**
 * The resident memory's split (MB): anonymous (the V8 heap, malloc's arenas, buffers) and
 * file-backed (node's binary and the shared libraries' pages read so far).
 */
function smapsOf(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  const anonymous = kb('Anonymous') / 1024;
  return { anonymous, file: kb('Rss') / 1024 - anonymous };
}

function rssOf(pid) {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchStartup();
}
