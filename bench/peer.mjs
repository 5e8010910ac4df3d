// Issue 14 benchmark: Slipway against Buildbot 3.7 (Debian's `buildbot` and `buildbot-worker`)
// with the same trivial build, on the same machine, in the same run. Each side builds one
// repository: a shallow clone of the branch into a fresh directory, then `true` (a shell step),
// with 2 slots (Slipway: local executor, global limit 2; Buildbot: one local worker, max_builds 2).
//
//   npm run build && npm run bench -- peer
//
// (a) trigger → done, one build at a time: BENCH_PEER_RUNS builds each after 2 warm-up builds,
//     Slipway and Buildbot taking turns (who goes first alternates) so that the machine's load
//     falls on both alike. "Done" is when the bench learns it, pushed by each server: the end of
//     Slipway's SSE log stream; the `finished` event on Buildbot's data API WebSocket. The
//     clone's share is each build's own checkout: from Slipway's "build #n" log line to its
//     "checked out" line; Buildbot's git step from its `started` to its `finished` event.
// (b) BENCH_PEER_BURST builds (50) triggered at once, 2 slots: builds per minute from the first
//     trigger to the last done, and the CPU each side spent per build (server processes and the
//     git and shell processes they ran).
// Skipped, with a message, when the Buildbot commands are not installed. Everything started here
// (the Slipway server, the Buildbot master and worker, the temp dir) goes at the end, on an error
// and on Ctrl-C.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import {
  ROOT,
  fmt,
  freePort,
  followSse,
  gitRepo,
  median,
  onPath,
  processCpu,
  sleep,
  startServer,
  table,
  withCleanup,
} from './lib.mjs';

const RUNS = Number(process.env.BENCH_PEER_RUNS ?? 20);
const BURST = Number(process.env.BENCH_PEER_BURST ?? 50);
const WARMUP = 2;
const SLOTS = 2;
// Slipway runs one build of a branch at a time (its concurrency policy): the burst spreads over
// four branches so that the 2 slots are what holds builds back, on both sides alike.
const BRANCHES = ['main', 'b1', 'b2', 'b3'];
const PROJECT = 'bench/peer';
const INSTALL = 'apt-get install -y buildbot buildbot-worker';
// A build that is not done by then is stuck: the bench fails instead of waiting for ever.
const STUCK_MS = 15 * 60_000;

export async function benchPeer() {
  const missing = ['buildbot', 'buildbot-worker'].filter((command) => !onPath(command));
  if (missing.length > 0) {
    const message = `skipped: ${missing.join(' and ')} not installed (Debian: ${INSTALL})`;
    console.log(message);
    return { skipped: message };
  }
  if (!existsSync(join(ROOT, 'dist', 'server', 'server.js')))
    throw new Error('run `npm run build` first (the bench starts bin/slipway.js)');
  return withCleanup(async (defer) => {
    const work = await mkdtemp(join(tmpdir(), 'slipway-bench-peer-'));
    defer(() => rm(work, { recursive: true, force: true }));
    const repoUrl = gitRepo(
      join(work, 'repo'),
      'steps:\n  - name: t\n    commands: ["true"]\n',
      BRANCHES.slice(1),
    );

    const server = await startServer(join(work, 'slipway'), { globalLimit: SLOTS, defer });
    await server.api('POST', '/projects', { slug: PROJECT, repoUrl });
    const slipway = slipwaySide(server);

    const buildbot = await startBuildbot(join(work, 'buildbot'), repoUrl, defer);
    console.log(
      `${buildbot.version}; ${RUNS} runs after ${WARMUP} warm-up builds each, then a burst of ${BURST}`,
    );

    for (let i = 0; i < WARMUP; i++) {
      await slipway.build('main');
      await buildbot.build('main');
    }
    const runs = { slipway: [], buildbot: [] };
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 === 0 ? ['slipway', 'buildbot'] : ['buildbot', 'slipway'];
      for (const side of order) runs[side].push(await { slipway, buildbot }[side].build('main'));
    }
    await slipway.check(runs.slipway);

    const burst = {};
    burst.slipway = await slipway.burst();
    burst.buildbot = await buildbot.burst();

    const summary = {
      buildbot: buildbot.version,
      runs: RUNS,
      warmup: WARMUP,
      slots: SLOTS,
      triggerToDone: {
        slipway: stats(runs.slipway),
        buildbot: stats(runs.buildbot),
      },
      burst: { builds: BURST, slipway: burst.slipway, buildbot: burst.buildbot },
    };
    const s = summary.triggerToDone;
    summary.ratio = {
      // Goal ≤ 0.1: Slipway's median trigger → done at most a tenth of Buildbot's.
      triggerToDone: s.slipway.medianMs / s.buildbot.medianMs,
      triggerToDoneWithoutClone: s.slipway.withoutCloneMedianMs / s.buildbot.withoutCloneMedianMs,
      // Goal ≥ 10: Slipway's builds per minute in the burst at least ten times Buildbot's.
      burst: burst.slipway.buildsPerMinute / burst.buildbot.buildsPerMinute,
    };
    print(summary);
    return summary;
  });
}

