// Event-loop delay while a 30 MB JUnit report is parsed: in the server's thread (what a plain
// parse would cost) against the report worker the server uses (src/reports/parse-pool.ts),
// and the server's whole path for a step's report (`collector`: the file read from a local
// workspace, parsed in the worker, its 10,000 kept cases stored in SQLite).
// Needs `npm run build` (it loads dist/). Each side runs REPEAT times, the worker first; reported as
// min/median/max of the longest event-loop stall during a parse, and the parse's wall time.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { ROOT } from './lib.mjs';

const REPEAT = 3;
const dist = (p) => pathToFileURL(join(ROOT, 'dist', p)).href;

/** About `mb` MB of JUnit: 1 case in 20 failed with a 2 KiB trace and output, the rest passed. */
export function bigReport(mb) {
  const parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="bench">\n'];
  let size = parts[0].length;
  const trace = 'at com.acme.Thing.method(Thing.java:42)\n'.repeat(50);
  for (let s = 0; size < mb * 1024 * 1024; s++) {
    const suite = [`<testsuite name="com.acme.Suite${s}" tests="100">\n`];
    for (let c = 0; c < 100; c++) {
      const failed = c % 20 === 0;
      suite.push(
        `<testcase classname="com.acme.Suite${s}" name="test_${c}_does_something_useful" time="0.0${c}">` +
          (failed
            ? `<failure message="expected &lt;${c}&gt; but was &lt;${c + 1}&gt;" type="AssertionError">${trace}</failure><system-out>${trace}</system-out>`
            : '') +
          '</testcase>\n',
      );
    }
    suite.push('</testsuite>\n');
    const text = suite.join('');
    size += text.length;
    parts.push(text);
  }
  parts.push('</testsuites>\n');
  return Buffer.from(parts.join(''));
}

/** The longest gap between ticks of a 5 ms interval while `run` runs: how long the loop stalled. */
async function stallDuring(run) {
  const gaps = [];
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 5);
  const start = performance.now();
  const result = await run();
  const ms = performance.now() - start;
  // A parse in this thread blocks the loop in one piece: its gap ends at the next tick.
  await new Promise((resolve) => setTimeout(resolve, 20));
  clearInterval(tick);
  gaps.sort((a, b) => a - b);
  return {
    maxStallMs: gaps.at(-1) ?? ms,
    p99StallMs: gaps[Math.floor(gaps.length * 0.99)] ?? ms,
    wallMs: ms,
    result,
  };
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: round(s[0]), median: round(s[Math.floor(s.length / 2)]), max: round(s.at(-1)) };
};
const round = (x) => Math.round(x * 10) / 10;

