import type { Build, Status } from '../../../store/index.js';
import type { LogStore } from '../../logs/types.js';
import type { FeedListener } from './build-feed.js';
import type { LogStreamFormat } from '../../../contract/log-stream.js';
import { HEARTBEAT_FRAME, LineBatch, endFrame, lagFrame, statusFrame } from './sse-format.js';

/** Default of {@link SseReaderOptions.maxLagBytes}. */
export const MAX_LAG_BYTES = 4 * 1024 * 1024;

/** Where a reader writes: an HTTP response in the server, an array in unit tests. */
export interface SseSink {
  /** Writes a chunk (a live batch's bytes are shared by every reader: never changed). */
  write(chunk: string | Uint8Array): void;
  /** Bytes written that the client has not taken yet. */
  readonly queued: number;
  /** The client is behind: reading the backlog pauses until `drained`. */
  readonly backedUp: boolean;
  readonly closed: boolean;
  /** Resolves when the buffer has drained or the connection is gone. */
  drained(): Promise<void>;
  end(): void;
}

export interface SseReaderOptions {
  /** Lines per store read while catching up. Default 2000. */
  pageSize?: number;
  /**
   * Live lines held while catching up from the store. Beyond it they are dropped and read
   * from the store again (they are stored before they are published), so a slow reader
   * costs bounded memory. Default 20000.
   */
  maxBuffered?: number;
  /** The same bound in characters of line text. Default 8 Mi. */
  maxBufferedChars?: number;
  /** `lines` events (default) or one `line` event per line. */
  format?: LogStreamFormat;
  /**
   * Bytes a following reader's client may leave untaken before its stream is ended with a
   * `lag` event (it reconnects and resumes from the store). Default {@link MAX_LAG_BYTES}.
   */
  maxLagBytes?: number;
  onError?: (error: unknown) => void;
  /** The stream was ended with `lag` (for diagnostics). */
  onLag?: (after: number, queuedBytes: number) => void;
}

/**
 * One SSE connection following a build's log, exactly once: it sends the stored lines after
 * `after`, then live lines from its feed, and never a seq at or below the last one sent.
 *
 * Live lines are written as their batch's shared bytes. A client more than `maxLagBytes`
 * behind is not buffered for: its stream ends with a `lag` event, and its reconnect (with
 * `Last-Event-ID`) reads what it missed from the store, so a slow reader costs bounded memory
 * and the others never wait for it.
 *
 * While it reads from the store ("pumping": at the start, and whenever its client cannot
 * keep up) live lines wait in a buffer. When the store has nothing more, the buffer is
 * flushed: the feed hands out every line stored after the pump began, so store and buffer
 * together miss nothing, and the seq check drops what both have.
 */
export class SseReader implements FeedListener {
  private lastSent: number;
  private sentStatus: Status | undefined;
  private pumping = true;
  private buffer: LineBatch[] = [];
  private buffered = 0;
  private bufferedChars = 0;
  private overflowed = false;
  private ending: Build | undefined;
  private done = false;
  private readonly pageSize: number;
  private readonly maxBuffered: number;
  private readonly maxBufferedChars: number;
  private readonly format: LogStreamFormat;
  private readonly maxLagBytes: number;

  constructor(
    private readonly sink: SseSink,
    private readonly buildId: number,
    private readonly logs: LogStore,
    after: number,
    private readonly options: SseReaderOptions = {},
  ) {
    this.lastSent = after;
    this.pageSize = options.pageSize ?? 2000;
    this.maxBuffered = options.maxBuffered ?? 20_000;
    this.maxBufferedChars = options.maxBufferedChars ?? 8 * 1024 * 1024;
    this.format = options.format ?? 'batch';
    this.maxLagBytes = options.maxLagBytes ?? MAX_LAG_BYTES;
  }

  /** Seq of the last line sent. */
  get position(): number {
    return this.lastSent;
  }

  /** Starts sending the backlog; call once the feed is ready (see `FeedMembership.ready`). */
  start(): void {
    if (!this.done) void this.pump();
  }

