import type { Build, Status } from '../../../store/index.js';
import type { LogStore, StoredLogLine } from '../../logs/types.js';
import type { FeedListener } from './build-feed.js';
import { HEARTBEAT_FRAME, LineBatch, endFrame, statusFrame } from './sse-format.js';

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
  private overflowed = false;
  private ending: Build | undefined;
  private done = false;
  private readonly pageSize: number;
  private readonly maxBuffered: number;

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
      if (this.buffered > this.maxBuffered) {
        this.buffer = [];
        this.buffered = 0;
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
            if (page.length > 0) this.send(new LineBatch(page));
            if (this.sink.backedUp) await this.sink.drained();
            if (this.stopped()) return;
            if (page.length < this.pageSize) break;
          }
        } while (this.overflowed);
        const waiting = this.buffer;
        this.buffer = [];
        this.buffered = 0;
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

  private send(batch: LineBatch): void {
    if (batch.lastSeq <= this.lastSent) return;
    if (batch.firstSeq > this.lastSent) {
      this.sink.write(batch.frames);
    } else {
      const fresh: StoredLogLine[] = batch.lines.filter((line) => line.seq > this.lastSent);
      this.sink.write(new LineBatch(fresh).frames);
    }
    this.lastSent = batch.lastSeq;
  }

  private finish(build: Build): void {
    this.status(build);
    this.done = true;
    this.sink.write(endFrame(build));
    this.sink.end();
  }
}
