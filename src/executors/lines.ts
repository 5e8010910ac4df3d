import { StringDecoder } from 'node:string_decoder';

/**
 * Longest piece of a line, in UTF-16 code units, a sink receives. Longer lines arrive as
 * several pieces (all but the last flagged `continues`), so one runaway `cat` of a minified
 * file cannot make a stored log line (and its storage chunk, and the UI row that renders it)
 * unbounded. Every executor uses the same cap so that the same output gives the same log
 * everywhere.
 */
export const MAX_LINE_LENGTH = 64 * 1024;

/**
 * Longest logical line (between two newlines), in UTF-16 code units, that is kept. The rest of
 * a longer line is discarded as it streams in, never buffered, and the line ends with
 * {@link truncationMarker}: a step printing 50 MB without a newline costs the server this much
 * memory per stream, not 50 MB.
 */
export const MAX_LOGICAL_LINE = 1024 * 1024;

/** What ends a logical line that was cut at {@link MAX_LOGICAL_LINE}; sizes in UTF-8 bytes. */
export function truncationMarker(totalBytes: number, keptBytes: number): string {
  return `… [line truncated: ${totalBytes.toLocaleString('en-US')} bytes, kept ${keptBytes.toLocaleString('en-US')}]`;
}

export interface LineSplitterOptions {
  /** Cap on one emitted piece; default {@link MAX_LINE_LENGTH}. */
  maxLineLength?: number;
  /** Cap on one logical line; default {@link MAX_LOGICAL_LINE}; at least `maxLineLength`. */
  maxLogicalLine?: number;
}

/**
 * Receives one piece of a line. `continues` is true when the next piece of the same stream is
 * the rest of this logical line (it was cut at the piece cap), so a consumer that must see
 * whole lines (the secret masker) can join them; it is bounded by the logical-line cap.
 */
export type LineEmitter = (text: string, continues: boolean) => void;

/**
 * Turns a byte stream (chunks as they come off a pipe) into text lines without their
 * `\n` / `\r\n` ending. UTF-8 is decoded across chunk boundaries; invalid bytes become U+FFFD,
 * so binary output never throws. Call {@link flush} once at end of stream to emit a last line
 * that has no newline. Memory held: at most one piece, whatever the input.
 */
