import type { LogLine } from '../../../contract/dto.js';
import { fromLogBatch } from '../../../contract/log-stream.js';
import { SseParser } from '../../../contract/sse.js';
import type { SseEvent } from '../../../contract/sse.js';

/** The log lines of the events, of either format (`lines` batches or `line` events). */
export function linesOf(events: readonly SseEvent[]): LogLine[] {
  return events.flatMap((e) =>
    e.event === 'lines'
      ? fromLogBatch(JSON.parse(e.data))
      : e.event === 'line'
        ? [JSON.parse(e.data) as LogLine]
        : [],
  );
}

/** One real SSE connection, recording every event, for tests. */
export interface SseSession {
  readonly status: number;
  readonly contentType: string;
  readonly events: SseEvent[];
  /** Comment lines seen (heartbeats). */
  readonly comments: number;
  /** Resolves when the server closed the stream (or it was aborted). */
  readonly closed: Promise<void>;
  /** Waits until `predicate` holds for the events so far; fails after `timeoutMs`. */
  waitFor(predicate: (events: SseEvent[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Drops the connection as a client that goes away would. */
  abort(): void;
  /** Seqs of the lines (either format), in arrival order. */
  seqs(): number[];
}

export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseSession> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  const parser = new SseParser();
  let comments = 0;
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const waiter of waiters) waiter();
  };
  const closed = (async () => {
    if (!response.ok || response.body === null) return;
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        comments += (decoder.decode(chunk.value, { stream: true }).match(/^:/gm) ?? []).length;
        events.push(...parser.push(chunk.value));
        notify();
      }
    } catch {
      // aborted by the test
    } finally {
      notify();
    }
  })();
  let done = false;
  void closed.then(() => {
    done = true;
    notify();
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    events,
    get comments() {
      return comments;
    },
    closed,
    abort: () => controller.abort(),
    seqs: () => linesOf(events).map((line) => line.seq),
    waitFor: (predicate, what, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (predicate(events)) {
            cleanup();
            resolve();
          } else if (done) {
            cleanup();
            reject(new Error(`stream closed before: ${what} (got ${events.length} events)`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for: ${what} (got ${events.length} events)`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      }),
  };
}
