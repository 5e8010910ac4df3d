import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { startTestApi } from './api/testing/harness.js';
import { formatLogEntry, prettyLogStream, type PendingRequests } from './console-log.js';

const TIME = new Date(2024, 4, 1, 12, 4, 5).getTime();

describe('formatLogEntry', () => {
  it('prints one line per request: method, url, status, time taken', () => {
    const pending: PendingRequests = new Map();
    const incoming = {
      level: 30,
      time: TIME,
      reqId: 'req-1',
      req: { method: 'GET', url: '/api/v1/queue', host: 'x', remoteAddress: '127.0.0.1' },
      msg: 'incoming request',
    };
    expect(formatLogEntry(incoming, pending)).toBeUndefined();
    const done = {
      level: 30,
      time: TIME,
      reqId: 'req-1',
      res: { statusCode: 200 },
      responseTime: 3.14,
      msg: 'request completed',
    };
    expect(formatLogEntry(done, pending)).toBe('12:04:05 GET /api/v1/queue 200 3.1ms');
    expect(pending.size).toBe(0);
    expect(formatLogEntry({ ...done, reqId: 'req-2', responseTime: 1234.5 }, pending)).toBe(
      '12:04:05 ? ? 200 1235ms',
    );
  });

  it('prints other entries with their level, and a server fault with its message and stack', () => {
    const pending: PendingRequests = new Map();
    expect(formatLogEntry({ level: 40, time: TIME, msg: 'slow disk' }, pending)).toBe(
      '12:04:05 WARN slow disk',
    );
    const error = new Error('database is locked');
    const line = formatLogEntry(
      {
        level: 50,
        time: TIME,
        reqId: 'req-9',
        req: { method: 'POST', url: '/api/v1/projects' },
        err: { type: 'Error', message: error.message, stack: error.stack },
        msg: 'request failed',
      },
      pending,
    )!;
    const [first, ...frames] = line.split('\n');
    expect(first).toBe('12:04:05 ERROR request failed (POST /api/v1/projects): database is locked');
    expect(frames.length).toBeGreaterThan(0);
    for (const frame of frames) expect(frame).toMatch(/^ {4}at /);
  });

  it('keeps what pending holds bounded', () => {
    const pending: PendingRequests = new Map();
    for (let i = 0; i < 10_050; i += 1)
      formatLogEntry({ reqId: `r${i}`, req: { method: 'GET', url: '/' }, msg: 'incoming request' }, pending);
    expect(pending.size).toBe(10_000);
  });
});

describe('prettyLogStream (a real Fastify app logging through it)', () => {
  it('turns the JSON request log into one readable line per request', async () => {
    const sink = new PassThrough();
    let text = '';
    const lines = (n: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (text.split('\n').filter((l) => l !== '').length >= n) resolve();
        };
        sink.on('data', (chunk: Buffer) => {
          text += chunk.toString();
          check();
        });
        check();
      });
    const twoLines = lines(2);
    const api = await startTestApi('sqlite', { logger: { stream: prettyLogStream(sink) } });
    try {
      expect((await api.app.inject({ url: '/healthz' })).statusCode).toBe(200);
      expect((await api.app.inject({ url: '/api/v1/nope?access_token=s3cret' })).statusCode).toBe(404);
      await twoLines;
    } finally {
      await api.close();
    }
    const printed = text.split('\n').filter((l) => l !== '');
    expect(printed[0]).toMatch(/^\d\d:\d\d:\d\d GET \/healthz 200 \d+(\.\d)?ms$/);
    expect(printed[1]).toMatch(
      /^\d\d:\d\d:\d\d GET \/api\/v1\/nope\?access_token=\[redacted\] 404 \d+(\.\d)?ms$/,
    );
    expect(text).not.toContain('{');
    expect(text).not.toContain('s3cret');
  });

  it('passes lines that are not JSON through, and joins JSON split across writes', async () => {
    const sink = new PassThrough();
    let text = '';
    sink.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const stream = prettyLogStream(sink);
    const entry = JSON.stringify({ level: 30, time: TIME, msg: 'server listening' });
    await new Promise<void>((resolve) => stream.write(`plain text\n${entry.slice(0, 10)}`, () => resolve()));
    await new Promise<void>((resolve) => stream.write(`${entry.slice(10)}\n`, () => resolve()));
    expect(text).toBe('plain text\n12:04:05 INFO server listening\n');
  });
});
