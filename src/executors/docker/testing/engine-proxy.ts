/**
 * A unix-socket proxy in front of a real engine that can make chosen requests slow, unanswered
 * or dropped: how tests reproduce a loaded engine (Podman 4.3 answers `/version` in 2–3 s under
 * load) without loading the machine. It forwards bytes both ways untouched, so everything else,
 * attach and hijacked streams included, works as against the engine itself.
 *
 * The rule sees each request line (`GET /v1.41/version HTTP/1.1`) where a request starts. The
 * engine's clients send one request at a time per connection and wait for its answer, so
 * holding a request back holds back its answer.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What to do with one request: forward it, forward it after a delay, never answer, or hang up. */
export type ProxyAction = 'pass' | 'hang' | 'drop' | { delayMs: number };

export interface EngineProxy {
  /** `unix:///…/engine.sock`, to give as `--engine`. */
  address: string;
  socketPath: string;
  /** Request lines seen so far, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

/** Matches `/version` and `/v1.41/version` (any API version prefix), with or without a query. */
export const VERSION_PATH = /^GET (\/v[\d.]+)?\/version[ ?]/;
/** Matches `/_ping` with any API version prefix. */
export const PING_PATH = /^(GET|HEAD) (\/v[\d.]+)?\/_ping[ ?]/;

/** Starts a proxy to the engine listening on `upstreamSocket`. */
export async function startEngineProxy(
  upstreamSocket: string,
  rule: (requestLine: string) => ProxyAction,
): Promise<EngineProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-engine-proxy-'));
  const socketPath = join(dir, 'engine.sock');
  const requests: string[] = [];
  const open = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((client) => {
    const upstream = connect(upstreamSocket);
    open.add(client);
    open.add(upstream);
    const closeBoth = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    upstream.pipe(client);
    // Request bytes go through a queue so that a held-back request keeps its order.
    let queue = Promise.resolve();
    client.on('data', (chunk: Buffer) => {
      const line = requestLine(chunk);
      const action = line === undefined ? 'pass' : rule(line);
      if (line !== undefined) requests.push(line);
      queue = queue.then(
        () =>
          new Promise<void>((resolve) => {
            if (action === 'pass') {
              upstream.write(chunk);
              return resolve();
            }
            if (action === 'drop') {
              closeBoth();
              return resolve();
            }
            if (action === 'hang') return; // this connection never answers again
            const timer = setTimeout(() => {
              timers.delete(timer);
              upstream.write(chunk);
              resolve();
            }, action.delayMs);
            timers.add(timer);
          }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, resolve);
  });
  return {
    address: `unix://${socketPath}`,
    socketPath,
    requests,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The request line when `chunk` starts an HTTP request, else undefined (a body, a stream). */
function requestLine(chunk: Buffer): string | undefined {
  const head = chunk.subarray(0, 512).toString('latin1');
  const match = /^(GET|HEAD|POST|PUT|DELETE|PATCH) \S+ HTTP\/1\.[01]/.exec(head);
  return match?.[0];
}
