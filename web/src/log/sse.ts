import { SseParser, type SseEvent } from '../../../src/contract/sse.js';

export type { SseEvent };

/** Work done between yields to the browser, so a burst of lines never blocks a frame. */
const SLICE_MS = 8;
/** Events handed over at once before checking the time. */
const BATCH = 256;
/** Characters of event data handed over at once: one `lines` event may hold thousands of lines. */
const BATCH_CHARS = 256 * 1024;

const yieldToBrowser = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/**
 * Reads a `text/event-stream` response with the shared parser (src/contract/sse.ts) and hands
 * its events over a network chunk at a time. Used instead of `EventSource` for the live log:
 * one call per chunk instead of one DOM event per line (what keeps a 100,000-line burst
 * smooth), the token in a header rather than the URL, and the caller decides how to resume.
 * Resolves when the stream ends.
 */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  onEvents: (events: SseEvent[]) => void,
): Promise<void> {
  const reader = body.getReader();
  const parser = new SseParser();
  let sliceStart = performance.now();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      parser.end();
      return;
    }
    const events = parser.push(value);
    // A big chunk (a burst of stored lines) is handed over in slices, yielding in between:
    // chunks already received resolve `read()` without a task boundary.
    for (let start = 0; start < events.length;) {
      let end = start;
      let chars = 0;
      while (end < events.length && end - start < BATCH && chars < BATCH_CHARS)
        chars += events[end++]!.data.length;
      onEvents(events.slice(start, end));
      start = end;
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToBrowser();
        sliceStart = performance.now();
      }
    }
  }
}
