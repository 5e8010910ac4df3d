import type { Build } from '../../../store/index.js';
import { batchJson } from '../../logs/batch-record.js';
import type { StoredLogLine } from '../../logs/types.js';
import { toLogBatch } from '../../../contract/log-stream.js';
import type { LogLag, LogStreamFormat } from '../../../contract/log-stream.js';
import { toBuild, toLogLine } from '../convert.js';

/**
 * The `text/event-stream` frames of the live log. Each frame is complete in itself, so frames
 * from different writers (lines, status, heartbeat) can follow each other in any order. JSON
 * never contains a raw newline, so every `data:` is one line.
 */

/**
 * A log line as its own event (`?format=line`, for simple clients); its `id` is the seq, which
 * the client sends back as `Last-Event-ID`.
 */
export function lineFrame(line: StoredLogLine): string {
  return `id: ${line.seq}\nevent: line\ndata: ${JSON.stringify(toLogLine(line))}\n\n`;
}

/** The build changed status. No `id`: the client's resume point stays at its last line. */
export function statusFrame(build: Build): string {
  return `event: status\ndata: ${JSON.stringify(toBuild(build))}\n\n`;
}

/**
 * The build is over and every line was sent. It carries the final build as data because a
 * browser's EventSource drops events without data.
 */
export function endFrame(build: Build): string {
  return `event: end\ndata: ${JSON.stringify(toBuild(build))}\n\n`;
}

/** A comment: keeps proxies and idle-timeouts from closing a quiet stream. */
export const HEARTBEAT_FRAME = ': keep-alive\n\n';

/**
 * Lines written in one `lines` event at most when a reader is sent part of a batch (its
 * backlog, read from the store), so that it can stop between frames when its client is behind.
 */
const WRITE_GROUP = 64 * 1024;

/** One `lines` event: the lines as a {@link LogBatch}, `id:` the seq of the last one. */
export function batchFrame(lines: readonly StoredLogLine[]): string {
  return `id: ${lines.at(-1)?.seq ?? 0}\nevent: lines\ndata: ${JSON.stringify(toLogBatch(lines))}\n\n`;
}

/**
 * The reader fell too far behind and the server ends its stream rather than buffer more. No
 * `id`: the client resumes after the last line it got.
 */
export function lagFrame(after: number, queuedBytes: number): string {
  const lag: LogLag = {
    after,
    message: `the client fell ${Math.round(queuedBytes / 1024)} KiB behind the live log; reconnect with Last-Event-ID: ${after} to resume`,
  };
  return `event: lag\ndata: ${JSON.stringify(lag)}\n\n`;
}

/**
 * A batch of new lines shared by every reader of a build: encoded at most once per format,
 * into bytes that every reader's socket is given as they are.
 */
export class LineBatch {
  private readonly encoded: Partial<Record<LogStreamFormat, Buffer>> = {};
  private textLength: number | undefined;

  constructor(readonly lines: readonly StoredLogLine[]) {}

  get firstSeq(): number {
    return this.lines[0]?.seq ?? 0;
  }

  get lastSeq(): number {
    return this.lines.at(-1)?.seq ?? 0;
  }

  /** The whole batch in `format`: with 200 readers, one encoding instead of 200. */
  frame(format: LogStreamFormat): Buffer {
    let bytes = this.encoded[format];
    if (bytes === undefined) {
      // The batch's JSON is the one its store record was made of, when the store made one.
      const text =
        format === 'batch'
          ? `id: ${this.lastSeq}\nevent: lines\ndata: ${batchJson(this.lines)}\n\n`
          : this.lines.map(lineFrame).join('');
      bytes = Buffer.from(text, 'utf8');
      this.encoded[format] = bytes;
    }
    return bytes;
  }

  /** Code units of the lines' text: what holding the batch costs, roughly. */
  get size(): number {
    this.textLength ??= this.lines.reduce((sum, line) => sum + line.text.length, 0);
    return this.textLength;
  }

  /**
   * The lines from index `from` in `format`, in groups of about {@link WRITE_GROUP} characters
   * of text, each with the seq of its last line: a writer stops between groups when its client
   * is behind. Encoded for one reader (a backlog, or the rest of a batch partly sent).
   */
  *groups(from: number, format: LogStreamFormat): Generator<{ text: string; lastSeq: number }> {
    let start = from;
    let chars = 0;
    for (let i = from; i < this.lines.length; i++) {
      chars += this.lines[i]!.text.length + 64;
      if (chars >= WRITE_GROUP || i === this.lines.length - 1) {
        const group = this.lines.slice(start, i + 1);
        yield {
          text: format === 'batch' ? batchFrame(group) : group.map(lineFrame).join(''),
          lastSeq: this.lines[i]!.seq,
        };
        start = i + 1;
        chars = 0;
      }
    }
  }
}
