/**
 * Splits a `timestamps=true` log stream into {@link LogLine}s and drops what an earlier stream
 * of the same log already delivered, so that a follow resumed with `sinceTime` has no gap and
 * no duplicate. Memory is bounded: a line longer than {@link MAX_PIECE} goes out in pieces.
 */
import type { LogLine } from '../kube-api.js';

/** The largest piece of one line held in memory (and handed on at once). */
export const MAX_PIECE = 1024 * 1024;
/** `2006-01-02T15:04:05.999999999+07:00` is 35 bytes; a longer first word is not a timestamp. */
const MAX_STAMP = 40;
const STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 timestamp (nanoseconds allowed) as nanoseconds since the epoch. */
export function parseTimestamp(text: string): bigint | undefined {
  const match = STAMP.exec(text);
  if (!match) return undefined;
  const seconds = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  const nanos = BigInt((match[2] ?? '').padEnd(9, '0'));
  return BigInt(seconds) * 1_000_000n + nanos;
}

/**
 * How far a log has been delivered: the timestamp of the last line handed on (whole or in
 * part), how many lines with that timestamp were handed on whole, and how many bytes of the
 * next one with that timestamp (a long line cut mid-way).
 */
export class LogPosition {
  ts: bigint | undefined;
  count = 0;
  partial = 0;

  /** `sinceTime` for a resumed read: the last line's second (the API's precision). */
  sinceTime(): string | undefined {
    if (this.ts === undefined) return undefined;
    const seconds = this.ts / 1_000_000_000n - (this.ts < 0n && this.ts % 1_000_000_000n !== 0n ? 1n : 0n);
    return new Date(Number(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }
}

/** One stream's reader; the {@link LogPosition} is shared by the streams of one log. */
export class LogLineReader {
  private header: Buffer[] = [];
  private headerLength = 0;
  private inHeader = true;
  private inLine = false;
  /** The current line's timestamp; undefined when it has none (then it is never skipped). */
  private lineTs: bigint | undefined;
  /** Content bytes of the current line to drop (Infinity: all of it, a duplicate). */
  private skip = 0;
  private seen = 0;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private prevTs: bigint | undefined;
  /** Index of the current line among this stream's lines with the same timestamp. */
  private index = 0;

  constructor(
    private readonly position: LogPosition,
    private readonly deliver: (line: LogLine) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      if (end > start) this.bytes(chunk.subarray(start, end));
      if (newline === -1) return;
      this.endLine();
      start = newline + 1;
    }
  }

  /**
   * The stream ended. `final`: it was the last read of a complete log, so bytes after the last
   * newline are the log's end (delivered with `newline: false`); otherwise they are dropped,
   * as the resumed stream sends that line again.
   */
  finish(final: boolean): void {
    if (final && this.inLine) {
      if (this.inHeader) this.flushHeader(Buffer.alloc(0), -1);
      if (this.skip !== Infinity && this.pendingLength > 0) this.emit(this.take(), false);
    }
    this.resetLine();
  }

  private bytes(segment: Buffer): void {
    this.inLine = true;
    if (this.inHeader) {
      const space = segment.indexOf(32);
      if (space === -1 && this.headerLength + segment.length <= MAX_STAMP) {
        this.header.push(segment);
        this.headerLength += segment.length;
        return;
      }
      segment = this.flushHeader(segment, space);
    }
    this.content(segment);
  }

  /** Decides the current line's timestamp; returns what of `segment` is content. */
  private flushHeader(segment: Buffer, space: number): Buffer {
    const head = Buffer.concat(this.header);
    this.header = [];
    this.inHeader = false;
    const room = MAX_STAMP - this.headerLength;
    this.headerLength = 0;
    const stampEnd = space === -1 ? segment.length : space;
    const ts =
      stampEnd <= room
        ? parseTimestamp(Buffer.concat([head, segment.subarray(0, stampEnd)]).toString('latin1'))
        : undefined;
    this.startLine(ts);
    if (ts !== undefined) return segment.subarray(Math.min(segment.length, stampEnd + 1));
    this.content(head);
    return segment;
  }

  private startLine(ts: bigint | undefined): void {
    this.lineTs = ts;
    this.seen = 0;
    this.skip = 0;
    if (ts === undefined) return;
    this.index = ts === this.prevTs ? this.index + 1 : 0;
    this.prevTs = ts;
    const at = this.position;
    if (at.ts === undefined || ts > at.ts) return;
    if (ts < at.ts || this.index < at.count) this.skip = Infinity;
    else if (this.index === at.count) this.skip = at.partial;
  }

  private content(bytes: Buffer): void {
    const from = Math.min(bytes.length, Math.max(0, this.skip - this.seen));
    this.seen += bytes.length;
    if (from >= bytes.length) return;
    const kept = from > 0 ? bytes.subarray(from) : bytes;
    this.pending.push(kept);
    this.pendingLength += kept.length;
    while (this.pendingLength > MAX_PIECE) {
      const all = this.take();
      this.emit(all.subarray(0, MAX_PIECE), false);
      const rest = all.subarray(MAX_PIECE);
      this.pending = [rest];
      this.pendingLength = rest.length;
    }
  }

  private endLine(): void {
    if (this.inHeader) this.flushHeader(Buffer.alloc(0), -1);
    if (this.skip !== Infinity) this.emit(this.take(), true);
    this.resetLine();
  }

  private take(): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingLength = 0;
    return all;
  }

  private emit(text: Buffer, newline: boolean): void {
    const at = this.position;
    if (this.lineTs !== undefined) {
      if (at.ts === undefined || this.lineTs > at.ts) {
        at.ts = this.lineTs;
        at.count = 0;
        at.partial = 0;
      }
      if (newline) {
        at.count += 1;
        at.partial = 0;
      } else {
        at.partial += text.length;
      }
    }
    this.deliver({ text, newline });
  }

  private resetLine(): void {
    this.header = [];
    this.headerLength = 0;
    this.inHeader = true;
    this.inLine = false;
    this.pending = [];
    this.pendingLength = 0;
    this.seen = 0;
    this.skip = 0;
    this.lineTs = undefined;
  }
}
