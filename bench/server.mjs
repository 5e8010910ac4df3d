// Issue 4 benchmark: the server as users see it, each figure against a baseline measured in
// the same run. Every case starts its own `slipway server` process (local executor, SQLite,
// fresh data dir) on loopback.
//
//   npm run build && node bench/server.mjs            (or benchServer() from bench/run.mjs)
//
// (a) latency from the trigger request to the first step's start, median of 50 builds run one
//     after another, against spawning the step's shell directly;
// (b) throughput of 500 one-step (`true`) builds under a global limit of 2, against running the
//     same 500 steps through the LocalExecutor (from dist/) two at a time, in this process;
// (c) log fan-out: one step printing 100k lines while 200 Server-Sent-Events readers follow the
//     build: lines delivered per reader (must be all) and the delay from the line's stored time
//     to its arrival at the reader;
// (d) `GET /api/v1/builds` with 100k builds in the SQLite database (inserted through Kysely
//     before the server starts): p50/p99 of the first page, deep pages and a status filter.
// Ratios and distributions only mean something within one run: the machines are shared.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  ROOT,
  SLIPWAY,
  allBuilds,
  fmt,
  followSse,
  gitRepo,
  median,
  percentile,
  processCpu,
  sleep,
  startServer,
  table,
} from './lib.mjs';

// bench/startup.mjs starts its one server through this module.
export { startServer };

const LATENCY_RUNS = Number(process.env.BENCH_LATENCY_RUNS ?? 50);
const THROUGHPUT_BUILDS = Number(process.env.BENCH_THROUGHPUT_BUILDS ?? 500);
const FANOUT_LINES = Number(process.env.BENCH_FANOUT_LINES ?? 100_000);
const FANOUT_READERS = Number(process.env.BENCH_FANOUT_READERS ?? 200);
const FANOUT_THREADS = Number(process.env.BENCH_FANOUT_THREADS ?? Math.min(4, availableParallelism()));
/** Lines per batch of the floor server: the writer's FLUSH_LINES (src/server/logs/log-writer.ts). */
const FANOUT_FLOOR_BATCH = Number(process.env.BENCH_FANOUT_FLOOR_BATCH ?? 2000);
const LIST_BUILDS = Number(process.env.BENCH_LIST_BUILDS ?? 100_000);
const LIST_REQUESTS = Number(process.env.BENCH_LIST_REQUESTS ?? 200);

export async function benchServer() {
  if (!existsSync(join(ROOT, 'dist', 'server', 'server.js')))
    throw new Error('run `npm run build` first (bench imports dist/)');
  const work = await mkdtemp(join(tmpdir(), 'slipway-bench-server-'));
  const servers = [];
  const start = async (name, options) => {
    const server = await startServer(join(work, name), options);
    servers.push(server);
    return server;
  };
  try {
    const only = (process.env.BENCH_SERVER_CASES ?? 'a,b,c,d').split(',');
    const summary = {};
    if (only.includes('a')) summary.latency = await benchLatency(work, start);
    if (only.includes('b')) summary.throughput = await benchThroughput(work, start);
    if (only.includes('c')) summary.fanout = await benchFanout(work, start);
    if (only.includes('d')) summary.listing = await benchListing(work, start);
    print(summary);
    return summary;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await rm(work, { recursive: true, force: true });
  }
}

// (a) ------------------------------------------------------------------------------------

