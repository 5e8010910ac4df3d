import type { Build } from '../../../store/index.js';
import type { StoredLogLine } from '../../logs/types.js';
import { toBuild, toLogLine } from '../convert.js';

/**
 * The `text/event-stream` frames of the live log. Each frame is complete in itself, so frames
 * from different writers (lines, status, heartbeat) can follow each other in any order. JSON
 * never contains a raw newline, so every `data:` is one line.
 */

/** A log line; its `id` is the seq, which the client sends back as `Last-Event-ID`. */
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

/** Frames written in one `write` at most (unless one frame is bigger): the unit of backpressure. */
const WRITE_GROUP = 64 * 1024;

/** A batch of new lines shared by every reader of a build, encoded at most once. */
export class LineBatch {
  private encoded: string | undefined;
  private each: string[] | undefined;
  private textLength: number | undefined;

  constructor(readonly lines: readonly StoredLogLine[]) {}

  get firstSeq(): number {
    return this.lines[0]?.seq ?? 0;
  }

  get lastSeq(): number {
    return this.lines.at(-1)?.seq ?? 0;
  }

  /** All lines as SSE frames: with 200 readers, one `JSON.stringify` per line instead of 200. */
  get frames(): string {
    this.encoded ??= this.framesOf().join('');
    return this.encoded;
  }

  /** Code units of the lines' text: what holding the batch costs, roughly. */
  get size(): number {
    this.textLength ??= this.lines.reduce((sum, line) => sum + line.text.length, 0);
    return this.textLength;
  }

  /**
   * The frames of the lines from index `from`, in groups of about {@link WRITE_GROUP}
   * characters, each with the seq of its last line: a writer stops between groups when its
   * client is behind.
   */
  *groups(from: number): Generator<{ text: string; lastSeq: number }> {
    const frames = this.framesOf();
    let text = '';
    for (let i = from; i < frames.length; i++) {
      text += frames[i]!;
      if (text.length >= WRITE_GROUP || i === frames.length - 1) {
        yield { text, lastSeq: this.lines[i]!.seq };
        text = '';
      }
    }
  }

  private framesOf(): string[] {
    this.each ??= this.lines.map(lineFrame);
    return this.each;
  }
}
