import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import { decodeApiError, requiredRole } from './api-errors.js';
import { endpoints, logStreamPath, projectPath, queryString } from './api.js';
import * as Dto from './dto.js';
import { formatDuration } from './duration.js';
import { parseReason, REASON_CODES, STEP_ERROR_CODES } from './reasons.js';
import { SseParser, type SseEvent } from './sse.js';
import {
  ACTIVE_STATUSES,
  FINAL_STATUSES,
  STATUSES,
  TERMINAL_STATUSES,
  isActiveStatus,
  isTerminalStatus,
} from './status.js';

describe('statuses', () => {
  it('are one list, split into active and terminal sets that do not overlap', () => {
    expect(STATUSES).toEqual([
      'queued',
      'pending',
      'running',
      'waiting',
      'success',
      'failure',
      'error',
      'cancelled',
      'skipped',
      'lost',
    ]);
    expect(TERMINAL_STATUSES).toEqual([...FINAL_STATUSES, 'lost']);
    expect(STATUSES.filter(isActiveStatus)).toEqual(ACTIVE_STATUSES);
    expect(STATUSES.filter((s) => isActiveStatus(s) && isTerminalStatus(s))).toEqual([]);
  });
});

describe('parseReason', () => {
  it('types a stored reason again; every step error code is a reason code', () => {
    expect(parseReason('timeout', 'timed out after 1s')).toEqual({
      code: 'timeout',
      message: 'timed out after 1s',
    });
    expect(parseReason('oom_killed', null)).toEqual({ code: 'oom_killed', message: '' });
    expect(parseReason(null, null)).toBeNull();
    expect(parseReason(undefined, 'x')).toBeNull();
    for (const code of STEP_ERROR_CODES) expect(REASON_CODES).toContain(code);
  });

  it('maps a code it does not know to internal and keeps the original in the message', () => {
    expect(parseReason('step_failed', 'exit code 1')).toEqual({
      code: 'internal',
      message: '[step_failed] exit code 1',
    });
    expect(parseReason('from_the_future', '')).toEqual({ code: 'internal', message: '[from_the_future]' });
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms', '0ms'],
    [350, '350ms', '350ms'],
    [4_200, '4s', '4.2s'],
    [90_000, '1m30s', '1m 30s'],
    [187_000, '3m7s', '3m 07s'],
    [3_600_000, '1h', '1h 00m'],
    [3_605_000, '1h5s', '1h 00m'],
    [168 * 3_600_000, '168h', '168h 00m'],
    [-5, '0ms', '0ms'],
  ])('%i ms → %s (compact), %s (wide)', (ms, compact, wide) => {
    expect(formatDuration(ms)).toBe(compact);
    expect(formatDuration(ms, 'wide')).toBe(wide);
  });
});

describe('API paths and errors', () => {
  it('encodes every user-given part of a path and leaves out empty query values', () => {
    expect(projectPath('acme/web')).toBe('/projects/acme/web');
    expect(projectPath('a b/c?d#e')).toBe('/projects/a%20b/c%3Fd%23e');
    expect(queryString({ a: 1, b: undefined, c: '', d: 'x/y' })).toBe('?a=1&d=x%2Fy');
    expect(endpoints.listBuilds('acme/web', { status: 'failure', limit: 5 })).toEqual({
      method: 'GET',
      path: '/projects/acme/web/builds?status=failure&limit=5',
    });
    expect(endpoints.listBuilds(undefined, { branch: 'release/1.x' }).path).toBe(
      '/builds?branch=release%2F1.x',
    );
    expect(endpoints.setSecret(null, 'A B', { value: 'v' })).toEqual({
      method: 'PUT',
      path: '/secrets/A%20B',
      body: { value: 'v' },
    });
    expect(endpoints.approve(3, '')).toEqual({ method: 'POST', path: '/builds/3/approve', body: {} });
    expect(logStreamPath(7)).toBe('/builds/7/logs?follow=1');
    expect(logStreamPath(7, 42)).toBe('/builds/7/logs?follow=1&after=42');
  });

  it('decodes error answers into the API error codes', () => {
    const body = JSON.stringify({
      error: { code: 'forbidden', message: 'needs admin', details: { requiredRole: 'admin' } },
    });
    const forbidden = decodeApiError(403, 'Forbidden', body);
    expect(forbidden).toEqual({
      status: 403,
      code: 'forbidden',
      message: 'needs admin',
      details: { requiredRole: 'admin' },
    });
    expect(requiredRole(forbidden.details)).toBe('admin');
    expect(requiredRole({ requiredRole: 'root' })).toBeUndefined();
    // A code this client does not know: the one the status means, the server's words kept.
    expect(decodeApiError(409, '', { error: { code: 'too_new', message: 'busy' } })).toEqual({
      status: 409,
      code: 'conflict',
      message: 'busy',
    });
    expect(decodeApiError(502, 'Bad Gateway', '<html>proxy</html>')).toEqual({
      status: 502,
      code: 'http',
      message: 'the server answered HTTP 502 Bad Gateway',
    });
    expect(decodeApiError(500, '', '{"error":"flat"}').code).toBe('http');
  });
});