async function benchLatency(work, start) {
  const repo = gitRepo(join(work, 'repo-a'), 'steps:\n  - name: go\n    commands: ["echo started"]\n', []);
  const server = await start('server-a', { globalLimit: 2 });
  await server.api('POST', '/projects', { slug: 'bench/latency', repoUrl: repo });
  const toBuildStart = [];
  const toRecord = [];
  const toOutput = [];
  const toCheckout = [];
  for (let i = 0; i < LATENCY_RUNS + 3; i++) {
    const t0 = Date.now();
    const build = await server.api('POST', '/projects/bench/latency/builds', { branch: 'main' });
    let firstLine;
    let checkedOut;
    await followSse(
      server,
      build.id,
      (event, data) => {
        if (event === 'line' && checkedOut === undefined && data.includes('"text":"checked out '))
          checkedOut = JSON.parse(data);
        if (event === 'line' && firstLine === undefined && data.includes('"step":"go"'))
          firstLine = JSON.parse(data);
        return event !== 'end';
      },
      { format: 'line' },
    );
    const detail = await server.api('GET', `/builds/${build.id}`);
    if (detail.status !== 'success') throw new Error(`latency build ${build.number} ended ${detail.status}`);
    if (i < 3) continue; // warm-up
    toBuildStart.push(Date.parse(detail.startedAt) - t0);
    toRecord.push(Date.parse(detail.stages[0].steps[0].startedAt) - t0);
    toOutput.push(Date.parse(firstLine.time) - t0);
    toCheckout.push(Date.parse(checkedOut.time) - t0);
  }
  // Baselines: the step's shell spawned directly, to its first output and to its exit.
  const rawOutput = [];
  const rawTrue = [];
  for (let i = 0; i < LATENCY_RUNS + 3; i++) {
    const [firstOut] = await spawnTimed('sh', ['-c', 'echo started']);
    const [, exited] = await spawnTimed('sh', ['-c', 'true']);
    if (i < 3) continue;
    rawOutput.push(firstOut);
    rawTrue.push(exited);
  }
  return {
    runs: LATENCY_RUNS,
    medianMs: {
      triggerToBuildRunning: median(toBuildStart),
      triggerToCheckedOut: median(toCheckout),
      triggerToStepRecordedStart: median(toRecord),
      triggerToFirstOutputLine: median(toOutput),
      rawShToFirstOutput: median(rawOutput),
      rawShTrue: median(rawTrue),
    },
    p90Ms: { triggerToFirstOutputLine: percentile(toOutput, 90) },
    ratio: median(toOutput) / median(rawOutput),
  };
}

// (b) ------------------------------------------------------------------------------------

export async function benchThroughput(work, start) {
  const branches = ['main', 'b1', 'b2', 'b3'];
  const repo = gitRepo(
    join(work, 'repo-b'),
    'steps:\n  - name: t\n    commands: ["true"]\n',
    branches.slice(1),
  );
  const server = await start('server-b', { globalLimit: 2 });
  await server.api('POST', '/projects', { slug: 'bench/throughput', repoUrl: repo });
  const t0 = Date.now();
  // Triggers 25 at a time; branches round-robin, so the global limit is what holds builds back.
  for (let i = 0; i < THROUGHPUT_BUILDS; i += 25) {
    await Promise.all(
      Array.from({ length: Math.min(25, THROUGHPUT_BUILDS - i) }, (_, j) =>
        server.api('POST', '/projects/bench/throughput/builds', {
          branch: branches[(i + j) % branches.length],
        }),
      ),
    );
  }
  const triggeredMs = Date.now() - t0;
  let builds;
  for (;;) {
    builds = await allBuilds(server, 'bench/throughput');
    if (builds.length === THROUGHPUT_BUILDS && builds.every((b) => b.finishedAt !== null)) break;
    await sleep(250);
  }
  const failed = builds.filter((b) => b.status !== 'success');
  if (failed.length > 0) throw new Error(`${failed.length} throughput builds did not succeed`);
  const serverMs = Math.max(...builds.map((b) => Date.parse(b.finishedAt))) - t0;

  // The same steps through the executor directly: prepare → runStep → destroy, two at a time.
  const { LocalExecutor } = await import(
    pathToFileURL(join(ROOT, 'dist', 'executors', 'local', 'local-executor.js')).href
  );
  const { runStep } = await import(pathToFileURL(join(ROOT, 'dist', 'executors', 'lifecycle.js')).href);
  const executor = new LocalExecutor({ tmpRoot: await mkdtemp(join(work, 'direct-')) });
  const sink = { line() {} };
  let next = 0;
  const d0 = Date.now();
  const worker = async () => {
    while (next < THROUGHPUT_BUILDS) {
      const n = ++next;
      const handle = await executor.prepare({
        buildId: `bench-${n}`,
        project: 'bench/direct',
        branch: 'main',
        services: [],
      });
      try {
        const exit = await runStep(
          executor,
          handle,
          {
            key: 'default/t',
            stage: 'default',
            step: 't',
            commands: ['true'],
            env: {},
            secrets: {},
            attempt: 1,
          },
          sink,
          new AbortController().signal,
        );
        if (exit.kind !== 'exited' || exit.exitCode !== 0)
          throw new Error(`direct step ended ${JSON.stringify(exit)}`);
      } finally {
        await executor.destroy(handle);
      }
    }
  };
  await Promise.all([worker(), worker()]);
  const directMs = Date.now() - d0;
  const perMinute = (ms) => (THROUGHPUT_BUILDS / ms) * 60_000;
  return {
    builds: THROUGHPUT_BUILDS,
    globalLimit: 2,
    serverMs,
    triggeredMs,
    directMs,
    buildsPerMinute: { server: perMinute(serverMs), direct: perMinute(directMs) },
    // Wall time per build and slot: what the server adds (clone, compile, records, logs).
    overheadPerBuildMs: ((serverMs - directMs) * 2) / THROUGHPUT_BUILDS,
    ratio: serverMs / directMs,
  };
}

