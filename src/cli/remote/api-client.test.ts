import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ApiClientError,
  DEFAULT_SERVER,
  errorFromResponse,
  NO_TOKEN_MESSAGE,
  projectPath,
  resolveConnection,
  SlipwayClient,
} from './api-client.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

/** A stub HTTP server answering whatever each test wants, to see what the client makes of it. */
async function stub(handler: Handler): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

async function failure(promise: Promise<unknown>): Promise<ApiClientError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ApiClientError) return error;
    throw error;
  }
  throw new Error('expected the call to fail');
}

let servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  servers = [];
});

async function clientFor(handler: Handler, token?: string): Promise<SlipwayClient> {
  const { url, server } = await stub(handler);
  servers.push(server);
  return new SlipwayClient({ server: url, token });
}

describe('resolveConnection', () => {
  it('takes the flag over the environment over the default', () => {
    expect(resolveConnection({}, {})).toEqual({ server: DEFAULT_SERVER, token: undefined });
    const env = { SLIPWAY_SERVER: 'https://ci.example.com/slipway/', SLIPWAY_TOKEN: 'from-env' };
    expect(resolveConnection({}, env)).toEqual({
      server: 'https://ci.example.com/slipway',
      token: 'from-env',
    });
    expect(resolveConnection({ server: 'localhost:9000', token: 'from-flag' }, env)).toEqual({
      server: 'http://localhost:9000',
      token: 'from-flag',
    });
  });

  it('rejects what is not an http URL', () => {
    expect(() => resolveConnection({ server: 'ftp://x' }, {})).toThrow('expected an http:// or https:// URL');
    expect(() => resolveConnection({ server: 'http://' }, {})).toThrow('is not a URL');
  });
});

