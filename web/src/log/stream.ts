import { useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from 'react';
import type { ApiClient } from '../api/client';
import type { Build, LogLine } from '../api/types';
import { LogBuffer } from './buffer';
import { fromLogBatch } from '../../../src/contract/log-stream.js';
import { readEventStream } from './sse';

/** Lines per JSON page when catching up (the API's maximum). */
const PAGE = 5000;
const RETRY_MS = 3000;

export type StreamState = 'loading' | 'live' | 'complete' | 'reconnecting' | 'failed';

interface Callbacks {
  onState: (state: StreamState, error?: unknown) => void;
  /** A `status` event: the build changed (its stages may have too). */
  onStatus: (build: Build) => void;
}

/**
 * Fills `buffer` with a build's log: stored lines first as JSON pages (5,000 at a time), then —
 * unless the log is complete — the live stream (SSE over fetch) from the last line held, until
 * its `end` event. If the stream breaks, it starts over from the last line after a pause, so
 * nothing is missed or shown twice. Returns a function that stops everything.
 */
export function streamLog(
  api: ApiClient,
  buildId: number,
  buffer: LogBuffer,
  callbacks: Callbacks,
): () => void {
  const controller = new AbortController();
  const { signal } = controller;
  let retry: ReturnType<typeof setTimeout> | undefined;

  const catchUp = async (): Promise<boolean> => {
    for (;;) {
      const page = await api.logPage(buildId, buffer.lastSeq, PAGE, signal);
      buffer.add(page.lines);
      if (page.complete) return true;
      if (page.lines.length < PAGE) return false;
    }
  };

  /**
   * Follows the live log: `end` when it saw the end (every line is in), `lag` when the server
   * ended the stream because this page fell behind (resume at once), else `closed`.
   */
  const follow = async (): Promise<'end' | 'lag' | 'closed'> => {
    const body = await api.logStream(buildId, buffer.lastSeq, signal);
    callbacks.onState('live');
    let outcome: 'end' | 'lag' | 'closed' = 'closed';
    await readEventStream(body, (events) => {
      let lines: LogLine[] = [];
      for (const event of events) {
        if (event.event === 'lines') {
          const batch = fromLogBatch(JSON.parse(event.data));
          lines = lines.length === 0 ? batch : lines.concat(batch);
        } else if (event.event === 'line') lines.push(JSON.parse(event.data) as LogLine);
        else if (event.event === 'status') callbacks.onStatus(JSON.parse(event.data) as Build);
        else if (event.event === 'end') outcome = 'end';
        else if (event.event === 'lag') outcome = 'lag';
      }
      buffer.add(lines);
    });
    return outcome;
  };

  const start = async () => {
    callbacks.onState(buffer.lines.length === 0 ? 'loading' : 'reconnecting');
    try {
      const outcome = (await catchUp()) ? 'end' : await follow();
      if (outcome === 'end') {
        buffer.finish();
        callbacks.onState('complete');
        return;
      }
      // Behind, not broken: catch up from the last line held without a pause.
      if (outcome === 'lag' && !signal.aborted) {
        void start();
        return;
      }
      callbacks.onState('reconnecting');
    } catch (error) {
      if (signal.aborted) return;
      callbacks.onState('failed', error);
    }
    if (!signal.aborted) retry = setTimeout(() => void start(), RETRY_MS);
  };

  void start();
  return () => {
    controller.abort();
    if (retry !== undefined) clearTimeout(retry);
  };
}

/**
 * A build's log for React: the buffer (re-rendering at most once a frame as lines arrive),
 * and the state of the connection.
 */
export function useLogStream(
  api: ApiClient,
  buildId: number,
  onStatus: (build: Build) => void,
): { buffer: LogBuffer; version: number; state: StreamState; error: unknown } {
  // One buffer per mounted build page (the page is keyed by build, so `buildId` never changes).
  const [buffer] = useState(() => new LogBuffer());
  const version = useSyncExternalStore(buffer.subscribe, buffer.getVersion);
  const [{ state, error }, setState] = useState<{ state: StreamState; error: unknown }>({
    state: 'loading',
    error: undefined,
  });
  const statusListener = useRef(onStatus);
  useLayoutEffect(() => {
    statusListener.current = onStatus;
  });
  useEffect(
    () =>
      streamLog(api, buildId, buffer, {
        onState: (next, err) => setState({ state: next, error: err }),
        onStatus: (build) => statusListener.current(build),
      }),
    [api, buildId, buffer],
  );
  return { buffer, version, state, error };
}
