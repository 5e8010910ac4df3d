import { setTimeout as sleepFor } from 'node:timers/promises';
import { SseParser, type SseEvent } from '../../contract/sse.js';

export type { SseEvent };

/** Options of {@link followSse}. Times are milliseconds. */
export interface FollowSseOptions {
  headers?: Record<string, string>;
  fetch?: typeof fetch;
  /** Resume after this event id (sent as `Last-Event-ID` on the first request too). */
  lastEventId?: string;
  /** Delay before the first reconnect; doubled on each failed attempt. Default 250. */
  initialDelayMs?: number;
  /** Cap of the reconnect delay. Default 5000. */
  maxDelayMs?: number;
  /** Give up when no connection could be made for this long. Default 60000. */
  giveUpAfterMs?: number;
  /**
   * Treat a connection as dead after this long without a byte (heartbeats count), for
   * networks that drop a connection without telling either side. 0 disables. Default 60000.
   */
  idleTimeoutMs?: number;
  /** Stops following; the generator then throws the signal's reason. */
  signal?: AbortSignal;
  /** Error for an HTTP status that retrying cannot fix (4xx). */
  toError?: (response: Response, body: string) => Error;
  /** Error thrown on giving up after connection failures. */
  unreachable?: (cause: unknown) => Error;
  /** Called once when a connection is lost (not again for each failed retry). */
  onDisconnect?: (cause: unknown) => void;
  /** Called when a connection is back after a loss. */
  onReconnect?: () => void;
  /** Replaceable for tests, so that backoff needs no real waiting. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Replaceable for tests, together with `sleep`. */
  now?: () => number;
}

/** Statuses a reconnect may cure: the server is restarting, overloaded, or behind a proxy that is. */
const RETRYABLE_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

/**
 * Follows an SSE endpoint until its `end` event, yielding every event once and in order.
 * A dropped connection — a server restart included — is reopened with `Last-Event-ID`, so
 * the server resumes after the last event this reader received: nothing is missed, nothing
 * repeated. A `lag` event (the server ended the stream because this reader fell behind) is
 * not yielded: the stream is reopened at once, without a disconnect notice. Reconnects back off exponentially (capped) and give up after `giveUpAfterMs`
 * without a connection. HTTP errors other than the retryable ones end it at once.
 */
export async function* followSse(url: string, options: FollowSseOptions = {}): AsyncGenerator<SseEvent> {
  const fetchImpl = options.fetch ?? fetch;
  const initialDelay = options.initialDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 5000;
  const giveUpAfter = options.giveUpAfterMs ?? 60_000;
  const idleTimeout = options.idleTimeoutMs ?? 60_000;
  const sleep =
    options.sleep ??
    ((ms: number, signal?: AbortSignal) => sleepFor(ms, undefined, signal ? { signal } : {}));
  const now = options.now ?? Date.now;
  const { signal } = options;

  let lastEventId = options.lastEventId ?? '';
  let retryAdvice: number | undefined;
  /** The server ended the stream with `lag` (this reader fell behind): resume at once. */
  let lagged = false;
  let delay = initialDelay;
  let lostAt: number | undefined;

  for (;;) {
    signal?.throwIfAborted();
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const idle =
      idleTimeout > 0
        ? setTimeout(
            () => controller.abort(new Error(`no data from the server for ${idleTimeout / 1000}s`)),
            idleTimeout,
          )
        : undefined;
    let cause: unknown;
    let httpError: Error | undefined;
    try {
      const headers: Record<string, string> = {
        ...options.headers,
        accept: 'text/event-stream',
        'cache-control': 'no-cache',
      };
      if (lastEventId !== '') headers['last-event-id'] = lastEventId;
      let response: Response | undefined;
      try {
        response = await fetchImpl(url, { headers, signal: controller.signal });
      } catch (error) {
        signal?.throwIfAborted();
        cause = controller.signal.aborted ? controller.signal.reason : error;
      }
      if (response && !response.ok) {
        const body = await response.text().catch(() => '');
        const error =
          options.toError?.(response, body) ??
          new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
        if (!RETRYABLE_STATUS.has(response.status)) throw error;
        cause = httpError = error;
      } else if (response) {
        const type = response.headers.get('content-type') ?? '';
        if (!type.toLowerCase().startsWith('text/event-stream')) {
          await response.body?.cancel().catch(() => undefined);
          throw new Error(`${url}: expected an event stream, got "${type || 'no content type'}"`);
        }
        if (lostAt !== undefined) options.onReconnect?.();
        lostAt = undefined;
        const parser = new SseParser(lastEventId);
        const reader = (response.body as ReadableStream<Uint8Array> | null)?.getReader();
        try {
          for (;;) {
            const chunk = reader ? await reader.read() : { done: true as const, value: undefined };
            idle?.refresh();
            if (chunk.done) {
              parser.end();
              cause = new Error('the server closed the stream');
              break;
            }
            const events = parser.push(chunk.value);
            retryAdvice = parser.retry ?? retryAdvice;
            // A connection that delivered data is a healthy one: back to short delays.
            delay = Math.min(retryAdvice ?? initialDelay, maxDelay);
            for (const event of events) {
              lastEventId = event.id;
              if (event.event === 'lag') {
                lagged = true;
                continue;
              }
              yield event;
              if (event.event === 'end') return;
            }
            lastEventId = parser.lastEventId;
          }
        } catch (error) {
          signal?.throwIfAborted();
          cause = controller.signal.aborted ? controller.signal.reason : error;
        }
      }
    } finally {
      clearTimeout(idle);
      signal?.removeEventListener('abort', onAbort);
      controller.abort();
    }

    if (lagged) {
      // Not a lost connection: the server asked for a resume, which is exact and immediate.
      lagged = false;
      continue;
    }
    if (lostAt === undefined) {
      lostAt = now();
      options.onDisconnect?.(cause);
    }
    if (now() - lostAt >= giveUpAfter) {
      // A server that answers but keeps failing is reachable: its own error says more.
      if (httpError) throw httpError;
      throw (
        options.unreachable?.(cause) ??
        new Error(`${url}: no connection for ${giveUpAfter / 1000}s`, { cause })
      );
    }
    await sleep(delay, signal);
    delay = Math.min(delay * 2, maxDelay);
  }
}
