// Web UI benchmark (real headless Chromium against a real `slipway server`, local executor):
//  1. time from page load to the first log line shown, for a running build;
//  2. long tasks (> 50 ms, PerformanceObserver 'longtask') while a 100,000-line log streams in
//     live, and the time until every line is in the viewer;
//  3. the same for opening the finished 100,000-line log.
// Needs `npm run build` (server and web/dist) and Debian's chromium (scripts/setup-chromium.sh).
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT, SLIPWAY, fmt, median, table } from './lib.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const FIRST_LINE_RUNS = 7;

// Runs in the page before its own scripts: records long tasks and when the first log line
// appears (ms since navigation start), and signs in through sessionStorage.
const probe = (token) => `
  sessionStorage.setItem('slipway.token', ${JSON.stringify(token)});
  window.__longTasks = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  } catch {}
  new MutationObserver((_, observer) => {
    if (document.querySelector('.log-window .line')) {
      window.__firstLine = performance.now();
      observer.disconnect();
    }
  }).observe(document, { childList: true, subtree: true });
`;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startServer(dataDir) {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [SLIPWAY, 'server', '--data-dir', dataDir, '--port', String(port), '--executor', 'local', '--quiet'],
    { cwd: dataDir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const started = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 60_000);
    child.stderr.on('data', (d) => {
      stderr += d;
      const token = /Created the first admin token[^\n]*\n\s*\n?\s*(\S+)/.exec(stderr)?.[1];
      const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1];
      if (token && url) {
        clearTimeout(timer);
        resolve({ url, token });
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  return { ...started, child };
}

async function gitRepo(dir, branches) {
  const git = (...args) =>
    execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@slipway.invalid', ...args], {
      cwd: dir,
    });
  git('init', '-q', '-b', 'main');
  git('commit', '-q', '--allow-empty', '-m', 'start');
  for (const [branch, pipeline] of Object.entries(branches)) {
    git('checkout', '-q', '-B', branch, 'main');
    await writeFile(join(dir, '.slipway.yml'), pipeline);
    git('add', '-A');
    git('commit', '-q', '-m', branch);
  }
  git('checkout', '-q', 'main');
  return `file://${dir}`;
}

