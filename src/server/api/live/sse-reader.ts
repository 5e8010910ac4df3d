import type { Build, Status } from '../../../store/index.js';
import type { LogStore } from '../../logs/types.js';
import type { FeedListener } from './build-feed.js';
import { HEARTBEAT_FRAME, LineBatch, endFrame, statusFrame } from './sse-format.js';

/** A batch up to this size is written in one go (the usual case: a few short lines). */
const SMALL_BATCH = 64 * 1024;

/** Where a reader writes: an HTTP response in the server, an array in unit tests. */
export interface SseSink {
  /** Writes a chunk; false when the client is behind (`backedUp`). */
  write(chunk: string): boolean;
  /** The client is behind: the reader stops writing live lines and waits for `drained`. */
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
  onError?: (error: unknown) => void;
}

/**
 * One SSE connection following a build's log, exactly once: it sends the stored lines after
 * `after`, then live lines from its feed, and never a seq at or below the last one sent.
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
    this.send(batch);
    if (this.sink.backedUp) {
      this.pumping = true;
      void this.pump();
    }
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
        for (const batch of waiting) this.send(batch);
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
    if (batch.firstSeq > this.lastSent && batch.size <= SMALL_BATCH / 2) {
      this.sink.write(batch.frames);
      this.lastSent = batch.lastSeq;
      return true;
    }
    let from = 0;
    while (from < batch.lines.length && batch.lines[from]!.seq <= this.lastSent) from += 1;
    for (const group of batch.groups(from)) {
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
