/**
 * Harness for the server reliability tests: the built `slipway server` as a real child process
 * (spawn, `kill -9`, restart on the same port and data dir), the REST API over `fetch`, and a
 * Server-Sent Events reader for the live log. Needs `npm run build`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fromLogBatch } from '../../src/contract/log-stream.js';
import type { Build, BuildDetail, LogLine, LogPage, Page, Queue } from '../../src/server/api/dto.js';
import { ROOT, SLIPWAY_BIN } from '../cli-helpers.js';

export const execFileAsync = promisify(execFile);

/** Statuses after which a build never changes again. */
export const FINISHED: ReadonlySet<string> = new Set([
  'success',
  'failure',
  'error',
  'cancelled',
  'skipped',
  'lost',
]);

export interface ServerOptions {
  /** Default: a fresh temporary directory, removed by `cleanup()`. */
  dataDir?: string;
  /** Default: a free port on 127.0.0.1 (chosen here, so a restart can reuse it). */
  port?: number;
  database?: string;
  executor?: 'auto' | 'local' | 'docker' | 'kubernetes';
  /** More arguments of `slipway server` (e.g. the kubernetes options). */
  args?: string[];
  engine?: string;
  globalLimit?: number;
  replicaId?: string;
  /** `--blobs`: where logs and artifacts live (shared between replicas). */
  blobs?: string;
  /** `--build-user`: who local steps run as (default: the server's default, `slipway-build`). */
  buildUser?: string;
  /**
   * `--workspace-root`: where local builds' workspaces and clones live. Default: a temporary
   * directory removed by `cleanup()`; `null`: the server's own default.
   */
  workspaceRoot?: string | null;
  /** Extra environment of the server process (on top of this process's). */
  env?: Record<string, string>;
}

/** Servers and directories this test process created, for `cleanup()`. */
const started = new Set<ServerProcess>();
/**
 * Servers killed (`kill9`) that no `restart()` succeeded: their steps may still run (a test
 * that failed between the kill and the restart), for `cleanup()` to take over and cancel.
 */
const abandoned = new Set<ServerProcess>();
const ownedDirs = new Set<string>();

/** A free TCP port on loopback (closed again, then given to the server). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A temporary directory removed by `cleanup()`. */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `slipway-${prefix}-`));
  ownedDirs.add(dir);
  return dir;
}

/**
 * One `slipway server` child process. The first start of a data dir prints the admin token; a
 * restart on the same data dir keeps using it.
 */
export class ServerProcess {
  private constructor(
    readonly options: Required<Pick<ServerOptions, 'dataDir' | 'port'>> & ServerOptions,
    readonly child: ChildProcess,
    readonly url: string,
    readonly token: string,
    private readonly output: { text: string },
    private readonly exited: Promise<number | null>,
  ) {}

  /** Starts a server and resolves once it listens (and, on a fresh data dir, printed the token). */
  static async start(options: ServerOptions = {}, knownToken?: string): Promise<ServerProcess> {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'bin.js')))
      throw new Error('dist/ is missing: run `npm run build` first');
    const full = {
      ...options,
      dataDir: options.dataDir ?? (await tempDir('server-data')),
      port: options.port ?? (await freePort()),
      workspaceRoot:
        options.workspaceRoot === undefined ? await tempDir('workspaces') : options.workspaceRoot,
    };
    const args = [SLIPWAY_BIN, 'server', '--data-dir', full.dataDir, '--port', String(full.port), '--quiet'];
    args.push('--executor', full.executor ?? 'local');
    if (full.database !== undefined) args.push('--database', full.database);
    if (full.engine !== undefined) args.push('--engine', full.engine);
    if (full.globalLimit !== undefined) args.push('--global-limit', String(full.globalLimit));
    if (full.replicaId !== undefined) args.push('--replica-id', full.replicaId);
    if (full.blobs !== undefined) args.push('--blobs', full.blobs);
    if (full.buildUser !== undefined) args.push('--build-user', full.buildUser);
    if (full.workspaceRoot !== null) args.push('--workspace-root', full.workspaceRoot);
    args.push(...(full.args ?? []));
    const child = spawn(process.execPath, args, {
      cwd: full.dataDir,
      env: { ...process.env, NO_COLOR: '1', ...full.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = { text: '' };
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ready = await new Promise<{ url: string; token: string }>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`slipway server did not get ready within 60 s:\n${output.text}`));
      }, 60_000);
      const onChunk = (chunk: Buffer) => {
        output.text += chunk.toString();
        const url = /Slipway listening on (http:\/\/\S+)/.exec(output.text)?.[1];
        if (url === undefined) return;
        clearTimeout(timer);
        const token = /Created the first admin token[^\n]*\n\s*(\S+)/.exec(output.text)?.[1] ?? knownToken;
        if (token === undefined) reject(new Error(`slipway server printed no admin token:\n${output.text}`));
        else resolve({ url, token });
      };
      child.stdout.on('data', onChunk);
      child.stderr.on('data', onChunk);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`slipway server exited with ${code} before it was ready:\n${output.text}`));
      });
    });
    const server = new ServerProcess(full, child, ready.url, ready.token, output, exited);
    started.add(server);
    return server;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the process printed so far (stdout and stderr). */
  get log(): string {
    return this.output.text;
  }

  /** An API client with this server's admin token (or another token). */
  api(token = this.token): Api {
    return new Api(this.url, token);
  }

  /** `kill -9`: no shutdown of any kind; resolves once the process is gone. */
  async kill9(): Promise<void> {
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
    started.delete(this);
    abandoned.add(this);
  }

  /** SIGTERM (the server leaves running builds to its successor and exits), then SIGKILL after 20 s. */
  async stop(): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
      await this.exited;
      clearTimeout(timer);
    }
    started.delete(this);
  }

  /**
   * Cancels every build the server still runs or queues and waits (up to `limitMs`) until they
   * ended: since SIGTERM detaches running builds, a test that stops a server mid-build would
   * otherwise leave their step containers and processes running.
   */
  async cancelBuilds(limitMs = 60_000): Promise<void> {
    const api = this.api();
    const active = async () => {
      const queue = await api.ok<Queue>('GET', '/queue');
      return [...queue.running, ...queue.queued];
    };
    for (const build of await active()) await api.request('POST', `/builds/${build.id}/cancel`, { json: {} });
    await waitFor(
      'the cancelled builds to end',
      async () => ((await active()).length === 0 ? true : undefined),
      limitMs,
      200,
    );
  }

  /** Cancels what the server still runs (best effort), then `stop()`: nothing is left for a successor. */
  async shutdown(): Promise<void> {
    if (this.running) await this.cancelBuilds().catch(() => undefined);
    await this.stop();
  }

  /** A new process with the same options: same port, data dir and database. */
  async restart(): Promise<ServerProcess> {
    if (this.running) throw new Error('stop or kill the server before restarting it');
    const next = await ServerProcess.start(this.options, this.token);
    abandoned.delete(this);
    return next;
  }
}

