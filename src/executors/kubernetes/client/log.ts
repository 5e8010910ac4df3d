/**
 * `followLog` on raw `pods/<pod>/log` requests. Not client-node's `Log`: it never calls `done`,
 * sends `pretty=<follow>`, drops the Status body of every error but 500, and cannot be aborted
 * before the answer's headers arrive.
 */
import type http from 'node:http';
import { KubeApiError } from '../kube-api.js';
import type { FollowLogOptions, LogLine } from '../kube-api.js';
import { LogLineReader, LogPosition } from './log-lines.js';
import { messageOf } from './http.js';
import type { Transport } from './http.js';
import { backoff, sleep } from './timing.js';

export interface LogContext {
  transport: Transport;
  namespace: string;
  /** Bound on the time to the answer's headers. */
  requestTimeoutMs: number;
  /**
   * A follow stream that sends nothing for this long is closed and resumed (after `ended()`),
   * so a half-open connection cannot hold a log forever; a quiet step costs one request per
   * period.
   */
  idleMs: number;
}

export async function followLog(
  context: LogContext,
  options: FollowLogOptions,
  onLine: (line: LogLine) => void,
): Promise<void> {
  const { signal } = options;
  const path = `/api/v1/namespaces/${encodeURIComponent(context.namespace)}/pods/${encodeURIComponent(options.pod)}/log`;
  const position = new LogPosition();
  let final = false;
  let waitingMs = 0;
  while (!signal.aborted) {
    let opened: { stream: http.IncomingMessage; request: http.ClientRequest };
    try {
      opened = await context.transport.open('GET', path, {
        query: {
          container: options.container,
          follow: final ? undefined : true,
          timestamps: true,
          sinceTime: position.sinceTime(),
        },
        signal,
        timeoutMs: context.requestTimeoutMs,
      });
    } catch (error) {
      if (signal.aborted) return;
      if (!(error instanceof KubeApiError)) throw error;
      // The pod is gone: so is its log.
      if (error.status === 404) return;
      // 400: the container is being created (or its image pulled); 0, 429, 5xx: the server is
      // away or busy. Anything else (401, 403…) will not change by waiting.
      const transient =
        error.status === 400 ||
        (error.status === 0 && error.reason !== 'ClientConfig') ||
        error.status === 429 ||
        error.status >= 500;
      if (!transient) throw error;
      waitingMs = backoff(waitingMs, error.status === 400 ? 1000 : 5000);
      await sleep(waitingMs, signal);
      continue;
    }
    waitingMs = 0;
    const reader = new LogLineReader(position, onLine);
    const clean = await pump(opened.stream, opened.request, reader, context.idleMs, signal);
    if (signal.aborted) return;
    if (final && clean) {
      reader.finish(true);
      return;
    }
    reader.finish(false);
    if (!final && (await options.ended())) final = true;
  }
}

/** Feeds the stream to `reader` until it ends (true), fails or idles (false), or `signal` aborts. */
function pump(
  stream: http.IncomingMessage,
  request: http.ClientRequest,
  reader: LogLineReader,
  idleMs: number,
  signal: AbortSignal,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let done = false;
    let timer = setTimeout(() => finish(false), idleMs);
    const onAbort = (): void => finish(false);
    const finish = (clean: boolean, error?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      stream.removeAllListeners('data');
      if (!clean) request.destroy();
      if (error !== undefined) reject(error instanceof Error ? error : new Error(messageOf(error)));
      else resolve(clean);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), idleMs);
      try {
        reader.push(chunk);
      } catch (error) {
        // `onLine` threw: the caller's error, not the stream's.
        finish(false, error);
      }
    });
    stream.on('end', () => finish(true));
    stream.on('error', () => finish(false));
    stream.on('close', () => finish(false));
  });
}