export class LineSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private readonly max: number;
  private readonly maxLogical: number;
  /** Text of the current line not emitted yet; never contains `\n`; at most `max` (+1 for a `\r`). */
  private pending = '';
  /** Code units of the current line already emitted as pieces. */
  private emitted = 0;
  /** UTF-8 bytes of those pieces (only counted for lines long enough to be cut). */
  private emittedBytes = 0;
  /** Past the logical cap: the rest of the line is counted, not kept. */
  private discarding = false;
  private totalBytes = 0;
  private discardedCr = false;

  constructor(
    private readonly emit: LineEmitter,
    options: LineSplitterOptions = {},
  ) {
    const max = options.maxLineLength ?? MAX_LINE_LENGTH;
    if (!Number.isInteger(max) || max < 2)
      throw new RangeError(`maxLineLength must be an integer >= 2, got ${max}`);
    const maxLogical = options.maxLogicalLine ?? Math.max(MAX_LOGICAL_LINE, max);
    if (!Number.isInteger(maxLogical) || maxLogical < max)
      throw new RangeError(`maxLogicalLine must be an integer >= maxLineLength (${max}), got ${maxLogical}`);
    this.max = max;
    this.maxLogical = maxLogical;
  }

  /** Feeds the next chunk of the stream. */
  write(chunk: Buffer): void {
    const text = this.decoder.write(chunk);
    if (text.length === 0) return;
    let start = 0;
    let nl = text.indexOf('\n');
    while (nl !== -1) {
      if (nl - start <= this.max && this.pending.length === 0 && this.emitted === 0 && !this.discarding) {
        // A whole line within the chunk, no longer than a piece (nearly every line): what
        // `append` and `endLine` do, without building it up in `pending`.
        this.emit(text.slice(start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl), false);
      } else {
        this.append(text, start, nl);
        this.endLine();
      }
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    if (start < text.length) this.append(text, start, text.length);
  }

  /** Ends the stream: emits a partial last line (and any incomplete UTF-8 sequence as U+FFFD). */
  flush(): void {
    const rest = this.decoder.end();
    if (rest.length > 0) this.append(rest, 0, rest.length);
    if (this.pending.length > 0 || this.emitted > 0 || this.discarding) this.endLine();
  }

  /** Adds `text[start, end)` (no newline in it) to the current line. */
  private append(text: string, start: number, end: number): void {
    if (start === end) return;
    if (this.discarding) {
      this.totalBytes += Buffer.byteLength(
        start === 0 && end === text.length ? text : text.slice(start, end),
      );
      this.discardedCr = text.charCodeAt(end - 1) === 13;
      return;
    }
    const room = this.maxLogical - this.emitted - this.pending.length;
    const length = end - start;
    // One `\r` over the cap may be the first half of a `\r\n`: it is not content.
    const fits = length <= room || (length === room + 1 && text.charCodeAt(end - 1) === 13);
    if (fits) {
      this.pending += start === 0 && end === text.length ? text : text.slice(start, end);
      this.emitFullPieces();
      return;
    }
    const keep = cutAt(text, start + room);
    this.pending += text.slice(start, keep);
    const rest = text.slice(keep, end);
    this.discardedCr = rest.charCodeAt(rest.length - 1) === 13;
    this.emitFullPieces();
    // Everything kept goes out now; from here on the line only costs a byte count.
    this.totalBytes = this.emittedBytes + Buffer.byteLength(this.pending) + Buffer.byteLength(rest);
    this.emitPieces(this.pending, true);
    this.pending = '';
    this.discarding = true;
  }

  /** The newline (or the end of the stream) ends the current line. */
  private endLine(): void {
    if (this.discarding) {
      // The `\r` of a `\r\n` is not part of the line.
      const total = this.totalBytes - (this.discardedCr ? 1 : 0);
      this.emit(truncationMarker(total, this.emittedBytes), false);
    } else {
      let text = this.pending;
      if (text.charCodeAt(text.length - 1) === 13) text = text.slice(0, -1);
      this.emitPieces(text, false);
    }
    this.pending = '';
    this.emitted = 0;
    this.emittedBytes = 0;
    this.discarding = false;
    this.totalBytes = 0;
    this.discardedCr = false;
  }

  /**
   * Emits full-cap pieces of the unterminated line while it is longer than the cap. A trailing
   * `\r` does not count: it may be the first half of a `\r\n`, and the pieces must be cut
   * where they would be had the whole line come in one chunk.
   */
  private emitFullPieces(): void {
    const buf = this.pending;
    const limit = buf.charCodeAt(buf.length - 1) === 13 ? buf.length - 1 : buf.length;
    let start = 0;
    while (limit - start > this.max) {
      const cut = cutAt(buf, start + this.max);
      this.emitPiece(buf.slice(start, cut), true);
      start = cut;
    }
    if (start > 0) this.pending = buf.slice(start);
  }

  /** Emits `text` as pieces of at most the cap; the last one flagged `last`. */
  private emitPieces(text: string, continues: boolean): void {
    let start = 0;
    while (text.length - start > this.max) {
      const cut = cutAt(text, start + this.max);
      this.emitPiece(text.slice(start, cut), true);
      start = cut;
    }
    if (start < text.length || !continues) this.emitPiece(start === 0 ? text : text.slice(start), continues);
  }

  private emitPiece(text: string, continues: boolean): void {
    if (continues) {
      this.emitted += text.length;
      this.emittedBytes += Buffer.byteLength(text);
    }
    this.emit(text, continues);
  }
}

/**
 * Splits text into pieces of at most `max` code units, never between the halves of a
 * surrogate pair; an empty text is one empty piece.
 */
export function cutPieces(text: string, max: number = MAX_LINE_LENGTH): string[] {
  if (text.length <= max) return [text];
  const pieces: string[] = [];
  let start = 0;
  while (text.length - start > max) {
    const cut = cutAt(text, start + max);
    pieces.push(text.slice(start, cut));
    start = cut;
  }
  pieces.push(text.slice(start));
  return pieces;
}

/** Moves a cut back by one if it would separate the halves of a surrogate pair. */
function cutAt(buf: string, cut: number): number {
  const before = buf.charCodeAt(cut - 1);
  return before >= 0xd800 && before <= 0xdbff ? cut - 1 : cut;
}
