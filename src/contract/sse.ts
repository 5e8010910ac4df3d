/**
 * The `text/event-stream` format (WHATWG HTML, "Server-sent events"), parsed the same way by
 * the CLI (over Node's fetch) and the web UI (over the browser's): no Node or DOM APIs here.
 */

/** One dispatched Server-Sent Event. */
export interface SseEvent {
  /** The `event:` field, `message` when the server sent none. */
  event: string;
  /** The `data:` fields joined with `\n`. */
  data: string;
  /** The last event id as of this event: what to send as `Last-Event-ID` to resume after it. */
  id: string;
}

/**
 * Incremental parser of the `text/event-stream` format (WHATWG HTML, "Server-sent events"):
 * feed it chunks cut anywhere — inside a line, between `\r` and `\n`, inside a UTF-8
 * sequence — and it returns the events completed so far.
 *
 * One deliberate leniency: an event with an `event:` field but no `data:` is dispatched (the
 * spec drops it), so a bare `event: end` still ends the stream.
 */
export class SseParser {
  /** Id of the last dispatched event; an event cut off by a dropped connection never counts. */
  lastEventId: string;
  /** The server's `retry:` advice in milliseconds, if it gave one. */
  retry: number | undefined;

  private readonly decoder = new TextDecoder('utf-8');
  private partial = '';
  private skipLeadingLf = false;
  private data: string[] = [];
  private hasData = false;
  private eventType = '';
  private idBuffer: string;

  constructor(lastEventId = '') {
    this.lastEventId = lastEventId;
    this.idBuffer = lastEventId;
  }

  /** Parses the next chunk; bytes are decoded as a UTF-8 stream (a BOM at the start is dropped). */
  push(chunk: string | Uint8Array): SseEvent[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    const events: SseEvent[] = [];
    let start = 0;
    if (this.skipLeadingLf) {
      this.skipLeadingLf = false;
      if (text.charCodeAt(0) === 10) start = 1;
    }
    for (let i = start; i < text.length; i += 1) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      const line = this.partial + text.slice(start, i);
      this.partial = '';
      this.line(line, events);
      if (c === 13) {
        // CRLF is one line end, but the LF may arrive in the next chunk.
        if (i + 1 === text.length) this.skipLeadingLf = true;
        else if (text.charCodeAt(i + 1) === 10) i += 1;
      }
      start = i + 1;
    }
    this.partial += text.slice(start);
    return events;
  }

  /**
   * The stream ended. An event still missing its blank line is discarded, as the spec says:
   * it may be cut off, and counting it would make a resume skip it.
   */
  end(): SseEvent[] {
    this.decoder.decode();
    this.partial = '';
    this.resetEvent();
    return [];
  }

  private line(line: string, events: SseEvent[]): void {
    if (line === '') {
      this.dispatch(events);
      return;
    }
    if (line.charCodeAt(0) === 58 /* ':' */) return; // a comment: heartbeats keep proxies from closing the stream
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\u0000')) this.idBuffer = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored by the spec
    }
  }

  private dispatch(events: SseEvent[]): void {
    this.lastEventId = this.idBuffer;
    if (this.hasData || this.eventType !== '') {
      events.push({ event: this.eventType || 'message', data: this.data.join('\n'), id: this.lastEventId });
    }
    this.resetEvent();
  }

  private resetEvent(): void {
    this.data = [];
    this.hasData = false;
    this.eventType = '';
  }
}