/**
 * Cancels the builds of every server this process started and stops it (a killed one that no
 * live server shares a data dir or database with is started again first, so that what it left
 * running is re-attached and cancelled), then removes the temporary directories.
 */
export async function cleanup(): Promise<void> {
  const store = (s: ServerProcess) => s.options.database ?? s.options.dataDir;
  const live = new Set([...started].map(store));
  for (const server of abandoned) {
    if (live.has(store(server))) continue;
    live.add(store(server));
    await server.restart().catch(() => undefined);
  }
  abandoned.clear();
  await Promise.all([...started].map((server) => server.shutdown()));
  await Promise.all([...ownedDirs].map((dir) => rm(dir, { recursive: true, force: true })));
  ownedDirs.clear();
}

export interface Answer<T = unknown> {
  status: number;
  body: T;
  text: string;
  contentType: string | null;
}

export interface RequestOptions {
  /** JSON-encoded and sent as `application/json`. */
  json?: unknown;
  /** Sent as is (with `contentType`, default `application/json`). */
  raw?: string | Uint8Array;
  contentType?: string;
  /** Overrides the client's token; `null` sends no Authorization header. */
  token?: string | null;
  headers?: Record<string, string>;
}

/** The REST API over `fetch`, returning status and parsed body without throwing on 4xx/5xx. */
export class Api {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<Answer<T>> {
    const token = options.token === undefined ? this.token : options.token;
    const headers: Record<string, string> = { ...options.headers };
    if (token !== null) headers.authorization = `Bearer ${token}`;
    let body: string | Uint8Array | undefined;
    if (options.json !== undefined) body = JSON.stringify(options.json);
    else if (options.raw !== undefined) body = options.raw;
    if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    const response = await fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers,
      ...(body !== undefined && { body }),
    });
    const text = await response.text();
    const contentType = response.headers.get('content-type');
    let parsed: unknown = text;
    if (contentType?.includes('json') && text !== '') parsed = JSON.parse(text);
    return { status: response.status, body: parsed as T, text, contentType };
  }

  /** A request that must succeed (2xx); returns the parsed body. */
  async ok<T>(method: string, path: string, json?: unknown): Promise<T> {
    const answer = await this.request<T>(method, path, json === undefined ? {} : { json });
    if (answer.status >= 300) throw new Error(`${method} ${path}: ${answer.status} ${answer.text}`);
    return answer.body;
  }

  /** Every build of a project (all pages), oldest first. */
  async allBuilds(project: string): Promise<Build[]> {
    const builds: Build[] = [];
    let cursor: string | null = null;
    do {
      const query: string = `limit=500${cursor !== null ? `&before=${cursor}` : ''}`;
      const page: Page<Build> = await this.ok<Page<Build>>('GET', `/projects/${project}/builds?${query}`);
      builds.push(...page.items);
      cursor = page.nextCursor;
    } while (cursor !== null);
    return builds.reverse();
  }

  build(id: number): Promise<BuildDetail> {
    return this.ok<BuildDetail>('GET', `/builds/${id}`);
  }

  /** Every stored log line of a build, through the JSON pages. */
  async storedLog(id: number): Promise<LogLine[]> {
    const lines: LogLine[] = [];
    let after = 0;
    for (;;) {
      const page = await this.ok<LogPage>('GET', `/builds/${id}/logs?after=${after}&limit=5000`);
      lines.push(...page.lines);
      if (page.lines.length === 0) return lines;
      after = page.last;
    }
  }
}

