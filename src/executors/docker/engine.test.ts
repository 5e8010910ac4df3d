import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RecordingSink } from '../executor.case.js';
import { runStep } from '../lifecycle.js';
import type { BuildSpec, StepSpec } from '../types.js';
import { createDockerClient } from './client.js';
import { DockerExecutor } from './docker-executor.js';
import {
  EngineUnavailableError,
  START_ENGINE_HINT,
  discoverEngine,
  doctorReport,
  formatDoctorReport,
  parseEngineAddress,
  probeEngine,
} from './engine.js';
import { PING_PATH, VERSION_PATH, startEngineProxy, type EngineProxy } from './testing/engine-proxy.js';
import { enginePlan, findTestEngine } from './testing/test-engine.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('engine discovery on a real engine', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}
const live = found.available && found.engine.endpoint.kind === 'socket' ? found : undefined;
const upstream = live?.engine.endpoint.kind === 'socket' ? live.engine.endpoint.socketPath : '';

/** Closed after each test. */
const proxies: EngineProxy[] = [];
const proxy = async (rule: Parameters<typeof startEngineProxy>[1]) => {
  const started = await startEngineProxy(upstream, rule);
  proxies.push(started);
  return started;
};
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

describe.skipIf(!live)('engine discovery on a loaded engine (real engine behind a proxy)', () => {
  it('finds an engine whose /version takes 2.5 s, with its version', async () => {
    const slow = await proxy((line) => (VERSION_PATH.test(line) ? { delayMs: 2_500 } : 'pass'));
    const engine = await discoverEngine({ engine: slow.address, env: {} });
    expect(engine).toMatchObject({
      address: slow.address,
      source: 'engine option',
      product: live!.engine.product,
      version: live!.engine.version,
    });
    expect(engine.versionError).toBeUndefined();
    // The delay was applied: /version went through the proxy after _ping.
    expect(slow.requests.some((l) => PING_PATH.test(l))).toBe(true);
    expect(slow.requests.some((l) => VERSION_PATH.test(l))).toBe(true);
  });

  it('reports an engine whose /version never answers as usable, version unknown and why', async () => {
    const mute = await proxy((line) => (VERSION_PATH.test(line) ? 'hang' : 'pass'));
    const report = await doctorReport({
      engine: mute.address,
      env: {},
      pingTimeoutMs: 5_000,
      engineTimeoutMs: 1_000,
    });
    expect(report.engine).toMatchObject({ address: mute.address, version: 'unknown' });
    expect(report.engine?.versionError).toBe('it answered _ping, but /version: no answer within 1000 ms');
    const docker = report.executors.find((e) => e.name === 'docker');
    expect(docker?.usable).toBe(true);
    expect(docker?.detail).toBe(
      `engine at ${mute.address} (engine option), version unknown: it answered _ping, but /version: no answer within 1000 ms`,
    );
    expect(formatDoctorReport(report)).not.toContain('Start a container engine');
  });

  it('tries _ping again before declaring an address dead', async () => {
    let pings = 0;
    const flaky = await proxy((line) => (PING_PATH.test(line) && ++pings <= 2 ? 'drop' : 'pass'));
    const engine = await discoverEngine({ engine: flaky.address, env: {} });
    expect(engine.version).toBe(live!.engine.version);
    expect(pings).toBe(3);
  });

  it('keeps steps running while the engine answers health pings slowly', async () => {
    // Each health ping takes 1 s, ten times the check interval: slow, not dead.
    const slowPing = await proxy((line) => (PING_PATH.test(line) ? { delayMs: 1_000 } : 'pass'));
    const executor = new DockerExecutor({
      client: createDockerClient(parseEngineAddress(slowPing.address)),
      engineCheckMs: 100,
      stopGraceMs: 500,
    });
    const spec: BuildSpec = {
      buildId: `engine-test-${process.pid}-${Date.now().toString(36)}`,
      project: 'acme/app',
      branch: 'main',
      image: live!.image,
      services: [],
    };
    const step: StepSpec = {
      key: 'test/slow-pings',
      stage: 'test',
      step: 'slow-pings',
      commands: ['sleep 3', 'echo survived'],
      env: {},
      secrets: {},
      attempt: 1,
    };
    const handle = await executor.prepare(spec);
    try {
      const sink = new RecordingSink();
      const exit = await runStep(executor, handle, step, sink, new AbortController().signal);
      expect(exit).toMatchObject({ kind: 'exited', exitCode: 0 });
      expect(sink.has('survived')).toBe(true);
      expect(slowPing.requests.filter((l) => PING_PATH.test(l)).length).toBeGreaterThan(1);
    } finally {
      await executor.destroy(handle);
    }
  }, 120_000);
});

describe('engine discovery: dead addresses', () => {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-dead-engine-'));
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    await rm(dir, { recursive: true, force: true });
  });
  const listen = async (name: string, onConnection: (socket: Socket) => void): Promise<string> => {
    const path = join(dir, name);
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      onConnection(socket);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return path;
  };

  it('says there is no socket, with how to start an engine', async () => {
    const err = await discoverEngine({ engine: join(dir, 'none.sock'), env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as EngineUnavailableError).attempts).toEqual([
      { address: `unix://${join(dir, 'none.sock')}`, source: 'engine option', reason: 'no socket there' },
    ]);
    expect((err as Error).message).toContain(START_ENGINE_HINT);
  });

  it('says how long and how often it waited for a socket that never answers', async () => {
    let connections = 0;
    const path = await listen('mute.sock', () => {
      connections += 1; // accepted, never answered
    });
    const result = await probeEngine(path, 'engine option', { env: {}, pingTimeoutMs: 300, pingTries: 2 });
    expect(result).toEqual({
      address: `unix://${path}`,
      source: 'engine option',
      reason: 'no answer to _ping within 300 ms after 2 tries',
    });
    // The listener may see the last connection after the probe gave up on it.
    await vi.waitFor(() => expect(connections).toBe(2), { timeout: 10_000 });
  });

  it('says the connection was closed without an answer, after every try', async () => {
    let connections = 0;
    const path = await listen('hangup.sock', (socket) => {
      connections += 1;
      socket.once('data', () => socket.destroy());
    });
    const err = await discoverEngine({ engine: path, env: {} }).catch((e: unknown) => e);
    expect((err as EngineUnavailableError).attempts[0]?.reason).toMatch(
      /^closed the connection without answering _ping \(.*\) after 3 tries$/,
    );
    expect(connections).toBe(3);
  });

  it('does not tell to start an engine when something else answers there', async () => {
    const path = join(dir, 'http.sock');
    const http = createHttpServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not here');
    });
    await new Promise<void>((resolve) => http.listen(path, resolve));
    try {
      const err = await discoverEngine({ engine: path, env: {} }).catch((e: unknown) => e);
      expect((err as EngineUnavailableError).attempts[0]?.reason).toMatch(
        /^answered _ping with HTTP 404 \(not a Docker Engine API\?\)/,
      );
      expect((err as Error).message).not.toContain('Start a container engine');
    } finally {
      await new Promise((resolve) => http.close(resolve));
    }
  });
});