describe('DTO schemas', () => {
  // TypeBox checks only the formats it is told about (the server's Ajv knows `date-time`).
  FormatRegistry.Set('date-time', (value) =>
    /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(value),
  );
  const time = '2024-05-01T12:00:00Z';
  const build: Dto.Build = {
    id: 7,
    project: 'acme/web',
    number: 42,
    status: 'failure',
    reason: { code: 'exit_code', message: 'exit code 1' },
    branch: 'main',
    commit: null,
    tag: null,
    event: 'push',
    trigger: 'webhook',
    triggeredBy: null,
    rerunOf: null,
    createdAt: time,
    startedAt: time,
    finishedAt: time,
    durationMs: 1200,
    approvals: [
      {
        stage: 'deploy',
        decision: 'approved',
        by: 'ops',
        at: time,
        comment: null,
        requestedAt: time,
        resumedAt: null,
      },
    ],
  };
  const step: Dto.Step = {
    name: 'unit',
    status: 'failure',
    exitCode: 1,
    attempts: 1,
    reason: { code: 'exit_code', message: 'exit code 1' },
    startedAt: time,
    finishedAt: time,
    durationMs: 1000,
    logLines: 3,
    allowFailure: false,
    maxAttempts: 1,
  };
  const token: Dto.TokenInfo = { id: 1, name: 'ci', role: 'member', createdAt: time, lastUsedAt: null };
  const samples: [string, TSchema, unknown][] = [
    ['ApiError', Dto.ApiErrorSchema, { error: { code: 'not_found', message: 'no build 9' } }],
    ['Build', Dto.BuildSchema, build],
    [
      'BuildDetail',
      Dto.BuildDetailSchema,
      {
        ...build,
        stages: [
          {
            name: 'test',
            status: 'failure',
            reason: null,
            startedAt: time,
            finishedAt: time,
            durationMs: 1,
            approval: null,
            steps: [step],
          },
        ],
      },
    ],
    [
      'Project',
      Dto.ProjectSchema,
      {
        id: 1,
        slug: 'acme/web',
        repoUrl: 'https://git.example.com/acme/web.git',
        branchFilter: '.*',
        defaultExecutor: 'docker',
        defaultImage: null,
        concurrencyPolicy: 'queue',
        maxRunning: null,
        maxLogBytes: null,
        pipelinePath: '.slipway.yml',
        createdAt: time,
        updatedAt: time,
        lastBuild: build,
      },
    ],
    [
      'ProjectCreate',
      Dto.ProjectCreateSchema,
      { slug: 'acme/web', repoUrl: '/tmp/r.git', defaultExecutor: 'local' },
    ],
    ['ProjectUpdate', Dto.ProjectUpdateSchema, { maxRunning: 2 }],
    ['ProjectStats', Dto.ProjectStatsSchema, { averageDurationMs: null, sampleSize: 0 }],
    ['TriggerRequest', Dto.TriggerRequestSchema, { branch: 'main', commit: 'abcdef1' }],
    ['ApprovalRequest', Dto.ApprovalRequestSchema, { comment: 'ship it' }],
    ['RejectRequest', Dto.RejectRequestSchema, { message: 'not today' }],
    [
      'LogPage',
      Dto.LogPageSchema,
      {
        lines: [{ seq: 1, stage: 'test', step: 'unit', stream: 'stdout', n: 1, time, text: 'hi' }],
        last: 1,
        complete: true,
      },
    ],
    [
      'Queue',
      Dto.QueueSchema,
      {
        running: [build],
        queued: [{ ...build, status: 'queued', waitingFor: 'branch_lock' }],
        limits: { global: 4 },
      },
    ],
    ['TokenInfo', Dto.TokenInfoSchema, token],
    ['TokenCreate', Dto.TokenCreateSchema, { name: 'ci', role: 'viewer' }],
    ['TokenCreated', Dto.TokenCreatedSchema, { ...token, token: 'slw_x' }],
    [
      'ExecutorInfo',
      Dto.ExecutorInfoSchema,
      { name: 'docker', usable: true, isDefault: true, detail: 'podman 4.3' },
    ],
    [
      'SecretInfo',
      Dto.SecretInfoSchema,
      { name: 'API_TOKEN', allowForks: false, createdAt: time, updatedAt: time },
    ],
    ['SecretSet', Dto.SecretSetSchema, { value: 'v', allowForks: true }],
    [
      'Artifact',
      Dto.ArtifactSchema,
      { path: 'dist/a.txt', size: 3, sha256: 'ab', step: 'build/compile', createdAt: time },
    ],
    ['Page<Build>', Dto.pageOf(Dto.BuildSchema), { items: [build], nextCursor: null }],
  ];

  it.each(samples)('%s compiles and accepts its sample', (_name, schema, sample) => {
    expect(TypeCompiler.Compile(schema).Check(sample)).toBe(true);
    expect(Value.Check(schema, sample)).toBe(true);
  });

  it('rejects what the contract does not allow', () => {
    expect(Value.Check(Dto.BuildSchema, { ...build, status: 'done' })).toBe(false);
    expect(Value.Check(Dto.BuildSchema, { ...build, reason: { code: 'step_failed', message: '' } })).toBe(
      false,
    );
    expect(Value.Check(Dto.TokenCreateSchema, { name: 'ci', role: 'root' })).toBe(false);
    expect(Value.Check(Dto.ProjectCreateSchema, { slug: 'no-slash', repoUrl: 'x' })).toBe(false);
    expect(
      Value.Check(Dto.ProjectCreateSchema, { slug: 'a/b', repoUrl: 'x', defaultExecutor: 'memory' }),
    ).toBe(false);
  });
});