export async function benchReports() {
  const { parseJUnit } = await import(dist('reports/junit.js'));
  const { ReportParser } = await import(dist('reports/parse-pool.js'));
  const bytes = bigReport(30);
  console.log(`report: ${(bytes.length / 1024 / 1024).toFixed(1)} MiB`);
  const parser = new ReportParser();
  if (!parser.offThread) throw new Error('no built parse worker: run npm run build first');
  const inThread = [];
  const worker = [];
  // The floor: the same measurement with nothing to do (on a loaded machine the process itself
  // waits for a core).
  const idle = [];
  for (let i = 0; i < REPEAT; i++) {
    idle.push(await stallDuring(() => new Promise((resolve) => setTimeout(resolve, 5000))));
    console.log(`idle run ${i + 1}: stall ${round(idle.at(-1).maxStallMs)} ms`);
  }
  // The worker's runs first: the garbage of a parse in this thread (hundreds of MB) would be
  // collected during them and count as their stall.
  for (let i = 0; i < REPEAT; i++) {
    // In 64 KiB pieces, each its own buffer, made before: as the server's read of the file gives
    // them (src/reports/read.ts, readAll), a piece at a time as the stream delivers.
    const pieces = [];
    for (let at = 0; at < bytes.length; at += 64 * 1024)
      pieces.push(new Uint8Array(bytes.subarray(at, at + 64 * 1024)));
    const b = await stallDuring(() => parser.parse(pieces));
    if (b.result.error) throw new Error(`worker parse failed: ${b.result.error}`);
    worker.push(b);
    console.log(
      `worker run ${i + 1}: stall ${round(b.maxStallMs)} ms (parse ${round(b.wallMs)} ms); ${b.result.totals.tests} cases, ${b.result.cases.length} kept`,
    );
  }
  const collector = await collectorRuns(bytes, parser);
  for (let i = 0; i < REPEAT; i++) {
    const a = await stallDuring(async () => parseJUnit(new TextDecoder().decode(bytes)));
    inThread.push(a);
    console.log(`in-thread run ${i + 1}: stall ${round(a.maxStallMs)} ms (parse ${round(a.wallMs)} ms)`);
  }
  await parser.close();
  const out = {
    reportMiB: round(bytes.length / 1024 / 1024),
    idle: { maxStallMs: stats(idle.map((r) => r.maxStallMs)) },
    inThread: {
      maxStallMs: stats(inThread.map((r) => r.maxStallMs)),
      wallMs: stats(inThread.map((r) => r.wallMs)),
    },
    worker: {
      maxStallMs: stats(worker.map((r) => r.maxStallMs)),
      p99StallMs: stats(worker.map((r) => r.p99StallMs)),
      wallMs: stats(worker.map((r) => r.wallMs)),
    },
    collector: {
      maxStallMs: stats(collector.map((r) => r.maxStallMs)),
      p99StallMs: stats(collector.map((r) => r.p99StallMs)),
      wallMs: stats(collector.map((r) => r.wallMs)),
    },
  };
  out.stallRatio = round(out.inThread.maxStallMs.median / Math.max(out.worker.maxStallMs.median, 0.1));
  console.log(JSON.stringify(out, null, 2));
  return out;
}

/** The server's `afterAttempt` of a step whose report is the file: read, parsed, stored (SQLite). */
async function collectorRuns(bytes, parser) {
  const { LocalExecutor } = await import(dist('executors/local/local-executor.js'));
  const { createReportCollector } = await import(dist('server/reports/collector.js'));
  const { openDatabase, createProject, createBuild } = await import(dist('store/index.js'));
  const { migrateToLatest } = await import(dist('store/migrate.js'));
  const dir = await mkdtemp(join(tmpdir(), 'slipway-bench-reports-'));
  const db = openDatabase(`sqlite:${join(dir, 'slipway.db')}`);
  const executor = new LocalExecutor({ tmpRoot: join(dir, 'work') });
  const handle = await executor.prepare({
    buildId: 'bench',
    project: 'acme/bench',
    branch: 'main',
    services: [],
  });
  const runs = [];
  try {
    await migrateToLatest(db);
    await writeFile(join(handle.workspace, 'report.xml'), bytes);
    const project = await createProject(db, {
      slug: 'acme/bench',
      repoUrl: 'https://git.example/acme/bench.git',
    });
    const step = {
      name: 'unit',
      commands: [],
      env: {},
      secrets: [],
      retries: 0,
      allowFailure: false,
      needs: [],
      artifacts: [],
      reports: { junit: ['report.xml'] },
      pos: { line: 1, col: 1 },
    };
    const plan = {
      file: '.slipway.yml',
      env: {},
      services: [],
      stages: [{ name: 'test', steps: [step], approval: false, pos: { line: 1, col: 1 } }],
    };
    for (let i = 0; i < REPEAT; i++) {
      const commitSha = `c${i}`;
      const build = await createBuild(db, {
        projectId: project.id,
        branch: 'main',
        event: 'manual',
        trigger: 'manual',
        commitSha,
      });
      const said = [];
      const afterAttempt = createReportCollector({ db, parser }).afterAttempt(
        executor,
        { id: build.id, projectId: project.id, commitSha },
        plan,
        (_stage, _step, text) => said.push(text),
      );
      const c = await stallDuring(() =>
        afterAttempt('test', step, 1, handle, { kind: 'exited', exitCode: 1 }, new AbortController().signal),
      );
      runs.push(c);
      console.log(
        `collector run ${i + 1}: stall ${round(c.maxStallMs)} ms (read, parse, store ${round(c.wallMs)} ms); ${said.at(-1)}`,
      );
    }
  } finally {
    await executor.destroy(handle);
    await db.destroy();
    await rm(dir, { recursive: true, force: true });
  }
  return runs;
}