export async function benchWeb() {
  if (!existsSync(join(ROOT, 'web', 'dist', 'index.html')))
    throw new Error('web/dist missing: run `npm run build`');
  const scratch = await mkdtemp(join(tmpdir(), 'slipway-bench-web-'));
  const dataDir = join(scratch, 'data');
  const repoDir = join(scratch, 'repo');
  execFileSync('mkdir', ['-p', dataDir, repoDir]);
  const wait = (file) => `while [ ! -f ${join(scratch, file)} ]; do sleep 0.05; done`;
  const repoUrl = await gitRepo(repoDir, {
    waiting: `steps:\n  - name: hold\n    commands: ["echo first-line", "${wait('release-all')}"]\n`,
    stream: `steps:\n  - name: numbers\n    commands: ["echo ready", "${wait('go')}", "seq 1 100000", "${wait('release-all')}"]\n`,
  });

  const server = await startServer(dataDir);
  const call = async (method, path, body) => {
    const res = await fetch(`${server.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${server.token}`,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const waitFor = async (fn, limitMs = 120_000) => {
    const deadline = Date.now() + limitMs;
    for (;;) {
      const value = await fn();
      if (value) return value;
      if (Date.now() > deadline) throw new Error('benchmark condition not met in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const profile = join(scratch, 'profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  await context.addInitScript(probe(server.token));

  try {
    await call('POST', '/projects', { slug: 'bench/web', repoUrl });

    // 1. Page load → first log line of a running build.
    const held = await call('POST', '/projects/bench/web/builds', { branch: 'waiting' });
    await waitFor(async () =>
      (await call('GET', `/builds/${held.id}/logs?limit=100`)).lines.some((l) => l.text === 'first-line'),
    );
    const firstLine = [];
    for (let i = 0; i < FIRST_LINE_RUNS; i++) {
      const page = await context.newPage();
      await page.goto(`${server.url}/projects/bench/web/builds/${held.number}`);
      await page.waitForFunction(() => window.__firstLine !== undefined, null, { timeout: 60_000 });
      firstLine.push(await page.evaluate(() => window.__firstLine));
      await page.close();
    }

    // 2. A 100,000-line log streaming in live.
    const streaming = await call('POST', '/projects/bench/web/builds', { branch: 'stream' });
    const page = await context.newPage();
    await page.goto(`${server.url}/projects/bench/web/builds/${streaming.number}`);
    await page.locator('.line', { hasText: 'ready' }).waitFor({ timeout: 60_000 });
    await page.locator('.log-state', { hasText: 'live' }).waitFor({ timeout: 60_000 });
    const t0 = await page.evaluate(() => {
      window.__longTasks = [];
      return performance.now();
    });
    await writeFile(join(scratch, 'go'), '');
    await page.waitForFunction(
      () => /100,00\d lines/.test(document.querySelector('.log-state')?.textContent ?? ''),
      null,
      { timeout: 180_000, polling: 50 },
    );
    const streamed = await page.evaluate(
      (start) => ({ ms: performance.now() - start, tasks: window.__longTasks }),
      t0,
    );
    await page.close();
    await writeFile(join(scratch, 'release-all'), '');
    await waitFor(async () => (await call('GET', `/builds/${streaming.id}`)).status === 'success');

    // 3. Opening the finished 100,000-line log.
    const opened = await context.newPage();
    await opened.goto(`${server.url}/projects/bench/web/builds/${streaming.number}`);
    await opened.waitForFunction(
      () => /complete · 100,0\d\d lines/.test(document.querySelector('.log-state')?.textContent ?? ''),
      null,
      { timeout: 180_000, polling: 50 },
    );
    const open = await opened.evaluate(() => ({ ms: performance.now(), tasks: window.__longTasks }));
    // Searching all of it.
    await opened.evaluate(() => (window.__longTasks = []));
    const searchStart = Date.now();
    await opened.getByLabel('Find in log').fill('99999');
    await opened.getByTestId('match-count').filter({ hasText: '1 of 1' }).waitFor({ timeout: 60_000 });
    const searchMs = Date.now() - searchStart;
    const searchTasks = await opened.evaluate(() => window.__longTasks);
    await opened.close();

    const summary = (tasks) => ({
      count: tasks.length,
      totalMs: Math.round(tasks.reduce((sum, t) => sum + t.duration, 0)),
      maxMs: Math.round(Math.max(0, ...tasks.map((t) => t.duration))),
    });
    const result = {
      firstLineMs: {
        median: Math.round(median(firstLine)),
        min: Math.round(Math.min(...firstLine)),
        max: Math.round(Math.max(...firstLine)),
        runs: firstLine.length,
      },
      stream100k: { allLinesShownMs: Math.round(streamed.ms), longTasks: summary(streamed.tasks) },
      open100k: { completeMs: Math.round(open.ms), longTasks: summary(open.tasks) },
      search100k: { resultMs: searchMs, longTasks: summary(searchTasks) },
    };
    const lt = (s) => `${s.count} (total ${s.totalMs} ms, max ${s.maxMs} ms)`;
    console.log(
      table([
        ['measure', 'time', 'long tasks > 50 ms'],
        [`page load → first log line (median of ${firstLine.length})`, fmt(result.firstLineMs.median), '—'],
        [
          '100k lines streamed live → all shown',
          fmt(result.stream100k.allLinesShownMs),
          lt(result.stream100k.longTasks),
        ],
        [
          'open finished 100k-line log → complete',
          fmt(result.open100k.completeMs),
          lt(result.open100k.longTasks),
        ],
        [
          'search 100k lines (incl. 150 ms debounce)',
          fmt(result.search100k.resultMs),
          lt(result.search100k.longTasks),
        ],
      ]),
    );
    return result;
  } finally {
    await writeFile(join(scratch, 'release-all'), '').catch(() => {});
    await context.close();
    server.child.kill('SIGTERM');
    await new Promise((r) => server.child.once('exit', r));
    await rm(scratch, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchWeb();