export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

export interface LogFollower {
  /** Line events received so far, in order. */
  lines: LogLine[];
  /** Resolves when the stream ends: `end` after the server's `end` event, else `closed`/`error`. */
  done: Promise<'end' | 'closed' | 'error'>;
  stop(): void;
}

/**
 * Follows `GET /builds/{id}/logs?follow=1` and records every line (of `lines` or `line` events) as it arrives. A
 * killed server ends the stream with `closed` or `error`, never a rejection.
 */
export function followLog(
  api: Api,
  buildId: number,
  options: { lastEventId?: number; onEvent?: (event: SseEvent) => void } = {},
): LogFollower {
  const lines: LogLine[] = [];
  const controller = new AbortController();
  const done = (async (): Promise<'end' | 'closed' | 'error'> => {
    try {
      const response = await fetch(`${api.baseUrl}/api/v1/builds/${buildId}/logs?follow=1`, {
        headers: {
          authorization: `Bearer ${api.token}`,
          accept: 'text/event-stream',
          ...(options.lastEventId !== undefined && { 'last-event-id': String(options.lastEventId) }),
        },
        signal: controller.signal,
      });
      if (response.status !== 200 || response.body === null) return 'error';
      for await (const event of sseEvents(response.body)) {
        options.onEvent?.(event);
        if (event.event === 'lines') lines.push(...fromLogBatch(JSON.parse(event.data)));
        if (event.event === 'line') lines.push(JSON.parse(event.data) as LogLine);
        if (event.event === 'end') return 'end';
      }
      return 'closed';
    } catch {
      return 'error';
    }
  })();
  return { lines, done, stop: () => controller.abort() };
}

/** Parses a `text/event-stream` body into events (the subset Slipway sends: event, id, data). */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  let id: string | undefined;
  let data: string[] = [];
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '');
      buffer = buffer.slice(newline + 1);
      if (line === '') {
        if (data.length > 0) yield { event, id, data: data.join('\n') };
        event = 'message';
        id = undefined;
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'id') id = value;
      else if (field === 'data') data.push(value);
    }
  }
}

/** Polls until `probe` returns a value other than undefined; fails after `limitMs` with `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  limitMs = 60_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Waits until the build has finished (any terminal status) and returns it. */
export function buildFinished(api: Api, id: number, limitMs = 120_000): Promise<Build> {
  return waitFor(
    `build ${id} to finish`,
    async () => {
      const build = await api.build(id);
      return FINISHED.has(build.status) ? build : undefined;
    },
    limitMs,
    200,
  );
}

/** Waits until every build of the project is finished (and there are `count` of them). */
export function allFinished(api: Api, project: string, count: number, limitMs = 120_000): Promise<Build[]> {
  return waitFor(
    `${count} finished builds of ${project}`,
    async () => {
      const builds = await api.allBuilds(project);
      return builds.length === count && builds.every((b) => FINISHED.has(b.status)) ? builds : undefined;
    },
    limitMs,
    250,
  );
}

/**
 * The most builds whose [startedAt, finishedAt] intervals overlap at one instant. A build
 * finishing at the same millisecond another starts does not overlap it.
 */
export function maxOverlap(builds: readonly Build[]): number {
  const events: [number, number][] = [];
  for (const b of builds) {
    if (b.startedAt === null || b.finishedAt === null) continue;
    events.push([Date.parse(b.startedAt), +1], [Date.parse(b.finishedAt), -1]);
  }
  events.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let now = 0;
  let most = 0;
  for (const [, delta] of events) {
    now += delta;
    most = Math.max(most, now);
  }
  return most;
}

/**
 * Samples `GET /queue` on the given servers until stopped; records the most active builds
 * (pending, running, waiting) seen at once.
 */
export function sampleQueue(
  apis: readonly Api[],
  everyMs = 25,
): { stop(): Promise<{ maxActive: number; samples: number }> } {
  let stopped = false;
  let maxActive = 0;
  let samples = 0;
  const loop = (async () => {
    while (!stopped) {
      for (const api of apis) {
        const answer = await api.request<{ running: Build[] }>('GET', '/queue').catch(() => undefined);
        if (answer?.status === 200) {
          samples += 1;
          maxActive = Math.max(maxActive, answer.body.running.length);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      return { maxActive, samples };
    },
  };
}

/** `n` → `[1, 2, …, n]`. */
export function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}
