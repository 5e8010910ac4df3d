import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimNextBuilds, createBuildRecords, setBuildStatus } from '../../../store/index.js';
import type { Build } from '../../../store/index.js';
import { DIALECTS } from '../../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../../store/testing/fixtures.js';
import { LogHub } from '../../logs/log-hub.js';
import { BuildLogWriter } from '../../logs/log-writer.js';
import type { ApiError, Build as BuildDto, LogLine, LogPage } from '../dto.js';
import { startTestApi } from '../testing/harness.js';
import type { TestApi } from '../testing/harness.js';
import type { SseEvent } from '../../../contract/sse.js';
import { linesOf, openSse } from '../testing/sse-client.js';
import type { SseSession } from '../testing/sse-client.js';

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function eventually(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(DIALECTS)('build logs (%s)', (dialect) => {
  let api: TestApi;
  let base: string;

  beforeAll(async () => {
    // Short intervals so that polling paths run within a test; the defaults are 1 s / 500 ms / 15 s.
    api = await startTestApi(dialect, {
      liveTiming: { statusPollMs: 40, storePollMs: 40, heartbeatMs: 150 },
    });
    base = await api.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await api?.close();
  });

  /** A running build and the writer its runner would have; `hub` other than the API's = another replica. */
  async function runningBuild(hub: LogHub = api.hub): Promise<{ build: Build; writer: BuildLogWriter }> {
    const project = await makeProject(api.t.db);
    const build = await makeBuild(api.t.db, project.id);
    await claimNextBuilds(api.t.db, 'test-owner', 60_000, { global: 1000 });
    await setBuildStatus(api.t.db, build.id, ['pending'], 'running');
    return { build, writer: await BuildLogWriter.open(build.id, api.logs, hub) };
  }

  async function write(writer: BuildLogWriter, from: number, to: number, step = 'unit'): Promise<void> {
    for (const i of range(from, to)) writer.write('test', step, 'stdout', `line ${i}`);
    await writer.flush();
  }

  /** What a runner does at the end: the last lines are stored, then the build is finished. */
  async function finish(build: Build, writer: BuildLogWriter): Promise<void> {
    await writer.close();
    await setBuildStatus(api.t.db, build.id, ['running'], 'success');
  }

  const follow = (build: Build, headers: Record<string, string> = {}, query = '') =>
    openSse(`${base}/api/v1/builds/${build.id}/logs?follow=1${query}`, {
      authorization: `Bearer ${api.tokens.viewer}`,
      ...headers,
    });

  const lineCount = (n: number) => (events: SseEvent[]) => linesOf(events).length >= n;
  const ended = (events: { event: string }[]) => events.some((e) => e.event === 'end');

  describe('JSON pages and text', () => {
    it('pages stored lines with after/limit and says when the log is complete', async () => {
      const { build, writer } = await runningBuild();
      await write(writer, 1, 25);
      const first = (
        await api.call('viewer', { url: `/api/v1/builds/${build.id}/logs?after=0&limit=10` })
      ).json<LogPage>();
      expect(first.lines.map((l) => l.seq)).toEqual(range(1, 10));
      expect(first).toMatchObject({ last: 10, complete: false });
      expect(first.lines[0]).toEqual({
        seq: 1,
        stage: 'test',
        step: 'unit',
        stream: 'stdout',
        n: 1,
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        text: 'line 1',
      } satisfies Record<keyof LogLine, unknown>);
      const rest = (
        await api.call('viewer', { url: `/api/v1/builds/${build.id}/logs?after=20&limit=10` })
      ).json<LogPage>();
      expect(rest).toMatchObject({ last: 25, complete: false });
      await finish(build, writer);
      const done = (
        await api.call('viewer', { url: `/api/v1/builds/${build.id}/logs?after=20` })
      ).json<LogPage>();
      expect(done.lines.map((l) => l.seq)).toEqual(range(21, 25));
      expect(done.complete).toBe(true);
      const none = (
        await api.call('viewer', { url: `/api/v1/builds/${build.id}/logs?after=25` })
      ).json<LogPage>();
      expect(none).toEqual({ lines: [], last: 25, complete: true });
      const full = (
        await api.call('viewer', { url: `/api/v1/builds/${build.id}/logs?after=10&limit=15` })
      ).json<LogPage>();
      expect(full.complete).toBe(true);
    });

    it("serves one step's log as plain text, streamed", async () => {
      const { build, writer } = await runningBuild();
      await createBuildRecords(api.t.db, build.id, [{ name: 'test', steps: ['unit', 'lint'] }]);
      // Interleaved steps, more lines than one store read.
      for (let i = 1; i <= 12_000; i++)
        writer.write('test', i % 3 === 0 ? 'lint' : 'unit', 'stdout', `line ${i}`);
      await finish(build, writer);
      const res = await api.call('viewer', { url: `/api/v1/builds/${build.id}/steps/test/lint/log` });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.body).toBe(
        range(1, 12_000)
          .filter((i) => i % 3 === 0)
          .map((i) => `line ${i}\n`)
          .join(''),
      );
      // The server's own notes have a log but no step record.
      const notes = await api.call('viewer', { url: `/api/v1/builds/${build.id}/steps/test/slipway/log` });
      expect(notes.statusCode).toBe(200);
      expect(notes.body).toBe('');
    });

    it("serves the whole build's log as plain text, every line prefixed with [stage/step]", async () => {
      const { build, writer } = await runningBuild();
      await createBuildRecords(api.t.db, build.id, [{ name: 'test', steps: ['unit', 'lint'] }]);
      writer.write('', 'slipway', 'system', 'build #1 starts');
      writer.write('', 'service:db', 'stdout', 'db ready');
      // More lines than one store read, interleaved.
      for (let i = 1; i <= 12_000; i++)
        writer.write('test', i % 3 === 0 ? 'lint' : 'unit', i % 2 === 0 ? 'stderr' : 'stdout', `line ${i}`);
      await finish(build, writer);
      const res = await api.call('viewer', { url: `/api/v1/builds/${build.id}/log` });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect(res.body).toBe(
        '[slipway] build #1 starts\n[service/db] db ready\n' +
          range(1, 12_000)
            .map((i) => `[test/${i % 3 === 0 ? 'lint' : 'unit'}] line ${i}\n`)
            .join(''),
      );
      expect((await api.call(null, { url: `/api/v1/builds/${build.id}/log` })).statusCode).toBe(401);
      expect((await api.call('viewer', { url: '/api/v1/builds/9999999/log' })).statusCode).toBe(404);
    });

    it('answers 404 for an unknown step and for unknown builds', async () => {
      const { build, writer } = await runningBuild();
      await createBuildRecords(api.t.db, build.id, [{ name: 'test', steps: ['unit'] }]);
      await finish(build, writer);
      const res = await api.call('viewer', { url: `/api/v1/builds/${build.id}/steps/test/nope/log` });
      expect(res.statusCode).toBe(404);
      const error = res.json<ApiError>().error;
      expect(error.code).toBe('not_found');
      expect(error.message).toContain('test/nope');
      expect((await api.call('viewer', { url: '/api/v1/builds/9999999/logs' })).statusCode).toBe(404);
      expect((await api.call('viewer', { url: '/api/v1/builds/9999999/steps/a/b/log' })).statusCode).toBe(
        404,
      );
    });
  });

  describe('live (Server-Sent Events)', () => {
    it('sends the stored lines, then live ones, status changes, and end once the build is over', async () => {
      const { build, writer } = await runningBuild();
      await write(writer, 1, 10);
      const sse = await follow(build);
      expect(sse.status).toBe(200);
      expect(sse.contentType).toBe('text/event-stream; charset=utf-8');
      await sse.waitFor(lineCount(10), 'the stored lines');
      await write(writer, 11, 20);
      await sse.waitFor(lineCount(20), 'the live lines');
      await finish(build, writer);
      await sse.waitFor(ended, 'end');
      await sse.closed;

      expect(sse.seqs()).toEqual(range(1, 20));
      const line = linesOf(sse.events).find((l) => l.seq === 11)!;
      expect(line).toMatchObject({
        seq: 11,
        stage: 'test',
        step: 'unit',
        text: 'line 11',
        n: 11,
      });
      const statuses = sse.events
        .filter((e) => e.event === 'status')
        .map((e) => JSON.parse(e.data) as BuildDto);
      expect(statuses.map((s) => s.status)).toEqual(['running', 'success']);
      expect(statuses[0]).toMatchObject({ id: build.id, number: build.number });
      // `end` comes last, after every line, with the final build.
      expect(sse.events.at(-1)!.event).toBe('end');
      expect(JSON.parse(sse.events.at(-1)!.data)).toMatchObject({ id: build.id, status: 'success' });
    });

    it('resumes after Last-Event-ID with exactly the missed lines', async () => {
      const { build, writer } = await runningBuild();
      await write(writer, 1, 30);
      const first = await follow(build);
      await first.waitFor(lineCount(30), '30 lines');
      first.abort();
      await write(writer, 31, 50);

      const resumed = await follow(build, {
        'last-event-id': first.events.filter((e) => e.event === 'lines').at(-1)!.id,
      });
      await resumed.waitFor(lineCount(20), 'the missed lines');
      await write(writer, 51, 55);
      await finish(build, writer);
      await resumed.waitFor(ended, 'end');
      expect(resumed.seqs()).toEqual(range(31, 55));
      expect([...first.seqs(), ...resumed.seqs()]).toEqual(range(1, 55));

      // ?after= resumes too; the header wins over it, as an EventSource reconnects to the same URL.
      const fromQuery = await follow(build, {}, '&after=52');
      await fromQuery.waitFor(ended, 'end');
      expect(fromQuery.seqs()).toEqual([53, 54, 55]);
      const both = await follow(build, { 'last-event-id': '54' }, '&after=10');
      await both.waitFor(ended, 'end');
      expect(both.seqs()).toEqual([55]);
      const atEnd = await follow(build, { 'last-event-id': '55' });
      await atEnd.waitFor(ended, 'end');
      expect(atEnd.seqs()).toEqual([]);
    });

    it('ends at once for a finished build', async () => {
      const { build, writer } = await runningBuild();
      await write(writer, 1, 5);
      await finish(build, writer);
      const sse = await follow(build);
      await sse.waitFor(ended, 'end');
      await sse.closed;
      expect(sse.seqs()).toEqual(range(1, 5));
      // One `lines` event whose id is its last line's seq.
      expect(sse.events.map((e) => [e.event, e.id])).toEqual([
        ['status', ''],
        ['lines', '5'],
        ['end', '5'],
      ]);
      // The per-line format, for simple clients, on request.
      const perLine = await follow(build, {}, '&format=line');
      await perLine.waitFor(ended, 'end');
      expect(perLine.seqs()).toEqual(range(1, 5));
      expect(perLine.events.map((e) => e.event)).toEqual([
        'status',
        'line',
        'line',
        'line',
        'line',
        'line',
        'end',
      ]);
      expect(JSON.parse(perLine.events[3]!.data)).toMatchObject({ seq: 3, text: 'line 3', n: 3 });
    });

    it('delivers every line exactly once to 50 concurrent readers, whenever they join', async () => {
      const { build, writer } = await runningBuild();
      await write(writer, 1, 100);
      const readers: SseSession[] = [];
      for (let i = 0; i < 25; i++) readers.push(await follow(build));
      let next = 101;
      for (let round = 0; round < 25; round++) {
        await write(writer, next, next + 39);
        next += 40;
        readers.push(await follow(build));
      }
      await write(writer, next, 1200);
      await finish(build, writer);
      await Promise.all(readers.map((r) => r.waitFor(ended, 'end', 30_000)));
      for (const [i, reader] of readers.entries()) {
        expect(reader.seqs(), `reader ${i}`).toEqual(range(1, 1200));
      }
      await eventually(() => api.hub.subscriberCount(build.id) === 0, 'the feed to unsubscribe');
    });

    it('follows a build that runs on another replica through the store', async () => {
      // Another server process: its own hub, which this API never hears from.
      const { build, writer } = await runningBuild(new LogHub());
      await write(writer, 1, 3);
      const sse = await follow(build);
      await sse.waitFor(lineCount(3), 'the stored lines');
      await write(writer, 4, 9);
      await sse.waitFor(lineCount(9), 'lines found by polling the store');
      await finish(build, writer);
      await sse.waitFor(ended, 'end');
      expect(sse.seqs()).toEqual(range(1, 9));
      expect(
        sse.events.filter((e) => e.event === 'status').map((e) => (JSON.parse(e.data) as BuildDto).status),
      ).toEqual(['running', 'success']);
    });

    it('stops following when the client goes away', async () => {
      const { build, writer } = await runningBuild();
      const sse = await follow(build);
      await sse.waitFor((events) => events.length > 0, 'the first status');
      await eventually(() => api.hub.subscriberCount(build.id) === 1, 'the feed to subscribe');
      sse.abort();
      await eventually(() => api.hub.subscriberCount(build.id) === 0, 'the feed to unsubscribe');
      await finish(build, writer);
    });

    it('sends heartbeats on a quiet stream', async () => {
      const { build, writer } = await runningBuild();
      const sse = await follow(build);
      await eventually(() => sse.comments >= 2, 'two heartbeats');
      sse.abort();
      await finish(build, writer);
    });

    it('takes the token from ?access_token= and is chosen by Accept: text/event-stream', async () => {
      const { build, writer } = await runningBuild();
      await write(writer, 1, 2);
      await finish(build, writer);
      const sse = await openSse(`${base}/api/v1/builds/${build.id}/logs?access_token=${api.tokens.viewer}`);
      expect(sse.status).toBe(200);
      await sse.waitFor(ended, 'end');
      expect(sse.seqs()).toEqual([1, 2]);
    });

    it('answers errors before the stream starts as JSON', async () => {
      const { build, writer } = await runningBuild();
      await finish(build, writer);
      const unknown = await fetch(`${base}/api/v1/builds/9999999/logs?follow=1`, {
        headers: { authorization: `Bearer ${api.tokens.viewer}`, accept: 'text/event-stream' },
      });
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ error: { code: 'not_found' } });
      const badResume = await fetch(`${base}/api/v1/builds/${build.id}/logs?follow=1`, {
        headers: { authorization: `Bearer ${api.tokens.viewer}`, 'last-event-id': 'yesterday' },
      });
      expect(badResume.status).toBe(400);
      const error = ((await badResume.json()) as ApiError).error;
      expect(error.code).toBe('invalid_request');
      expect(error.message).toContain('header.last-event-id');
      const anonymous = await fetch(`${base}/api/v1/builds/${build.id}/logs?follow=1`);
      expect(anonymous.status).toBe(401);
    });
  });
});
