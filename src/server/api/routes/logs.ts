import { Readable } from 'node:stream';
import type { ServerResponse } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { Type } from '@sinclair/typebox';
import { getBuildRecords, isTerminalStatus } from '../../../store/index.js';
import type { LogStore } from '../../logs/types.js';
import { VIEWER, buildOr404 } from '../context.js';
import type { App, RouteContext } from '../context.js';
import { toLogLine } from '../convert.js';
import { notFound } from '../errors.js';
import { SseReader } from '../live/sse-reader.js';
import type { StreamOwner } from '../live/open-streams.js';
import { QUERY_TOKEN_PARAM, callerOf } from '../../auth/index.js';
import { sessionIdOf } from '../../auth/cookie.js';
import type { SseSink } from '../live/sse-reader.js';
import { IdParams, LastEventIdHeaders, LogPageSchema, LogsQuery, StepLogParams } from '../schemas.js';

const tags = ['logs'];

/** Lines per store read when streaming a step's text log. */
const TEXT_PAGE = 5000;

/**
 * Build logs: a JSON page of stored lines, the live log as Server-Sent Events (the only route
 * that takes `?access_token=`, for browsers' EventSource), and one step's log as plain text.
 */
export function logRoutes(api: App, { db, logs, live }: RouteContext): void {
  api.get(
    '/builds/:id/logs',
    {
      config: { auth: { role: 'viewer', queryToken: true } },
      schema: {
        tags,
        summary: 'Stored log lines (JSON page), or with `follow=1` the live log as Server-Sent Events',
        description: [
          'Lines of all steps in one sequence, numbered by `seq`. As an event stream: first the stored',
          'lines after `Last-Event-ID` (or `after`), then live ones, as `lines` events (data: LogBatch,',
          'many lines in runs of one step and stream) with `id:` the seq of their last line, or with',
          '`format=line` as one `line` event per line (data: LogLine, `id: <seq>`); `status` events',
          'carry the build when its status changes; `end` comes once the build is over and every line',
          'was sent, then the stream closes. A reader that falls more than 4 MiB behind gets `lag` and',
          'the stream closes. A reconnect with `Last-Event-ID` gets exactly the lines it missed.',
        ].join(' '),
        params: IdParams,
        querystring: LogsQuery,
        headers: LastEventIdHeaders,
        response: {
          200: {
            description: 'A page of lines, or the event stream',
            content: {
              'application/json': { schema: LogPageSchema },
              'text/event-stream': { schema: Type.String() },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const build = await buildOr404(db, request.params.id);
      const { after, limit = 1000, follow, format = 'batch' } = request.query;
      const stream = follow ?? acceptsEventStream(request.headers.accept);
      if (!stream) {
        // Status before lines: a build that was finished then had all its lines stored then.
        const finished = isTerminalStatus(build.status);
        const from = after ?? 0;
        const lines = await logs.read(build.id, from, limit + 1);
        const page = lines.slice(0, limit);
        return reply.type('application/json; charset=utf-8').send({
          lines: page.map(toLogLine),
          last: page.at(-1)?.seq ?? from,
          complete: finished && lines.length <= limit,
        });
      }

      // An EventSource reconnects to the same URL: its Last-Event-ID is newer than `after`.
      const lastEventId = request.headers['last-event-id'];
      const from = lastEventId !== undefined ? Number(lastEventId) : (after ?? 0);
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        // nginx would otherwise buffer the stream.
        'x-accel-buffering': 'no',
      });
      const reader = new SseReader(responseSink(res), build.id, logs, from, {
        format,
        onLag: (at, queued) =>
          request.log.info(
            { buildId: build.id, after: at, queued },
            'live log reader fell behind: ended with lag',
          ),
        onError: (error) => request.log.error({ err: error, buildId: build.id }, 'live log reader failed'),
      });
      reader.status(build);
      const membership = live.join(build.id, reader);
      // Revoking the credential ends the stream at once, not when the build does.
      const unregister = live.streams.add(streamOwner(request), () => {
        reader.abort();
        res.destroy();
      });
      res.on('close', () => {
        unregister();
        reader.abort();
        membership.leave();
      });
      void membership.ready.then(() => reader.start());
      return reply;
    },
  );

  api.get(
    '/builds/:id/log',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "The whole build's stored log as plain text, each line prefixed with [stage/step]",
        params: IdParams,
        response: {
          200: {
            description: 'The lines of every step in order, each ending in a newline',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (request, reply) => {
      const build = await buildOr404(db, request.params.id);
      const body = Readable.from(buildText(logs, build.id));
      // As for a step's log: the schema types the body as text; Fastify sends the stream.
      return reply.type('text/plain; charset=utf-8').send(body as unknown as string);
    },
  );

  api.get(
    '/builds/:id/steps/:stage/:step/log',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "One step's stored log as plain text",
        params: StepLogParams,
        response: {
          200: {
            description: 'The lines, each ending in a newline',
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (request, reply) => {
      const { id, stage, step } = request.params;
      const build = await buildOr404(db, id);
      const records = await getBuildRecords(db, build.id);
      const known = records.some((s) => s.name === stage && s.steps.some((t) => t.name === step));
      // Services and the server's own notes have logs but no step records.
      if (!known && !step.startsWith('service:') && step !== 'slipway') {
        throw notFound(`step ${stage}/${step} of build ${build.projectSlug} #${build.number}`);
      }
      const body = Readable.from(stepText(logs, build.id, stage, step));
      // The schema types the body as the text it is; Fastify sends a stream of it as well.
      return reply.type('text/plain; charset=utf-8').send(body as unknown as string);
    },
  );
}

/** The token of the request, and its session when the cookie (not a token) authenticated it. */
function streamOwner(request: FastifyRequest): StreamOwner {
  const caller = callerOf(request);
  const query = request.query as Record<string, unknown>;
  const byToken = request.headers.authorization !== undefined || query[QUERY_TOKEN_PARAM] !== undefined;
  const sessionId = byToken ? undefined : sessionIdOf(request);
  return { tokenId: caller.id, ...(sessionId !== undefined ? { sessionId } : {}) };
}

function acceptsEventStream(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\s*(;|,|$)/i.test(accept);
}

/** A step's lines, a store page at a time: a 100k-line log never sits in memory as one string. */
async function* stepText(
  logs: LogStore,
  buildId: number,
  stage: string,
  step: string,
): AsyncGenerator<string> {
  let after = 0;
  for (;;) {
    const page = await logs.read(buildId, after, TEXT_PAGE);
    let text = '';
    for (const line of page) if (line.stage === stage && line.step === step) text += `${line.text}\n`;
    if (text !== '') yield text;
    if (page.length < TEXT_PAGE) return;
    after = page.at(-1)!.seq;
  }
}

/**
 * Every line of a build as `[stage/step] text` (the way `slipway run` and `slipway logs` print
 * them), a store page at a time, so a big log is streamed, never held whole.
 */
async function* buildText(logs: LogStore, buildId: number): AsyncGenerator<string> {
  let after = 0;
  for (;;) {
    const page = await logs.read(buildId, after, TEXT_PAGE);
    let text = '';
    for (const line of page) text += `[${lineLabel(line.stage, line.step)}] ${line.text}\n`;
    if (text !== '') yield text;
    if (page.length < TEXT_PAGE) return;
    after = page.at(-1)!.seq;
  }
}

/** `stage/step`; a service's log (`service:<name>`) as `service/<name>`; the server's notes as `slipway`. */
function lineLabel(stage: string, step: string): string {
  if (step.startsWith('service:')) return `service/${step.slice('service:'.length)}`;
  return stage !== '' ? `${stage}/${step}` : step;
}

/**
 * Output a reader may have queued on its connection while it reads its backlog, before it
 * waits for the client. `write()` says "full" past 16 KiB, which one page exceeds.
 */
const SLOW_READER_BYTES = 1024 * 1024;

/**
 * How long an ended stream may take to hand its last bytes to the client before its socket is
 * destroyed: a client that stopped reading would otherwise hold them for as long as it lives.
 */
const LINGER_MS = 30_000;

function responseSink(res: ServerResponse): SseSink {
  return {
    write: (chunk) => {
      if (res.destroyed || res.writableEnded) return;
      res.write(chunk);
    },
    get queued() {
      return res.writableLength;
    },
    get backedUp() {
      return res.writableLength > SLOW_READER_BYTES;
    },
    get closed() {
      return res.destroyed || res.writableEnded;
    },
    drained: () =>
      new Promise<void>((resolve) => {
        if (!res.writableNeedDrain || res.destroyed) {
          resolve();
          return;
        }
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      }),
    end: () => {
      if (res.writableEnded) return;
      res.end();
      if (res.writableFinished || res.destroyed) return;
      const linger = setTimeout(() => res.destroy(), LINGER_MS);
      linger.unref();
      res.once('close', () => clearTimeout(linger));
    },
  };
}