// (c) ------------------------------------------------------------------------------------

export async function benchFanout(work, start) {
  // Outside the private work dir: the step runs as the unprivileged build user.
  const flagDir = await mkdtemp(join(tmpdir(), 'slipway-bench-flag-'));
  await chmod(flagDir, 0o755);
  const flag = join(flagDir, 'go');
  const repo = gitRepo(
    join(work, 'repo-c'),
    `steps:\n  - name: out\n    commands: ['while [ ! -f ${flag} ]; do sleep 0.05; done', 'seq 1 ${FANOUT_LINES}']\n`,
    [],
  );
  const server = await start('server-c', { globalLimit: 2 });
  await server.api('POST', '/projects', { slug: 'bench/fanout', repoUrl: repo });
  const build = await server.api('POST', '/projects/bench/fanout/builds', { branch: 'main' });
  for (;;) {
    const b = await server.api('GET', `/builds/${build.id}`);
    if (b.stages.length > 0 && b.stages[0].steps[0].status === 'running') break;
    if (b.finishedAt !== null) throw new Error(`fan-out build ended ${b.status} before it printed`);
    await sleep(50);
  }

  const followers = followWithReaders(`${server.url}/api/v1/builds/${build.id}/logs?follow=1`, server.token);
  await followers.connected;
  await sleep(1000); // every reader has joined the live feed
  const t0 = Date.now();
  const cpu0 = process.cpuUsage();
  const serverCpu0 = server.cpu?.().self;
  await writeFile(flag, '');
  const readers = await followers.done;
  const wallMs = Date.now() - t0;
  await rm(flagDir, { recursive: true, force: true });
  const cpu = process.cpuUsage(cpu0);
  const serverCpuMs = (server.cpu?.().self ?? Number.NaN) - (serverCpu0 ?? Number.NaN);
  const detail = await server.api('GET', `/builds/${build.id}`);
  if (detail.status !== 'success') throw new Error(`fan-out build ended ${detail.status}`);
  const delivered = summariseReaders(readers, followers.histogram);
  return {
    ...delivered,
    wallMs,
    // From the go to the step's end as recorded: how long printing and storing took.
    stepMs: Date.parse(detail.stages[0].steps[0].finishedAt) - t0,
    // The readers' side (this process, all threads): when it is near wallMs, the readers are the bottleneck.
    readersCpuMs: (cpu.user + cpu.system) / 1000,
    serverCpuMs,
    linesPerSecondDelivered: (delivered.total / wallMs) * 1000,
    floor: process.env.BENCH_FANOUT_FLOOR === '0' ? undefined : await benchFanoutFloor(),
  };
}

/**
 * The floor: bench/fanout-floor.mjs (its own process, nothing but an HTTP server) sends the
 * same readers the same lines in the same frames and batches, encoded once per batch and
 * stamped when its burst starts. Slipway's delay cannot go below it on this machine.
 */
