import { Writable } from 'node:stream';

/** A pino log entry as it is written: one JSON object per line. */
export type LogEntry = Record<string, unknown>;

/** Requests seen "incoming" and not yet "completed", by request id; bounded. */
export type PendingRequests = Map<string, { method: string; url: string }>;

const MAX_PENDING = 10_000;
const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/**
 * One log entry as a person reads it on a terminal, or undefined for an entry that prints
 * nothing by itself. Fastify logs every request twice — "incoming request" with the method
 * and URL, "request completed" with the status and time — so the first is remembered in
 * `pending` and the second prints one line: `12:04:05 GET /api/v1/queue 200 3.1ms`. Anything
 * else prints its time, level and message, with the error's message and stack when it has
 * one (only server faults are logged with an error).
 */
export function formatLogEntry(entry: LogEntry, pending: PendingRequests): string | undefined {
  const time = clock(typeof entry.time === 'number' ? entry.time : Date.now());
  const reqId =
    typeof entry.reqId === 'string' || typeof entry.reqId === 'number' ? String(entry.reqId) : undefined;
  const req = record(entry.req);
  const res = record(entry.res);
  if (reqId !== undefined && req && entry.msg === 'incoming request') {
    if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value!);
    pending.set(reqId, { method: text(req.method, '?'), url: text(req.url, '?') });
    return undefined;
  }
  if (reqId !== undefined && res && entry.msg === 'request completed') {
    const seen = pending.get(reqId);
    pending.delete(reqId);
    const ms = typeof entry.responseTime === 'number' ? ` ${duration(entry.responseTime)}` : '';
    return `${time} ${seen?.method ?? '?'} ${seen?.url ?? '?'} ${text(res.statusCode, '?')}${ms}`;
  }
  const level = typeof entry.level === 'number' ? (LEVELS[entry.level] ?? String(entry.level)) : 'INFO';
  const err = record(entry.err);
  let line = `${time} ${level} ${text(entry.msg, '')}`.trimEnd();
  if (req) line += ` (${text(req.method, '?')} ${text(req.url, '?')})`;
  if (err) {
    line += `: ${text(err.message, 'error')}`;
    if (typeof err.stack === 'string') {
      const frames = err.stack.split('\n').filter((l) => /^\s+at /.test(l));
      if (frames.length > 0) line += `\n${frames.map((f) => `    ${f.trim()}`).join('\n')}`;
    }
  }
  return line;
}

/**
 * A stream for pino's `stream` option that writes {@link formatLogEntry} lines to `out`.
 * Lines that are not JSON pass through unchanged.
 */
export function prettyLogStream(out: NodeJS.WritableStream): Writable {
  const pending: PendingRequests = new Map();
  let partial = '';
  return new Writable({
    decodeStrings: false,
    write(chunk: string | Buffer, _encoding, callback) {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      let output = '';
      for (const raw of lines) {
        if (raw.trim() === '') continue;
        let entry: unknown;
        try {
          entry = JSON.parse(raw);
        } catch {
          output += `${raw}\n`;
          continue;
        }
        const line = record(entry) ? formatLogEntry(entry as LogEntry, pending) : raw;
        if (line !== undefined) output += `${line}\n`;
      }
      if (output === '') callback();
      else out.write(output, () => callback());
    },
  });
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function text(value: unknown, fallback: string): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : fallback;
}

function clock(ms: number): string {
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

function duration(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)}ms` : `${Math.round(ms)}ms`;
}
