import { StringDecoder } from 'node:string_decoder';

/**
 * Longest line, in UTF-16 code units, a sink receives. Longer lines arrive as several lines,
 * so one runaway `cat` of a minified file cannot make a log line (and its storage chunk, and
 * the UI row that renders it) unbounded. Every executor uses the same cap so that the same
 * output gives the same log everywhere.
 */
export const MAX_LINE_LENGTH = 64 * 1024;

export interface LineSplitterOptions {
  /** Cap on one emitted line; default {@link MAX_LINE_LENGTH}. */
  maxLineLength?: number;
}

/**
 * Turns a byte stream (chunks as they come off a pipe) into text lines without their
 * `\n` / `\r\n` ending. UTF-8 is decoded across chunk boundaries; invalid bytes become U+FFFD,
 * so binary output never throws. Call {@link flush} once at end of stream to emit a last line
 * that has no newline.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private readonly max: number;
  /** Text after the last newline seen; never contains `\n`; at most `max` long (+1 for a `\r`). */
  private pending = '';

  constructor(
    private readonly emit: (text: string) => void,
    options: LineSplitterOptions = {},
  ) {
    const max = options.maxLineLength ?? MAX_LINE_LENGTH;
    if (!Number.isInteger(max) || max < 2)
      throw new RangeError(`maxLineLength must be an integer >= 2, got ${max}`);
    this.max = max;
  }

  /** Feeds the next chunk of the stream. */
  write(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    if (text.length === 0) return;
    const buf = this.pending.length === 0 ? text : this.pending + text;
    // `pending` holds no newline, so the search can start after it.
    let start = 0;
    let nl = buf.indexOf('\n', this.pending.length);
    while (nl !== -1) {
      const end = nl > start && buf.charCodeAt(nl - 1) === 13 /* \r */ ? nl - 1 : nl;
      this.emitLine(buf, start, end);
      start = nl + 1;
      nl = buf.indexOf('\n', start);
    }
    this.pending = this.keepTail(buf, start);
  }

  /** Ends the stream: emits a partial last line (and any incomplete UTF-8 sequence as U+FFFD). */
  flush(): void {
    const rest = this.pending + this.decoder.end();
    this.pending = '';
    if (rest.length === 0) return;
    // A lone `\r` at the very end is the first half of a `\r\n` that never came.
    const end = rest.charCodeAt(rest.length - 1) === 13 ? rest.length - 1 : rest.length;
    this.emitLine(rest, 0, end);
  }

  /** Emits `buf[start, end)` as one line, or as several if it is over the cap. */
  private emitLine(buf: string, start: number, end: number): void {
    while (end - start > this.max) {
      const cut = this.cutAt(buf, start + this.max);
      this.emit(buf.slice(start, cut));
      start = cut;
    }
    this.emit(buf.slice(start, end));
  }

  /**
   * Emits full-cap pieces of an unterminated tail while it is longer than the cap, and returns
   * what is left. A trailing `\r` does not count: it may be the first half of a `\r\n`, and
   * the pieces must be cut where they would be had the whole line come in one chunk.
   */
  private keepTail(buf: string, start: number): string {
    const limit = buf.charCodeAt(buf.length - 1) === 13 ? buf.length - 1 : buf.length;
    while (limit - start > this.max) {
      const cut = this.cutAt(buf, start + this.max);
      this.emit(buf.slice(start, cut));
      start = cut;
    }
    return start === 0 ? buf : buf.slice(start);
  }

  /** Moves a cut back by one if it would separate the halves of a surrogate pair. */
  private cutAt(buf: string, cut: number): number {
    const before = buf.charCodeAt(cut - 1);
    return before >= 0xd800 && before <= 0xdbff ? cut - 1 : cut;
  }
}