const STREAM =
  ': heartbeat\n' +
  'retry: 1500\n' +
  'id: 1\nevent: line\ndata: {"text":"héllo ✓"}\n\n' +
  'id: 2\r\nevent: line\r\ndata: first\r\ndata: second\r\n\r\n' +
  'data:no space\rid: 3\r\r' +
  ': another comment\n\n' +
  'id: 4\nevent: end\n\n';

const EXPECTED: SseEvent[] = [
  { event: 'line', data: '{"text":"héllo ✓"}', id: '1' },
  { event: 'line', data: 'first\nsecond', id: '2' },
  { event: 'message', data: 'no space', id: '3' },
  { event: 'end', data: '', id: '4' },
];

function parseAll(chunks: (string | Uint8Array)[]): { events: SseEvent[]; parser: SseParser } {
  const parser = new SseParser();
  const events = chunks.flatMap((chunk) => parser.push(chunk));
  events.push(...parser.end());
  return { events, parser };
}

describe('SseParser', () => {
  it('parses events, multi-line data, CRLF and CR line ends, comments and retry', () => {
    const { events, parser } = parseAll([STREAM]);
    expect(events).toEqual(EXPECTED);
    expect(parser.retry).toBe(1500);
    expect(parser.lastEventId).toBe('4');
  });

  it('gives the same events however the text is cut into chunks', () => {
    for (let cut = 0; cut <= STREAM.length; cut += 1) {
      expect(parseAll([STREAM.slice(0, cut), STREAM.slice(cut)]).events, `cut at ${cut}`).toEqual(EXPECTED);
    }
    expect(parseAll([...STREAM]).events).toEqual(EXPECTED);
  });

  it('gives the same events however the bytes are cut, even inside a UTF-8 sequence', () => {
    const bytes = new TextEncoder().encode(STREAM);
    for (let cut = 0; cut <= bytes.length; cut += 1) {
      expect(parseAll([bytes.slice(0, cut), bytes.slice(cut)]).events, `cut at byte ${cut}`).toEqual(
        EXPECTED,
      );
    }
    expect(parseAll([...bytes].map((b) => Uint8Array.of(b))).events).toEqual(EXPECTED);
  });

  it('treats a CR at the end of a chunk and an LF at the start of the next as one line end', () => {
    const parser = new SseParser();
    expect(parser.push('data: a\r')).toEqual([]);
    // Were the LF a second line end, this would dispatch an event before the second data line.
    expect(parser.push('\ndata: b\r')).toEqual([]);
    expect(parser.push('\n\r\n')).toEqual([{ event: 'message', data: 'a\nb', id: '' }]);
  });

  it('drops a BOM, keeps a colon inside the value, and ignores unknown fields and events without data', () => {
    const { events } = parseAll([new Uint8Array([0xef, 0xbb, 0xbf]), 'data: a: b\nfoo: bar\n\nid: 7\n\n']);
    expect(events).toEqual([{ event: 'message', data: 'a: b', id: '' }]);
  });

  it('counts an id only when its event is complete', () => {
    const parser = new SseParser('5');
    parser.push('id: 6\nevent: line\ndata: cut off');
    expect(parser.lastEventId).toBe('5');
    parser.end();
    expect(parser.lastEventId).toBe('5');
  });

  it('keeps the last id across events without one, and ignores ids containing NUL', () => {
    const { events } = parseAll(['id: 9\ndata: a\n\ndata: b\n\nid: x\u0000y\ndata: c\n\n']);
    expect(events.map((e) => e.id)).toEqual(['9', '9', '9']);
  });
});