  lines(batch: LineBatch): void {
    if (this.done) return;
    if (this.pumping) {
      if (this.overflowed) return;
      this.buffered += batch.lines.length;
      this.bufferedChars += batch.size;
      if (this.buffered > this.maxBuffered || this.bufferedChars > this.maxBufferedChars) {
        this.buffer = [];
        this.buffered = 0;
        this.bufferedChars = 0;
        this.overflowed = true;
      } else {
        this.buffer.push(batch);
      }
      return;
    }
    if (batch.lastSeq <= this.lastSent) return;
    // Hub and store overlap: the rest of a batch partly sent is encoded for this reader alone.
    const fresh =
      batch.firstSeq > this.lastSent
        ? batch
        : new LineBatch(batch.lines.filter((line) => line.seq > this.lastSent));
    const frame = fresh.frame(this.format);
    // One frame always goes to a client that has taken everything, however big it is.
    if (this.sink.queued > 0 && this.sink.queued + frame.length > this.maxLagBytes) {
      this.lag();
      return;
    }
    this.sink.write(frame);
    this.lastSent = fresh.lastSeq;
  }

  status(build: Build): void {
    if (this.done || build.status === this.sentStatus) return;
    this.sentStatus = build.status;
    this.sink.write(statusFrame(build));
  }

  end(build: Build): void {
    if (this.done) return;
    if (this.pumping) this.ending = build;
    else this.finish(build);
  }

  heartbeat(): void {
    if (!this.done && !this.sink.backedUp) this.sink.write(HEARTBEAT_FRAME);
  }

  disconnect(): void {
    if (this.done) return;
    this.done = true;
    this.sink.end();
  }

  /** The client went away: stop without writing anything more. */
  abort(): void {
    this.done = true;
    this.buffer = [];
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        if (this.sink.backedUp) await this.sink.drained();
        if (this.stopped()) return;
        // An overflow while reading dropped live lines that the read may have missed: read again.
        do {
          this.overflowed = false;
          for (;;) {
            const page = await this.logs.read(this.buildId, this.lastSent, this.pageSize);
            if (this.stopped()) return;
            const complete = page.length === 0 || this.send(new LineBatch(page));
            if (this.sink.backedUp) await this.sink.drained();
            if (this.stopped()) return;
            // A page cut short by a slow client is read again from where it stopped.
            if (page.length < this.pageSize && complete) break;
          }
        } while (this.overflowed);
        const waiting = this.buffer;
        this.buffer = [];
        this.buffered = 0;
        this.bufferedChars = 0;
        for (const batch of waiting) {
          // A live batch (at most a writer's flush) goes whole, as the bytes shared with the others.
          if (batch.firstSeq > this.lastSent && !this.sink.backedUp) {
            this.sink.write(batch.frame(this.format));
            this.lastSent = batch.lastSeq;
          } else this.send(batch);
        }
        // Nothing can have arrived since the store said "no more" without an await in
        // between, so the reader is level with its feed unless the client is slow.
        if (!this.sink.backedUp) break;
      }
      this.pumping = false;
      if (this.ending !== undefined) this.finish(this.ending);
    } catch (error) {
      this.options.onError?.(error);
      this.disconnect();
    }
  }

  /** Ends the stream of a client too far behind; it resumes after `lastSent`. */
  private lag(): void {
    const queued = this.sink.queued;
    this.done = true;
    this.buffer = [];
    this.sink.write(lagFrame(this.lastSent, queued));
    this.sink.end();
    this.options.onLag?.(this.lastSent, queued);
  }

  /** Whether to give up: told to, or the connection is gone (even if nobody said so yet). */
  private stopped(): boolean {
    if (!this.done && this.sink.closed) this.abort();
    return this.done;
  }

  /**
   * Writes the lines of `batch` after the last one sent, a group at a time, and stops when
   * the client is behind: what a client has not taken stays in the store, not in memory (the
   * pump reads it from `lastSent` once the client drained). True when all was written.
   */
  private send(batch: LineBatch): boolean {
    if (batch.lastSeq <= this.lastSent) return true;
    if (this.sink.backedUp) return false;
    let from = 0;
    while (from < batch.lines.length && batch.lines[from]!.seq <= this.lastSent) from += 1;
    for (const group of batch.groups(from, this.format)) {
      this.sink.write(group.text);
      this.lastSent = group.lastSeq;
      if (this.sink.backedUp) return this.lastSent >= batch.lastSeq;
    }
    return true;
  }

  private finish(build: Build): void {
    this.status(build);
    this.done = true;
    this.sink.write(endFrame(build));
    this.sink.end();
  }
}