/** Median, min, max of trigger → done; the clone's median share and the rest without it. */
function stats(samples) {
  const done = samples.map((s) => s.doneMs);
  const clone = samples.map((s) => s.cloneMs).filter((ms) => ms !== undefined);
  const without = samples.filter((s) => s.cloneMs !== undefined).map((s) => s.doneMs - s.cloneMs);
  return {
    medianMs: median(done),
    minMs: Math.min(...done),
    maxMs: Math.max(...done),
    cloneMedianMs: clone.length > 0 ? median(clone) : null,
    withoutCloneMedianMs: without.length > 0 ? median(without) : null,
    ...(samples[0]?.recordedMs !== undefined && {
      recordedMedianMs: median(samples.map((s) => s.recordedMs)),
    }),
  };
}

// Slipway ------------------------------------------------------------------------------------

function slipwaySide(server) {
  /** Trigger, then follow the build's live log until it ends. */
  const build = async (branch) => {
    const t0 = performance.now();
    const wall0 = Date.now();
    const { id } = await server.api('POST', `/projects/${PROJECT}/builds`, { branch });
    await notStuck(
      followSse(server, id, (event) => event !== 'end'),
      `Slipway build ${id}`,
    );
    const doneAt = performance.now();
    return { id, wall0, doneAt, doneMs: doneAt - t0 };
  };
  /** After the timing: each build succeeded; its checkout's time from its own log lines. */
  const check = async (samples) => {
    for (const sample of samples) {
      const detail = await server.api('GET', `/builds/${sample.id}`);
      if (detail.status !== 'success')
        throw new Error(
          `Slipway build #${detail.number} ended ${detail.status}: ${detail.reason?.message ?? 'no reason given'}`,
        );
      // The server's own record of done: what the live log's end adds on the way to the bench.
      sample.recordedMs = Date.parse(detail.finishedAt) - sample.wall0;
      const { lines } = await server.api('GET', `/builds/${sample.id}/logs?limit=1000`);
      const at = (pattern) => lines.find((line) => pattern.test(line.text))?.time;
      const from = at(/^build #\d+ of /);
      const to = at(/^checked out [0-9a-f]{7,}/);
      // Unknown when the wording of those lines changes: the figure is left out, not guessed.
      if (from !== undefined && to !== undefined) sample.cloneMs = Date.parse(to) - Date.parse(from);
    }
  };
  const burst = async () => {
    const cpu0 = server.cpu();
    const t0 = performance.now();
    const samples = await Promise.all(
      Array.from({ length: BURST }, (_, i) => build(BRANCHES[i % BRANCHES.length])),
    );
    const wallMs = Math.max(...samples.map((s) => s.doneAt)) - t0;
    const cpu1 = server.cpu();
    await check(samples);
    return burstFigures(wallMs, samples, cpu0, cpu1);
  };
  return { build, check, burst };
}

function burstFigures(wallMs, samples, cpu0, cpu1) {
  const clone = samples.map((s) => s.cloneMs).filter((ms) => ms !== undefined);
  return {
    wallMs,
    buildsPerMinute: (BURST / wallMs) * 60_000,
    cloneMedianMs: clone.length > 0 ? median(clone) : null,
    // NaN (no /proc) becomes null in the results.
    cpuMsPerBuild: nullIfNaN((cpu1.self + cpu1.children - cpu0.self - cpu0.children) / BURST),
  };
}

async function notStuck(promise, what) {
  let timer;
  const stuck = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not done after ${STUCK_MS / 60_000} min`)), STUCK_MS);
  });
  try {
    return await Promise.race([promise, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

const nullIfNaN = (value) => (Number.isNaN(value) ? null : value);

// Buildbot -----------------------------------------------------------------------------------

/**
 * A throw-away Buildbot master and worker in `dir`. Debian packages Buildbot without its web UI
 * (buildbot-www), and the master serves its REST API and WebSocket only with one installed: a
 * stand-in with an empty page takes its place on the master's PYTHONPATH. The API is Buildbot's.
 */
async function startBuildbot(dir, repoUrl, defer) {
  const [wwwPort, pbPort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${wwwPort}`;
  await mkdir(dir, { recursive: true });
  const pylib = join(dir, 'pylib');
  await mkdir(join(pylib, 'bench_www', 'static'), { recursive: true });
  await mkdir(join(pylib, 'bench_www-1.0.dist-info'), { recursive: true });
  await writeFile(
    join(pylib, 'bench_www', '__init__.py'),
    'from buildbot.www.plugin import Application\nep = Application(__name__, "API only (slipway bench)")\n',
  );
  await writeFile(join(pylib, 'bench_www', 'VERSION'), '1.0\n');
  await writeFile(join(pylib, 'bench_www', 'static', 'index.html'), '<!doctype html><title>bench</title>\n');
  await writeFile(
    join(pylib, 'bench_www-1.0.dist-info', 'METADATA'),
    'Metadata-Version: 2.1\nName: bench-www\nVersion: 1.0\n',
  );
  await writeFile(
    join(pylib, 'bench_www-1.0.dist-info', 'entry_points.txt'),
    '[buildbot.www]\nbase = bench_www:ep\n',
  );

  const masterDir = join(dir, 'master');
  const workerDir = join(dir, 'worker');
  const password = 'bench';
  const setup = (command, args) => execFileSync(command, args, { stdio: 'pipe', cwd: dir });
  const version = String(setup('buildbot', ['--version']))
    .split('\n')[0]
    .trim();
  setup('buildbot', ['create-master', '--quiet', masterDir]);
  await writeFile(join(masterDir, 'master.cfg'), masterConfig({ wwwPort, pbPort, repoUrl, password }));
  setup('buildbot-worker', ['create-worker', '--quiet', workerDir, `127.0.0.1:${pbPort}`, 'local', password]);

  const master = daemon('buildbot', ['start', '--nodaemon', masterDir], { PYTHONPATH: pylib });
  defer(() => master.stop());
  const worker = daemon('buildbot-worker', ['start', '--nodaemon', workerDir], {});
  defer(() => worker.stop());
  const logTail = () =>
    ['master', 'worker']
      .map((name) => {
        const file = join(dir, name, 'twistd.log');
        return existsSync(file) ? `${name}/twistd.log:\n${readFileSync(file, 'utf8').slice(-3000)}` : '';
      })
      .join('\n');

  const rest = async (path, body) => {
    const response = await fetch(`${base}/api/v2${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      ...(body !== undefined && {
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`Buildbot ${path}: ${response.status} ${text.slice(0, 500)}`);
    return JSON.parse(text);
  };
  // Up when the worker is attached (the master's first start creates its database: seconds).
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (master.exited() || worker.exited()) throw new Error(`Buildbot stopped while starting\n${logTail()}`);
    const workers = await rest('/workers').catch(() => undefined);
    if (workers?.workers.some((w) => w.connected_to.length > 0)) break;
    if (Date.now() > deadline) throw new Error(`Buildbot did not start in 120 s\n${logTail()}`);
    await sleep(200);
  }
  const { builders } = await rest('/builders');
  const builderId = builders.find((b) => b.name === 'trivial').builderid;
  const events = await buildEvents(`ws://127.0.0.1:${wwwPort}/ws`);
  defer(() => events.close());

  let rpcId = 0;
  const build = async (branch) => {
    const t0 = performance.now();
    const answer = await rest('/forceschedulers/force', {
      jsonrpc: '2.0',
      id: ++rpcId,
      method: 'force',
      params: { builderid: String(builderId), branch },
    });
    if (answer.error) throw new Error(`Buildbot force: ${JSON.stringify(answer.error)}`);
    const requestId = Object.values(answer.result[1])[0];
    const done = await notStuck(events.finished(requestId), `Buildbot build request ${requestId}`);
    if (done.results !== 0)
      throw new Error(`Buildbot build ${done.buildid} ended with results ${done.results}\n${logTail()}`);
    return { id: done.buildid, doneAt: done.at, doneMs: done.at - t0, cloneMs: done.cloneMs };
  };
  const cpu = () => {
    const [m, w] = [processCpu(master.pid), processCpu(worker.pid)];
    return { self: m.self + w.self, children: m.children + w.children };
  };
  const burst = async () => {
    const cpu0 = cpu();
    const t0 = performance.now();
    const samples = await Promise.all(
      Array.from({ length: BURST }, (_, i) => build(BRANCHES[i % BRANCHES.length])),
    );
    const wallMs = Math.max(...samples.map((s) => s.doneAt)) - t0;
    return burstFigures(wallMs, samples, cpu0, cpu());
  };
  return { version, build, burst };
}

function masterConfig({ wwwPort, pbPort, repoUrl, password }) {
  const py = (text) => JSON.stringify(text); // a valid Python literal for these strings
  return `# Written by slipway's bench/peer.mjs: the same trivial build as the Slipway side.
from buildbot.plugins import schedulers, steps, util, worker

c = BuildmasterConfig = {}
c['title'] = 'slipway peer bench'
c['buildbotURL'] = 'http://127.0.0.1:${wwwPort}/'
c['buildbotNetUsageData'] = None
c['db'] = {'db_url': 'sqlite:///state.sqlite'}
c['protocols'] = {'pb': {'port': 'tcp:${pbPort}:interface=127.0.0.1'}}
c['www'] = {'port': 'tcp:${wwwPort}:interface=127.0.0.1', 'plugins': {}}
c['workers'] = [worker.Worker('local', ${py(password)}, max_builds=${SLOTS})]
c['schedulers'] = [schedulers.ForceScheduler(name='force', builderNames=['trivial'])]
# Like Slipway's checkout: a shallow clone of the branch into a directory of the build's own
# (two builds run side by side on the worker), then the step in a shell.
workdir = util.Interpolate('build-%(prop:buildnumber)s')
factory = util.BuildFactory([
    steps.Git(name='git', repourl=${py(repoUrl)}, mode='full', method='clobber', shallow=True,
              workdir=workdir),
    steps.ShellCommand(name='t', command='true', workdir=workdir),
])
# Every request is its own build, as on Slipway (Buildbot would merge waiting ones by default).
c['builders'] = [util.BuilderConfig(name='trivial', workernames=['local'], factory=factory,
                                    collapseRequests=False)]
`;
}

/** A process in its own process group, so that stopping it stops what it runs too. */
function daemon(command, args, env) {
  const child = spawn(command, args, {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, ...env },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const signal = (name) => {
    try {
      process.kill(-child.pid, name);
    } catch {
      // The group is gone already.
    }
  };
  return {
    pid: child.pid,
    exited: gone,
    stop: async () => {
      if (gone()) return signal('SIGKILL'); // what it started may linger
      signal('SIGTERM');
      const timer = setTimeout(() => signal('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      signal('SIGKILL');
    },
  };
}

/**
 * Buildbot's data API events on its WebSocket: builds finished (by build request) and the times
 * the git step of each build started and finished, stamped as they arrive here.
 */
async function buildEvents(url) {
  const WebSocketClass = globalThis.WebSocket ?? (await import('ws')).WebSocket; // Node 20: `ws`
  const socket = new WebSocketClass(url);
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true });
    socket.addEventListener('error', () => reject(new Error(`Buildbot WebSocket ${url} failed`)), {
      once: true,
    });
  });
  const gitStep = new Map(); // buildid → { started, finished }
  const finished = new Map(); // buildrequestid → build message
  const waiting = new Map(); // buildrequestid → resolve
  const acks = new Map(); // _id → resolve
  let failure;
  socket.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data));
    if (message._id !== undefined && acks.has(message._id)) {
      acks.get(message._id)(message);
      return;
    }
    if (typeof message.k !== 'string') return;
    const at = performance.now();
    const [kind, , what] = message.k.split('/');
    const m = message.m;
    if (kind === 'steps' && m.name === 'git' && (what === 'started' || what === 'finished')) {
      const times = gitStep.get(m.buildid) ?? {};
      times[what] = at;
      gitStep.set(m.buildid, times);
    } else if (kind === 'builds' && what === 'finished') {
      const times = gitStep.get(m.buildid);
      gitStep.delete(m.buildid);
      const done = {
        buildid: m.buildid,
        results: m.results,
        at,
        ...(times?.started !== undefined &&
          times.finished !== undefined && { cloneMs: times.finished - times.started }),
      };
      const resolve = waiting.get(m.buildrequestid);
      if (resolve) {
        waiting.delete(m.buildrequestid);
        resolve(done);
      } else finished.set(m.buildrequestid, done);
    }
  });
  socket.addEventListener('close', () => {
    failure = new Error('the Buildbot WebSocket closed');
    for (const resolve of waiting.values()) resolve({ results: -1, error: failure });
  });
  let nextId = 0;
  const consume = (path) =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      acks.set(id, (answer) => {
        acks.delete(id);
        if (answer.code === 200) resolve();
        else reject(new Error(`Buildbot WebSocket ${path}: ${JSON.stringify(answer)}`));
      });
      socket.send(JSON.stringify({ cmd: 'startConsuming', path, _id: id }));
    });
  await consume('builds/*/*');
  await consume('steps/*/*');
  return {
    finished: (requestId) => {
      if (failure) throw failure;
      const done = finished.get(requestId);
      if (done) {
        finished.delete(requestId);
        return done;
      }
      return new Promise((resolve) => waiting.set(requestId, resolve));
    },
    close: () => socket.close(),
  };
}

