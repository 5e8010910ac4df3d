import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../store/index.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { LogHub } from '../logs/log-hub.js';
import type { LogStore } from '../logs/types.js';
import { Metrics } from '../metrics.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';
import { buildApp, redactQueryToken } from './app.js';
import type { ApiError } from './dto.js';
import { startTestApi } from './testing/harness.js';
import type { TestApi } from './testing/harness.js';
import { openSse } from './testing/sse-client.js';

/** A log store that fails: the kind of fault that must become a 500 without details. */
class BrokenLogStore implements LogStore {
  append(): Promise<void> {
    return Promise.reject(new Error('disk on fire at /var/lib/slipway/logs'));
  }
  read(): Promise<never> {
    return Promise.reject(new Error('disk on fire at /var/lib/slipway/logs'));
  }
  lastSeq(): Promise<number> {
    return Promise.reject(new Error('disk on fire'));
  }
  remove(): Promise<void> {
    return Promise.resolve();
  }
}

// Behaviour that does not depend on the database dialect, so SQLite alone.
describe('server operations (sqlite)', () => {
  let api: TestApi;
  const logLines: Record<string, unknown>[] = [];
  let webRoot: string;

  beforeAll(async () => {
    webRoot = await mkdtemp(join(tmpdir(), 'slipway-web-'));
    await writeFile(join(webRoot, 'index.html'), '<!doctype html><title>Slipway</title>');
    await writeFile(join(webRoot, 'app.js'), 'console.log("ui")');
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          logLines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    api = await startTestApi('sqlite', {
      logs: new BrokenLogStore(),
      logger: { level: 'info', stream },
      webRoot,
    });
  });
  afterAll(async () => {
    await api?.close();
    await rm(webRoot, { recursive: true, force: true });
  });

  it('answers an unexpected failure with 500 "internal error (id …)", and logs that id with the stack', async () => {
    const project = await makeProject(api.t.db);
    const build = await makeBuild(api.t.db, project.id);
    const res = await api.call('viewer', { url: `/api/v1/builds/${build.id}/logs` });
    expect(res.statusCode).toBe(500);
    const body = res.json<ApiError>();
    expect(body.error.code).toBe('internal');
    const errorId = /^internal error \(id ([0-9a-f]{12})\)$/.exec(body.error.message)?.[1];
    expect(errorId).toBeDefined();
    expect(res.body).not.toContain('disk on fire');
    expect(res.body).not.toContain('.ts:');
    expect(body.error.details).toEqual({ errorId, requestId: expect.any(String) as unknown });
    const logged = logLines.find((l) => l.msg === 'request failed' && l.errorId === errorId);
    expect(logged?.level).toBe(50);
    expect(logged?.reqId).toBe((body.error.details as { requestId: string }).requestId);
    const err = logged?.err as { message?: string; stack?: string } | undefined;
    expect(err?.message).toMatch(/^disk on fire/);
    expect(err?.stack).toMatch(/disk on fire.*\n\s+at /);
  });

  it('keeps tokens given in the query out of the request log', async () => {
    const project = await makeProject(api.t.db);
    const build = await makeBuild(api.t.db, project.id);
    await api.call(null, {
      url: `/api/v1/builds/${build.id}/logs?access_token=${api.tokens.viewer}&after=0`,
    });
    const text = JSON.stringify(logLines);
    expect(text).toContain('access_token=[redacted]');
    expect(text).not.toContain(api.tokens.viewer);
    expect(redactQueryToken('/x?a=1&access_token=slw_secret#f')).toBe('/x?a=1&access_token=[redacted]#f');
  });

  // Issue 10: `access%5Ftoken` is `access_token` to the query parser, and was logged as is.
  it('redacts the query token under every spelling the parser reads as a credential', () => {
    for (const name of [
      'access%5Ftoken',
      'ACCESS_TOKEN',
      'Access_Token',
      '%61ccess_token',
      'access%255Ftoken',
      'access_token+',
      'access%5ftoken%',
      'token',
      'webhook_secret',
    ]) {
      expect(redactQueryToken(`/x?after=3&${name}=slw_secret&b=2`)).toBe(`/x?after=3&${name}=[redacted]&b=2`);
    }
    expect(redactQueryToken('/x?after=3&limit=10')).toBe('/x?after=3&limit=10');
    expect(redactQueryToken('/x/access_token=1')).toBe('/x/access_token=1');
  });

  it('serves the web UI with a fallback to index.html for client-side routes, never for API paths', async () => {
    const index = await api.call(null, { url: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.body).toContain('<title>Slipway</title>');
    expect((await api.call(null, { url: '/app.js' })).body).toContain('console.log');
    const deep = await api.call(null, { url: '/projects/acme/web/builds/4' });
    expect(deep.statusCode).toBe(200);
    expect(deep.body).toContain('<title>Slipway</title>');
    const api404 = await api.call('viewer', { url: '/api/v1/nope' });
    expect(api404.statusCode).toBe(404);
    expect(api404.json<ApiError>().error.code).toBe('not_found');
    expect((await api.call(null, { method: 'POST', url: '/projects' })).statusCode).toBe(404);
  });

  it('answers /readyz with 503 when the database does not answer, /healthz still 200', async () => {
    // Nothing listens on port 1: every connection is refused, as with a database that is down.
    const db = openDatabase('postgres://slipway@127.0.0.1:1/slipway');
    const app = buildApp({
      db,
      control: new DatabaseBuildControl(db),
      logs: new BrokenLogStore(),
      hub: new LogHub(),
      metrics: new Metrics({ processMetrics: false }),
      globalLimit: 1,
    });
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json<ApiError>().error).toEqual({
      code: 'unavailable',
      message: 'the database does not answer',
      details: {},
    });
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    await app.close();
    await db.destroy();
  });

  it('closes open event streams on shutdown without an end event, so clients reconnect elsewhere', async () => {
    const server = await startTestApi('sqlite');
    try {
      const project = await makeProject(server.t.db);
      const build = await makeBuild(server.t.db, project.id);
      const base = await server.app.listen({ port: 0, host: '127.0.0.1' });
      const sse = await openSse(`${base}/api/v1/builds/${build.id}/logs?follow=1`, server.auth('viewer'));
      await sse.waitFor((events) => events.length > 0, 'the first status');
      await server.app.close();
      await sse.closed;
      expect(sse.events.map((e) => e.event)).toEqual(['status']);
    } finally {
      await server.close();
    }
  });

  it('honours a smaller body limit', async () => {
    const small = await startTestApi('sqlite', { bodyLimit: 100 });
    try {
      const res = await small.call('admin', {
        method: 'POST',
        url: '/api/v1/projects',
        payload: { slug: 'a/b', repoUrl: 'x'.repeat(200) },
      });
      expect(res.statusCode).toBe(413);
      expect(res.json<ApiError>().error.code).toBe('payload_too_large');
    } finally {
      await small.close();
    }
  });
});