describe('SlipwayClient', () => {
  it('encodes each part of a project slug', () => {
    expect(projectPath('acme/web')).toBe('/projects/acme/web');
    expect(projectPath('a b/c?d#e')).toBe('/projects/a%20b/c%3Fd%23e');
  });

  it('sends the token and JSON, and decodes the answer', async () => {
    const seen: { method?: string; url?: string; auth?: string; type?: string; body?: string } = {};
    const client = await clientFor((req, res, body) => {
      Object.assign(seen, {
        method: req.method,
        url: req.url,
        auth: req.headers.authorization,
        type: req.headers['content-type'],
        body,
      });
      sendJson(res, 201, { id: 7, project: 'acme/web', number: 42, status: 'queued' });
    }, 's3cret');
    const build = await client.trigger('acme/web', { branch: 'main', commit: 'abc' });
    expect(build).toMatchObject({ id: 7, number: 42, status: 'queued' });
    expect(seen).toEqual({
      method: 'POST',
      url: '/api/v1/projects/acme/web/builds',
      auth: 'Bearer s3cret',
      type: 'application/json',
      body: '{"branch":"main","commit":"abc"}',
    });
  });

  it('passes list filters as query parameters', async () => {
    const urls: string[] = [];
    const client = await clientFor((req, res) => {
      urls.push(req.url ?? '');
      sendJson(res, 200, { items: [], nextCursor: null });
    });
    await client.listBuilds({ project: 'acme/web', status: 'failure', limit: 5, before: 'c1' });
    await client.listBuilds({ branch: 'release/1.x' });
    expect(urls).toEqual([
      '/api/v1/projects/acme/web/builds?status=failure&limit=5&before=c1',
      '/api/v1/builds?branch=release%2F1.x',
    ]);
  });

  it('says how to fix it when nothing listens at the server address', async () => {
    const { url, server } = await stub(() => undefined);
    await new Promise((resolve) => server.close(resolve));
    const error = await failure(new SlipwayClient({ server: url, token: undefined }).queue());
    expect(error.status).toBe(0);
    expect(error.code).toBe('unreachable');
    expect(error.message).toBe(
      `cannot reach the Slipway server at ${url} (is \`slipway server\` running? set --server or SLIPWAY_SERVER)`,
    );
    expect(error.details).toEqual({ cause: 'ECONNREFUSED' });
  });

  it('maps 401 to a hint about the token, whatever the server said: none given, or refused', async () => {
    const answer: Handler = (_req, res) =>
      sendJson(res, 401, { error: { code: 'unauthorized', message: 'missing bearer token' } });
    const none = await failure((await clientFor(answer)).listTokens());
    expect([none.status, none.code, none.message]).toEqual([401, 'unauthorized', NO_TOKEN_MESSAGE]);
    const refused = await failure((await clientFor(answer, 'slp_wrong')).listTokens());
    expect([refused.status, refused.code, refused.message]).toEqual([
      401,
      'unauthorized',
      'the server refused the token (it is unknown, revoked or mistyped; check SLIPWAY_TOKEN or --token)',
    ]);
  });

  it("keeps the server's message for 403 (it names the role needed) and for 404", async () => {
    const client = await clientFor((req, res) =>
      req.method === 'POST'
        ? sendJson(res, 403, {
            error: {
              code: 'forbidden',
              message: 'creating tokens needs the admin role; this token is a viewer',
            },
          })
        : sendJson(res, 404, {
            error: { code: 'not_found', message: 'no project acme/nope', details: { slug: 'acme/nope' } },
          }),
    );
    const forbidden = await failure(client.createToken({ name: 'ci', role: 'member' }));
    expect([forbidden.status, forbidden.code, forbidden.message]).toEqual([
      403,
      'forbidden',
      'creating tokens needs the admin role; this token is a viewer',
    ]);
    const missing = await failure(client.getProject('acme/nope'));
    expect([missing.status, missing.code, missing.message, missing.details]).toEqual([
      404,
      'not_found',
      'no project acme/nope',
      { slug: 'acme/nope' },
    ]);
  });

  it("describes an error answer that is not the API's JSON", () => {
    expect(errorFromResponse(502, 'Bad Gateway', '<html>proxy</html>').message).toBe(
      'the server answered HTTP 502 Bad Gateway',
    );
    expect(errorFromResponse(500, '', '{"error":"flat"}').code).toBe('http');
  });

  it('returns nothing for 204 answers', async () => {
    const client = await clientFor((_req, res) => {
      res.writeHead(204);
      res.end();
    });
    await expect(client.deleteProject('acme/web')).resolves.toBeUndefined();
    await expect(client.revokeToken(3)).resolves.toBeUndefined();
  });

  it('decodes the live log stream into lines, status and end', async () => {
    const line = {
      seq: 1,
      stage: 'build',
      step: 'compile',
      stream: 'stdout',
      n: 1,
      time: '2024-01-01T00:00:00Z',
      text: 'hi',
    };
    const urls: (string | undefined)[] = [];
    const client = await clientFor((req, res) => {
      urls.push(req.url);
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      res.end(
        `id: 1\nevent: line\ndata: ${JSON.stringify(line)}\n\nevent: status\ndata: {"status":"success"}\n\nevent: future\ndata: x\n\nevent: end\ndata:\n\n`,
      );
    });
    const events = [];
    for await (const event of client.followLogs(7)) events.push(event);
    expect(events).toEqual([
      { type: 'line', line },
      { type: 'status', build: { status: 'success' } },
      { type: 'end' },
    ]);
    expect(urls).toEqual(['/api/v1/builds/7/logs?follow=1']);
  });

  it('reads `lines` events (the default format) as one line event per line', async () => {
    const batch = {
      runs: [
        { seq: 4, stage: 'b', step: 'c', stream: 'stdout', n: 2, time: 1000, dt: [0, 5], text: ['x', 'y'] },
        { seq: 6, stage: 'b', step: 'c', stream: 'stderr', n: 4, time: 1010, dt: [0], text: ['z'] },
      ],
    };
    const client = await clientFor((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      res.end(`id: 6\nevent: lines\ndata: ${JSON.stringify(batch)}\n\nevent: end\ndata:\n\n`);
    });
    const lines = [];
    for await (const event of client.followLogs(7)) if (event.type === 'line') lines.push(event.line);
    expect(lines.map((l) => [l.seq, l.n, l.stream, l.time, l.text])).toEqual([
      [4, 2, 'stdout', '1970-01-01T00:00:01.000Z', 'x'],
      [5, 3, 'stdout', '1970-01-01T00:00:01.005Z', 'y'],
      [6, 4, 'stderr', '1970-01-01T00:00:01.010Z', 'z'],
    ]);
  });

  it('ends the live log with the API error when the build does not exist', async () => {
    const client = await clientFor((_req, res) =>
      sendJson(res, 404, { error: { code: 'not_found', message: 'no build 9' } }),
    );
    const error = await failure(
      (async () => {
        for await (const _event of client.followLogs(9)) void _event;
      })(),
    );
    expect([error.status, error.message]).toEqual([404, 'no build 9']);
  });
});