// Output ---------------------------------------------------------------------------------------

function print({ runs, triggerToDone: t, burst, ratio }) {
  const ms = (value) => (value === null ? 'n/a' : fmt(value));
  const r = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
  console.log(`(a) trigger → done, one build at a time, ${runs} runs each`);
  console.log(
    table([
      ['system', 'median', 'min', 'max', 'clone (median)', 'without the clone (median)'],
      ...['slipway', 'buildbot'].map((side) => [
        side,
        fmt(t[side].medianMs),
        fmt(t[side].minMs),
        fmt(t[side].maxMs),
        ms(t[side].cloneMedianMs),
        ms(t[side].withoutCloneMedianMs),
      ]),
    ]),
  );
  console.log(
    `Slipway's own record (trigger → finishedAt, median): ${fmt(t.slipway.recordedMedianMs)}; ` +
      'the rest is its live log ending',
  );
  console.log(
    `ratio slipway/buildbot ${r(ratio.triggerToDone)} (without the clone ${r(ratio.triggerToDoneWithoutClone)}); goal ≤ 0.10`,
  );
  console.log(`\n(b) burst: ${burst.builds} builds triggered at once, ${SLOTS} slots`);
  console.log(
    table([
      ['system', 'wall', 'builds/min', 'clone per build (median)', 'CPU per build'],
      ...['slipway', 'buildbot'].map((side) => [
        side,
        fmt(burst[side].wallMs),
        Math.round(burst[side].buildsPerMinute),
        ms(burst[side].cloneMedianMs),
        ms(burst[side].cpuMsPerBuild),
      ]),
    ]),
  );
  console.log(`ratio slipway/buildbot ${r(ratio.burst)}×; goal ≥ 10×`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await benchPeer();
}