async function benchFanoutFloor() {
  const child = spawn(
    process.execPath,
    [
      new URL('./fanout-floor.mjs', import.meta.url).pathname,
      String(FANOUT_LINES),
      String(FANOUT_FLOOR_BATCH),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const port = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk) => {
        out += chunk;
        const found = /listening (\d+)/.exec(out);
        if (found) resolve(Number(found[1]));
      });
      child.once('exit', (code) => reject(new Error(`fan-out floor server exited with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    const followers = followWithReaders(`${url}/logs?follow=1`, 'floor');
    await followers.connected;
    await sleep(1000);
    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    const serverCpu0 = processCpu(child.pid).self;
    await fetch(`${url}/go`, { method: 'POST' }).then((r) => r.text());
    const readers = await followers.done;
    const wallMs = Date.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const delivered = summariseReaders(readers, followers.histogram);
    return {
      ...delivered,
      batchLines: FANOUT_FLOOR_BATCH,
      wallMs,
      readersCpuMs: (cpu.user + cpu.system) / 1000,
      serverCpuMs: processCpu(child.pid).self - serverCpu0,
    };
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * FANOUT_READERS SSE readers of `url` in worker threads (bench/fanout-reader.mjs), each thread
 * with its share. `connected` resolves once all are connected; `done` with every reader's
 * counts once all streams ended; `histogram` counts the delays (ms) of every line of step `out`.
 */
function followWithReaders(url, token) {
  const threads = Math.max(1, Math.min(FANOUT_THREADS, FANOUT_READERS));
  const histogram = new Uint32Array(600_001);
  let connected = 0;
  let allConnected;
  const connectedAll = new Promise((resolve) => (allConnected = resolve));
  const done = Array.from({ length: threads }, (_, t) => {
    const count = Math.floor(FANOUT_READERS / threads) + (t < FANOUT_READERS % threads ? 1 : 0);
    const worker = new Worker(new URL('./fanout-reader.mjs', import.meta.url), {
      workerData: { url, token, count, step: 'out', histogramSize: histogram.length },
    });
    return new Promise((resolve, reject) => {
      worker.on('message', (message) => {
        if (message.type === 'connected' && ++connected === threads) allConnected();
        if (message.type !== 'done') return;
        if (message.error) reject(new Error(`fan-out reader: ${message.error}`));
        for (let ms = 0; ms < histogram.length; ms++) histogram[ms] += message.histogram[ms];
        resolve(message.readers);
      });
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new Error(`fan-out reader thread exited with ${code}`)));
    });
  });
  const all = Promise.all(done).then((lists) => lists.flat());
  return { threads, histogram, connected: Promise.race([connectedAll, all]), done: all };
}

function summariseReaders(readers, histogram) {
  const counts = readers.map((r) => r.lines);
  const total = counts.reduce((a, b) => a + b, 0);
  const pick = (p) => {
    const want = Math.ceil((p / 100) * total);
    let seen = 0;
    for (let ms = 0; ms < histogram.length; ms++) {
      seen += histogram[ms];
      if (seen >= want) return ms;
    }
    return histogram.length - 1;
  };
  let maxDelay = 0;
  for (let ms = histogram.length - 1; ms >= 0; ms--)
    if (histogram[ms] > 0) {
      maxDelay = ms;
      break;
    }
  return {
    lines: FANOUT_LINES,
    readers: FANOUT_READERS,
    threads: Math.max(1, Math.min(FANOUT_THREADS, FANOUT_READERS)),
    total,
    deliveredPerReader: { min: Math.min(...counts), max: Math.max(...counts) },
    allDelivered: counts.every((c) => c === FANOUT_LINES),
    readersWithSeqGaps: readers.filter((r) => r.gaps > 0).length,
    readersWithDuplicates: readers.filter((r) => r.duplicates > 0).length,
    readersEnded: readers.filter((r) => r.ended).length,
    // Streams ended by the server because their reader fell behind (each resumed at once).
    lags: readers.reduce((sum, r) => sum + r.lags, 0),
    reconnects: readers.reduce((sum, r) => sum + r.reconnects, 0),
    delayMs: { p50: pick(50), p99: pick(99), max: maxDelay },
  };
}

// (d) ------------------------------------------------------------------------------------

async function benchListing(work, start) {
  const dataDir = join(work, 'server-d');
  const store = await import(pathToFileURL(join(ROOT, 'dist', 'store', 'index.js')).href);
  const db = store.openDatabase(`sqlite:${join(dataDir, 'slipway.db')}`);
  const t0 = Date.now();
  try {
    await store.migrateToLatest(db);
    const project = await store.createProject(db, { slug: 'bench/listing', repoUrl: 'file:///nonexistent' });
    const base = Date.now() - LIST_BUILDS * 60_000;
    const CHUNK = 500;
    await db.transaction().execute(async (trx) => {
      for (let first = 1; first <= LIST_BUILDS; first += CHUNK) {
        const rows = [];
        for (let n = first; n < Math.min(first + CHUNK, LIST_BUILDS + 1); n++) {
          const created = base + n * 60_000;
          rows.push({
            project_id: project.id,
            number: n,
            status: n % 100 === 0 ? 'failure' : 'success',
            reason_code: null,
            reason_message: null,
            branch: ['main', 'dev', 'release/1'][n % 3],
            commit_sha: n.toString(16).padStart(40, '0'),
            commit_message: null,
            tag: null,
            event: 'push',
            trigger: 'manual',
            triggered_by: 'bench',
            created_at: created,
            queued_at: created,
            started_at: created + 1000,
            finished_at: created + 31_000,
            duration_ms: 30_000,
            rerun_of: null,
            executor: 'local',
            lease_owner: null,
            lease_expires_at: null,
            cancel_requested_at: null,
            cancel_reason_code: null,
            cancel_reason_message: null,
            head_repo_fork: null,
          });
        }
        await trx.insertInto('builds').values(rows).execute();
      }
      await trx
        .updateTable('projects')
        .set({ last_number: LIST_BUILDS })
        .where('id', '=', project.id)
        .execute();
    });
  } finally {
    await db.destroy();
  }
  const insertMs = Date.now() - t0;
  const server = await start('server-d', { globalLimit: 2 });
  const total = (await server.api('GET', '/builds?limit=1')).items[0]?.number;
  if (total !== LIST_BUILDS) throw new Error(`expected ${LIST_BUILDS} builds, the newest is #${total}`);

  const timeRequests = async (path) => {
    for (let i = 0; i < 5; i++) await server.api('GET', path(i)); // warm-up
    const samples = [];
    for (let i = 0; i < LIST_REQUESTS; i++) {
      const started = process.hrtime.bigint();
      const page = await server.api('GET', path(i));
      samples.push(Number(process.hrtime.bigint() - started) / 1e6);
      if (page.items.length === 0) throw new Error(`empty page for ${path(i)}`);
    }
    return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
  };
  // Deep pages: cursors spread over the oldest tenth of the builds (ids equal numbers here).
  const deep = (i) => 100 + Math.floor(((i * 7919) % LIST_REQUESTS) * (LIST_BUILDS / 10 / LIST_REQUESTS));
  return {
    builds: LIST_BUILDS,
    requests: LIST_REQUESTS,
    insertMs,
    firstPage: await timeRequests(() => '/builds'),
    deepPage: await timeRequests((i) => `/builds?before=${deep(i)}`),
    firstPage500: await timeRequests(() => '/builds?limit=500'),
    statusFilter: await timeRequests(() => '/builds?status=failure'),
    deepStatusFilter: await timeRequests((i) => `/builds?status=failure&before=${deep(i) + 1000}`),
    projectBranch: await timeRequests(() => '/projects/bench/listing/builds?branch=dev'),
  };
}

// Output --------------------------------------------------------------------------------

function print({ latency, throughput, fanout, listing }) {
  const r = (x) => x.toFixed(2);
  if (latency) printLatency(latency, r);
  if (throughput) printThroughput(throughput, r);
  if (fanout) printFanout(fanout);
  if (listing) printListing(listing);
}

function printLatency(latency, r) {
  console.log(`(a) trigger → first step, median of ${latency.runs} (local executor)`);
  console.log(
    table([
      ['measure', 'median'],
      ['trigger → build running (claimed by the scheduler)', fmt(latency.medianMs.triggerToBuildRunning)],
      ['trigger → checkout done (its log line)', fmt(latency.medianMs.triggerToCheckedOut)],
      [
        'trigger → step recorded as started (after compile, prepare)',
        fmt(latency.medianMs.triggerToStepRecordedStart),
      ],
      ['trigger → first output line of the step', fmt(latency.medianMs.triggerToFirstOutputLine)],
      ['raw: spawn sh -c "echo started" → first output', fmt(latency.medianMs.rawShToFirstOutput)],
      ['raw: spawn sh -c true → exit', fmt(latency.medianMs.rawShTrue)],
      ['ratio (first output: server / raw)', r(latency.ratio)],
    ]),
  );
}

function printThroughput(throughput, r) {
  console.log(`\n(b) throughput: ${throughput.builds} one-step builds, global limit 2`);
  console.log(
    table([
      ['runner', 'wall', 'builds/min'],
      [
        'slipway server (trigger → last finished)',
        fmt(throughput.serverMs),
        Math.round(throughput.buildsPerMinute.server),
      ],
      [
        'LocalExecutor directly, 2 in parallel',
        fmt(throughput.directMs),
        Math.round(throughput.buildsPerMinute.direct),
      ],
    ]),
  );
  console.log(
    `ratio server/direct ${r(throughput.ratio)}; server adds ${fmt(throughput.overheadPerBuildMs)} per build per slot ` +
      `(clone, compile, records, logs); the triggers themselves took ${fmt(throughput.triggeredMs)}`,
  );
}

function printFanout(fanout) {
  console.log(`\n(c) log fan-out: ${fanout.lines.toLocaleString('en')} lines, ${fanout.readers} SSE readers`);
  console.log(
    table([
      ['measure', 'value'],
      [
        'lines delivered per reader (min / max)',
        `${fanout.deliveredPerReader.min} / ${fanout.deliveredPerReader.max}`,
      ],
      [
        'all delivered, in order, no duplicate, ended',
        `${fanout.allDelivered}, ${fanout.readersWithSeqGaps === 0}, ${fanout.readersWithDuplicates === 0}, ${fanout.readersEnded}/${fanout.readers}`,
      ],
      ['streams ended by lag, reconnects', `${fanout.lags}, ${fanout.reconnects}`],
      [
        'delay write → delivery p50 / p99 / max',
        `${fanout.delayMs.p50} / ${fanout.delayMs.p99} / ${fanout.delayMs.max} ms`,
      ],
      [
        'wall time, lines delivered per second',
        `${fmt(fanout.wallMs)}, ${Math.round(fanout.linesPerSecondDelivered).toLocaleString('en')}`,
      ],
      [
        `go → step finished (record); readers' CPU (${fanout.threads} threads); server CPU`,
        `${fmt(fanout.stepMs)}, ${fmt(fanout.readersCpuMs)}, ${Number.isNaN(fanout.serverCpuMs) ? 'n/a' : fmt(fanout.serverCpuMs)}`,
      ],
      ...(fanout.floor
        ? [
            [
              `floor (bench/fanout-floor.mjs, ${fanout.floor.batchLines}-line batches): all delivered; p50 / p99 / max`,
              `${fanout.floor.allDelivered}; ${fanout.floor.delayMs.p50} / ${fanout.floor.delayMs.p99} / ${fanout.floor.delayMs.max} ms`,
            ],
            [
              "floor: wall time; readers' CPU; server CPU",
              `${fmt(fanout.floor.wallMs)}; ${fmt(fanout.floor.readersCpuMs)}; ${fmt(fanout.floor.serverCpuMs)}`,
            ],
            [
              'ratio Slipway / floor: p50, p99, wall',
              [
                fanout.delayMs.p50 / fanout.floor.delayMs.p50,
                fanout.delayMs.p99 / fanout.floor.delayMs.p99,
                fanout.wallMs / fanout.floor.wallMs,
              ]
                .map((x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a'))
                .join(', '),
            ],
          ]
        : []),
    ]),
  );
}

function printListing(listing) {
  console.log(
    `\n(d) GET /api/v1/builds with ${listing.builds.toLocaleString('en')} builds (SQLite), ${listing.requests} requests each`,
  );
  console.log(
    table([
      ['request', 'p50', 'p99'],
      ...[
        ['first page (50)', listing.firstPage],
        ['deep page (before=<old id>)', listing.deepPage],
        ['first page, limit=500', listing.firstPage500],
        ['status=failure (1%), first page', listing.statusFilter],
        ['status=failure, deep page', listing.deepStatusFilter],
        ['project builds, branch=dev', listing.projectBranch],
      ].map(([name, s]) => [name, fmt(s.p50), fmt(s.p99)]),
    ]),
  );
}

// Helpers ---------------------------------------------------------------------------------

/** Spawns a command; resolves [ms to first stdout byte, ms to exit]. */
function spawnTimed(cmd, args) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let first;
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.once('data', () => (first = Number(process.hrtime.bigint() - started) / 1e6));
    child.on('error', reject);
    child.on('close', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      resolve([first ?? ms, ms]);
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchServer();
}
