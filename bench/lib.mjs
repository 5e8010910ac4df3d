// Shared helpers for the benchmarks: timing whole commands, medians, output.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SLIPWAY = join(ROOT, 'bin', 'slipway.js');

/** Runs a command to completion with stdout/stderr discarded (or captured); resolves with ms. */
export function timeCommand(cmd, args, { cwd, env, capture = false } = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout?.on('data', (d) => (stdout += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ ms, stdout });
    });
  });
}

export async function repeat(times, fn) {
  const samples = [];
  for (let i = 0; i < times; i++) samples.push((await fn()).ms);
  return samples;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export const fmt = (ms) => `${ms.toFixed(1)} ms`;

export function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => String(cell).padEnd(widths[c]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a command is on the PATH. */
export function onPath(command) {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', command], { stdio: 'ignore' }).status === 0;
}

/** A TCP port free on loopback right now. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * CPU time of a live process (ms, Linux): its own, and that of the children it waited for. NaN
 * when it cannot be read.
 */
export function processCpu(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const ms = (i) => (Number(fields[i]) * 1000) / 100; // USER_HZ is 100 on Linux
    return { self: ms(11) + ms(12), children: ms(13) + ms(14) };
  } catch {
    return { self: Number.NaN, children: Number.NaN };
  }
}

/**
 * Runs `fn(defer)`; what it defers runs last-first at the end, on an error, and on SIGINT or
 * SIGTERM (then the process exits 130 or 143), so a bench leaves no process or directory behind.
 */
export async function withCleanup(fn) {
  const cleanups = [];
  let running;
  // Until none is left, also those deferred while it runs (the bench may still be starting one).
  const cleanUp = () =>
    (running ??= (async () => {
      while (cleanups.length > 0) {
        try {
          await cleanups.pop()();
        } catch (error) {
          console.error(`cleanup: ${error.message}`);
        }
      }
      running = undefined;
    })());
  let exitCode;
  // A second Ctrl-C while cleaning up is ignored: leaving half-way would leave processes behind.
  const onSignal = (signal) => {
    if (exitCode !== undefined) return;
    exitCode = signal === 'SIGINT' ? 130 : 143;
    console.error(`\n${signal}: stopping what the bench started`);
    void cleanUp().finally(() => process.exit(exitCode));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const defer = (cleanup) => {
    cleanups.push(cleanup);
    if (exitCode !== undefined) void cleanUp();
  };
  try {
    return await fn(defer);
  } catch (error) {
    // After a signal the bench fails because its processes are going: that is no error of its own.
    if (exitCode === undefined) throw error;
  } finally {
    await cleanUp();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (exitCode !== undefined) process.exit(exitCode);
  }
}

/** A git repository with `.slipway.yml` on main and the given extra branches; its file:// URL. */
export function gitRepo(dir, pipeline, branches) {
  const git = (...args) =>
    execFileSync('git', ['-c', 'user.name=Bench', '-c', 'user.email=bench@slipway.invalid', ...args], {
      cwd: dir,
      stdio: 'pipe',
    });
  execFileSync('mkdir', ['-p', dir]);
  git('init', '-q', '-b', 'main');
  execFileSync('sh', ['-c', 'cat > .slipway.yml'], { cwd: dir, input: pipeline });
  git('add', '-A');
  git('commit', '-q', '-m', 'pipeline');
  for (const branch of branches) git('branch', branch);
  return `file://${dir}`;
}

/**
 * Starts `slipway server` (local executor, SQLite in `dataDir`) on a free loopback port and
 * waits for its first admin token. `api(method, path, body)` calls /api/v1 with it. `defer`
 * (withCleanup's) gets its stop at once, so that it goes even when stopped while starting.
 */
export async function startServer(dataDir, { globalLimit, defer }) {
  const port = await freePort();
  // e.g. BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the server.
  const nodeArgs = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      SLIPWAY,
      'server',
      '--data-dir',
      dataDir,
      '--port',
      String(port),
      '--executor',
      'local',
      '--global-limit',
      String(globalLimit),
      '--quiet',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
  );
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  defer?.(stop);
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 60_000);
    const onData = (chunk) => {
      output += chunk;
      const token = /Created the first admin token[^\n]*\n\s*(\S+)/.exec(output)?.[1];
      const url = /Slipway listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (token && url) {
        clearTimeout(timer);
        resolve({ url, token });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`server exited with ${code}:\n${output}`)));
  });
  const { url, token } = await started.catch(async (error) => {
    await stop();
    throw error;
  });
  const api = async (method, path, body) => {
    const response = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return text === '' ? undefined : JSON.parse(text);
  };
  return {
    url,
    token,
    api,
    /** CPU time of the server process (ms): its own, and its ended children's (git, steps). */
    cpu: () => processCpu(child.pid),
    stop,
  };
}

/** Every build of a project, newest first, through the paged list. */
export async function allBuilds(server, project) {
  const builds = [];
  let cursor = null;
  do {
    const page = await server.api(
      'GET',
      `/projects/${project}/builds?limit=500${cursor ? `&before=${cursor}` : ''}`,
    );
    builds.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== null);
  return builds;
}

/**
 * Follows a build's SSE log until the stream ends; `onEvent(event, data)` returns false to stop.
 * `format: 'line'` asks for one `line` event per line (simple to match on) instead of batches.
 */
export async function followSse(server, buildId, onEvent, { format } = {}) {
  const controller = new AbortController();
  const query = format === undefined ? '' : `&format=${format}`;
  const response = await fetch(`${server.url}/api/v1/builds/${buildId}/logs?follow=1${query}`, {
    headers: { authorization: `Bearer ${server.token}`, accept: 'text/event-stream' },
    signal: controller.signal,
  });
  if (!response.ok) throw new Error(`GET /builds/${buildId}/logs?follow=1: ${response.status}`);
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = 'message';
        const data = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event: ')) event = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (!onEvent(event, data.join('\n'))) return;
      }
    }
  } finally {
    controller.abort();
  }
}
