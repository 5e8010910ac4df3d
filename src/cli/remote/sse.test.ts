import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { followSse, type SseEvent } from './sse.js';

/**
 * A minimal SSE test server: it speaks the protocol (ids, `Last-Event-ID`, an `end` event) over
 * a numbered list of events, and lets each test decide how every connection misbehaves. It is
 * a fixture for the reader, not the Slipway server.
 */
class MinimalSseTestServer {
  readonly lastEventIds: (string | undefined)[] = [];
  private server: Server | undefined;
  port = 0;

  constructor(
    private readonly total: number,
    /** Per connection (0-based): how many events to send before cutting it, or what to answer. */
    private readonly plan: (connection: number) => {
      send?: number;
      partial?: boolean;
      stall?: boolean;
      status?: number;
      /** End the stream with a `lag` event after `send` events, as the server does to a slow reader. */
      lag?: boolean;
    },
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const connection = this.lastEventIds.length;
    const header = req.headers['last-event-id'];
    this.lastEventIds.push(typeof header === 'string' ? header : undefined);
    const step = this.plan(connection);
    if (step.status !== undefined) {
      res.writeHead(step.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'nope', message: `status ${step.status}` } }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const from = Number(header ?? 0) + 1;
    const to = Math.min(this.total, from - 1 + (step.send ?? Infinity));
    let text = ': connected\n\n';
    for (let id = from; id <= to; id += 1) text += `id: ${id}\nevent: line\ndata: line ${id}\n\n`;
    if (to === this.total && step.send === undefined) {
      res.end(`${text}event: end\ndata:\n\n`);
      return;
    }
    if (step.lag) {
      res.end(`${text}event: lag\ndata: {"after":${to},"message":"behind"}\n\n`);
      return;
    }
    // A half-sent event: the reader must not count it, or the resume would skip it.
    if (step.partial) text += `id: ${to + 1}\nevent: line\ndata: line ${to + 1}`;
    res.write(text);
    if (!step.stall) setImmediate(() => res.socket?.destroy());
  }
}

async function collect(events: AsyncIterable<SseEvent>): Promise<SseEvent[]> {
  const all: SseEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

const lines = (events: SseEvent[]) => events.filter((e) => e.event === 'line').map((e) => e.data);
const expectedLines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`);

describe('followSse against a minimal SSE test server', () => {
  let server: MinimalSseTestServer | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it('reconnects with Last-Event-ID after a dropped connection: no line missed, none repeated', async () => {
    server = new MinimalSseTestServer(10, (c) =>
      c === 0 ? { send: 3, partial: true } : c === 1 ? { send: 4 } : {},
    );
    await server.start();
    const delays: number[] = [];
    const events = await collect(
      followSse(server.url, {
        sleep: (ms) => {
          delays.push(ms);
          return Promise.resolve();
        },
      }),
    );
    expect(lines(events)).toEqual(expectedLines(10));
    expect(events.at(-1)?.event).toBe('end');
    expect(server.lastEventIds).toEqual([undefined, '3', '7']);
    // Each connection delivered data, so each retry starts again from the shortest delay.
    expect(delays).toEqual([250, 250]);
  });

  it('resumes at once after a `lag` event, without a disconnect notice or a pause', async () => {
    server = new MinimalSseTestServer(9, (c) => (c < 2 ? { send: 3, lag: true } : {}));
    await server.start();
    const notes: string[] = [];
    const events = await collect(
      followSse(server.url, {
        onDisconnect: () => notes.push('lost'),
        sleep: () => Promise.reject(new Error('a lag must not wait')),
      }),
    );
    expect(lines(events)).toEqual(expectedLines(9));
    expect(events.map((e) => e.event)).not.toContain('lag');
    expect(server.lastEventIds).toEqual([undefined, '3', '6']);
    expect(notes).toEqual([]);
  });

  it('resumes from a given id on the first request', async () => {
    server = new MinimalSseTestServer(5, () => ({}));
    await server.start();
    const events = await collect(followSse(server.url, { lastEventId: '3' }));
    expect(lines(events)).toEqual(['line 4', 'line 5']);
    expect(server.lastEventIds).toEqual(['3']);
  });

  it('survives a server restart: backs off while the port is closed, then resumes', async () => {
    server = new MinimalSseTestServer(6, (c) => (c === 0 ? { send: 2, stall: true } : {}));
    await server.start();
    const port = server.port;
    const delays: number[] = [];
    const notes: string[] = [];
    const events: SseEvent[] = [];
    for await (const event of followSse(server.url, {
      onDisconnect: () => notes.push('lost'),
      onReconnect: () => notes.push('back'),
      sleep: async (ms) => {
        delays.push(ms);
        // Two attempts find the port closed; then the server is back on the same port.
        if (delays.length === 3) await server!.start(port);
      },
    })) {
      events.push(event);
      if (event.id === '2') await server.stop();
    }
    expect(lines(events)).toEqual(expectedLines(6));
    expect(server.lastEventIds).toEqual([undefined, '2']);
    expect(delays).toEqual([250, 500, 1000]);
    expect(notes).toEqual(['lost', 'back']);
  });

  it('gives up after the configured time without a connection, with the delay capped', async () => {
    server = new MinimalSseTestServer(1, () => ({}));
    await server.start();
    const url = server.url;
    await server.stop();
    let clock = 0;
    const delays: number[] = [];
    const follow = followSse(url, {
      giveUpAfterMs: 10_000,
      now: () => clock,
      sleep: (ms) => {
        delays.push(ms);
        clock += ms;
        return Promise.resolve();
      },
      unreachable: () => new Error('gone for good'),
    });
    await expect(collect(follow)).rejects.toThrow('gone for good');
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 5000]);
  });

  it('retries a 503 but stops at once on a 404', async () => {
    server = new MinimalSseTestServer(2, (c) => (c === 0 ? { status: 503 } : {}));
    await server.start();
    expect(lines(await collect(followSse(server.url, { sleep: () => Promise.resolve() })))).toEqual(
      expectedLines(2),
    );

    await server.stop();
    server = new MinimalSseTestServer(2, () => ({ status: 404 }));
    await server.start();
    const follow = followSse(server.url, {
      toError: (response, body) => new Error(`${response.status}: ${body}`),
    });
    await expect(collect(follow)).rejects.toThrow('404: {"error":{"code":"nope","message":"status 404"}}');
    expect(server.lastEventIds).toHaveLength(1);
  });

  it('reconnects when a connection goes silent for longer than the idle timeout', async () => {
    server = new MinimalSseTestServer(4, (c) => (c === 0 ? { send: 1, stall: true } : {}));
    await server.start();
    const events = await collect(
      followSse(server.url, { idleTimeoutMs: 200, sleep: () => Promise.resolve() }),
    );
    expect(lines(events)).toEqual(expectedLines(4));
    expect(server.lastEventIds).toEqual([undefined, '1']);
  });

  it('stops when the consumer stops reading', async () => {
    server = new MinimalSseTestServer(100, (c) => (c === 0 ? { send: 5, stall: true } : {}));
    await server.start();
    const seen: string[] = [];
    for await (const event of followSse(server.url)) {
      seen.push(event.id);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['1', '2']);
    expect(server.lastEventIds).toHaveLength(1);
  });
});
