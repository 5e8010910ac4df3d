import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Command } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Build, BuildDetail, LogLine, LogPage, TokenCreated } from '../../contract/index.js';
import { UsageError } from '../errors.js';
import { registerRemoteCommands } from './commands.js';

const build: Build = {
  id: 7,
  project: 'acme/web',
  number: 42,
  status: 'queued',
  reason: null,
  branch: 'main',
  commit: null,
  tag: null,
  event: 'manual',
  trigger: 'manual',
  triggeredBy: 'ci',
  rerunOf: null,
  createdAt: '2024-05-01T12:00:00Z',
  startedAt: null,
  finishedAt: null,
  durationMs: null,
};
const detail: BuildDetail = { ...build, status: 'running', stages: [] };
const line = (seq: number, step: string, text: string): LogLine => ({
  seq,
  stage: 'test',
  step,
  stream: 'stdout',
  n: seq,
  time: '2024-05-01T12:00:00Z',
  text,
});

/**
 * A stub of the REST contract in dto.ts with canned answers, enough to drive the commands
 * end to end over real HTTP. `finalStatus` is what the followed build ends with.
 */
let finalStatus: Build['status'] = 'failure';
const requests: string[] = [];
let server: Server;
let url = '';

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
    const route = `${req.method} ${req.url}`;
    switch (route) {
      case 'POST /api/v1/projects/acme/web/builds':
        return json(res, 201, build);
      case 'GET /api/v1/projects/acme/web/builds/42':
        return json(res, 200, detail);
      case 'GET /api/v1/projects/acme/web/builds?limit=20':
        return json(res, 200, {
          items: [{ ...build, status: 'success', commit: 'f'.repeat(40) }],
          nextCursor: null,
        });
      case 'GET /api/v1/builds/7/logs?after=0':
        return json(res, 200, {
          lines: [line(1, 'unit', 'one'), line(2, 'lint', 'two')],
          last: 2,
          complete: false,
        } satisfies LogPage);
      case 'GET /api/v1/builds/7/logs?after=2':
        return json(res, 200, {
          lines: [line(3, 'unit', 'three')],
          last: 3,
          complete: true,
        } satisfies LogPage);
      case 'GET /api/v1/builds/7/steps/test/unit/log':
        res.writeHead(200, { 'content-type': 'text/plain' });
        return res.end('one\nthree');
      case 'GET /api/v1/builds/7/logs?follow=1': {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const sse = (event: string, data: unknown, id?: number) =>
          `${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
        return res.end(
          sse('status', { ...build, status: 'running' }) +
            sse('line', line(1, 'unit', 'one'), 1) +
            sse('line', line(1, 'unit', 'one'), 1) + // a repeat must not be printed twice
            sse('line', line(2, 'lint', 'two'), 2) +
            sse('status', { ...build, status: finalStatus, durationMs: 3000 }) +
            'event: end\ndata:\n\n',
        );
      }
      case 'POST /api/v1/tokens':
        return json(res, 201, {
          id: 3,
          name: 'ci',
          role: 'member',
          createdAt: '',
          lastUsedAt: null,
          token: 'slp_secret',
        } satisfies TokenCreated);
      default:
        return json(res, 404, { error: { code: 'not_found', message: `no route ${route}` } });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requests.length = 0;
  vi.stubEnv('NO_COLOR', '1');
  vi.stubEnv('SLIPWAY_TOKEN', 'env-token');
  vi.stubEnv('SLIPWAY_SERVER', '');
  return () => vi.unstubAllEnvs();
});

/** Captures what a stream is given, calling write callbacks so that drain() resolves. */
function capture(stream: NodeJS.WriteStream): { text: () => string; restore: () => void } {
  let text = '';
  const write = (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    const callback = rest.find((arg): arg is () => void => typeof arg === 'function');
    callback?.();
    return true;
  };
  const spy = vi.spyOn(stream, 'write').mockImplementation(write);
  return { text: () => text, restore: () => spy.mockRestore() };
}

async function slipway(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const program = new Command('slipway').exitOverride();
  let code = -1;
  registerRemoteCommands(program, (c) => (code = c));
  const out = capture(process.stdout);
  const err = capture(process.stderr);
  try {
    await program.parseAsync([...args, '--server', url], { from: 'user' });
  } finally {
    out.restore();
    err.restore();
  }
  return { code, stdout: out.text(), stderr: err.text() };
}

describe('remote commands against a stub API server', () => {
  it('trigger --follow prints the build, its log once per line, and exits 1 for a failed build', async () => {
    finalStatus = 'failure';
    const result = await slipway('trigger', 'acme/web', '--branch', 'main', '--follow');
    expect(result.stdout).toBe('acme/web #42 queued\n[test/unit] one\n[test/lint] two\n');
    expect(result.stderr).toBe('acme/web #42 running\nacme/web #42 failure in 3s\n');
    expect(result.code).toBe(1);
    expect(requests[0]).toBe('POST /api/v1/projects/acme/web/builds Bearer env-token');
  });

  it.each([
    ['success', 0],
    ['cancelled', 130],
    ['error', 1],
  ] as const)('logs -f exits %s → %i', async (status, code) => {
    finalStatus = status;
    expect((await slipway('logs', 'acme/web', '42', '-f')).code).toBe(code);
  });

  it('logs without -f pages through the stored lines', async () => {
    const result = await slipway('logs', 'acme/web', '#42', '--token', 'flag-token');
    expect(result.stdout).toBe('[test/unit] one\n[test/lint] two\n[test/unit] three\n');
    expect(result.code).toBe(0);
    expect(requests.at(-1)).toBe('GET /api/v1/builds/7/logs?after=2 Bearer flag-token');
  });

  it("logs --step prints that step's plain log; with -f it filters the live one", async () => {
    expect((await slipway('logs', 'acme/web', '42', '--step', 'test/unit')).stdout).toBe('one\nthree\n');
    finalStatus = 'success';
    expect((await slipway('logs', 'acme/web', '42', '--step', 'test/lint', '-f')).stdout).toBe('two\n');
  });

  it('get builds prints a table or JSON', async () => {
    const table = await slipway('get', 'builds', 'acme/web');
    expect(table.stdout.split('\n')[0]).toBe('NUMBER  STATUS   BRANCH  COMMIT        STARTED  DURATION');
    expect(table.stdout.split('\n')[1]).toMatch(/^42 {6}success {2}main {4}ffffffffffff {2}- {8}-$/);
    const asJson = await slipway('get', 'builds', 'acme/web', '-o', 'json');
    expect((JSON.parse(asJson.stdout) as Build[])[0]?.number).toBe(42);
  });

  it('token create prints only the secret on stdout', async () => {
    const result = await slipway('token', 'create', '--name', 'ci', '--role', 'member');
    expect(result.stdout).toBe('slp_secret\n');
    expect(result.stderr).toContain('shown only this once');
  });

  it("answers an unknown project with the server's message and exit 2", async () => {
    const result = await slipway('cancel', 'acme/nope', '1');
    expect(result.stderr).toBe('slipway: no route GET /api/v1/projects/acme/nope/builds/1\n');
    expect(result.code).toBe(2);
  });

  it('rejects malformed arguments as usage errors before any request', async () => {
    await expect(slipway('cancel', 'acme', '1')).rejects.toThrow(UsageError);
    await expect(slipway('cancel', 'acme/web', 'x')).rejects.toThrow(
      'build number "x": expected a positive whole number',
    );
    await expect(slipway('logs', 'acme/web', '1', '--step', 'unit')).rejects.toThrow(
      '--step "unit": expected stage/step',
    );
    await expect(slipway('approve', 'acme/web', '1', '--message', 'no')).rejects.toThrow(
      '--message goes with --reject',
    );
    await expect(slipway('project', 'update', 'acme/web')).rejects.toThrow('nothing to change');
    await expect(slipway('project', 'create', 'acme/web', '--repo', 'x', '--branches', '(')).rejects.toThrow(
      'not a regular expression',
    );
    expect(requests).toEqual([]);
  });
});
