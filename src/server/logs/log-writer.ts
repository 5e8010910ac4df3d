import type { OutputPosition, OutputStream } from '../../executors/types.js';
import type { LogHub } from './log-hub.js';
import type { LogStore, StoredLogLine } from './types.js';

/**
 * Least time between two flushes of few lines. A line is flushed once the current turn of the
 * event loop is over (lines read together go together), unless such a flush was less than
 * this ago: then it waits for the rest of the interval, so a chatty build costs at most one
 * store write and one live event per interval, while a lone line is not held back at all.
 * A full batch (FLUSH_LINES or FLUSH_BYTES) is flushed at once.
 */
const FLUSH_INTERVAL_MS = 10;
const FLUSH_LINES = 2000;
/** A batch is stored at once when its text reaches this, so a batch of long lines stays small. */
const FLUSH_BYTES = 1024 * 1024;
/** Lines read per page when a writer resumes a stored log. */
const RESUME_PAGE_LINES = 10_000;

/** Default cap on the bytes of one build's log (`slipway server --max-log-bytes`). */
export const DEFAULT_MAX_LOG_BYTES = 64 * 1024 * 1024;

/** The one line written when a build's log reaches its cap. */
export const LOG_LIMIT_MARKER = '[log limit reached: further output dropped]';

export interface BuildLogLimits {
  /**
   * Cap on the UTF-8 bytes of the output lines of the build (steps and services). Past it,
   * output lines are dropped after one {@link LOG_LIMIT_MARKER} line; the server's own notes
   * (`system` lines: attempts, reasons) are still written. Default {@link DEFAULT_MAX_LOG_BYTES}.
   */
  maxBytes?: number;
}

/**
 * Collects a running build's lines, numbers them, stores them in batches and then publishes
 * them to live readers. One writer per build; `close` stores what is left.
 */
export class BuildLogWriter {
  private pending: StoredLogLine[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private lastFlushAt = 0;
  /** Lines flushed while the store was busy with earlier ones: stored together next. */
  private queued: StoredLogLine[][] = [];
  /** The UTF-8 bytes of each of `queued`'s parts' text. */
  private queuedBytes: number[] = [];
  /** The loop storing `queued`, while it runs. */
  private storing: Promise<void> | undefined;
  private readonly lineNumbers = new Map<string, number>();
  private keyOf = { stage: '', step: '', key: '/' };
  private failure: unknown;
  private pendingBytes = 0;
  private outputBytes = 0;
  private limitReached = false;
  private readonly maxBytes: number;
  /** Per `stage/step#attempt`: pieces of each stream stored (see {@link resumePosition}). */
  private readonly positions = new Map<string, OutputPosition>();
  /**
   * Told of each batch the store refused: its error, its line count, and whether it is this
   * writer's first (so a caller logs one error per build and counts every lost line). The
   * lines are lost, the build goes on, and `close` rejects with the last error.
   */
  onLinesDropped: ((error: unknown, lines: number, first: boolean) => void) | undefined;

  constructor(
    private readonly buildId: number,
    private readonly store: LogStore,
    private readonly hub: LogHub,
    private seq: number,
    /** Called with the count of lines per `stage/step` after each stored batch. */
    private readonly onStored?: (counts: Map<string, number>) => void,
    limits: BuildLogLimits = {},
  ) {
    this.maxBytes = limits.maxBytes ?? DEFAULT_MAX_LOG_BYTES;
    hub.writing(buildId);
  }

  /** Starts where a previous writer of the same build stopped. */
  static async open(
    buildId: number,
    store: LogStore,
    hub: LogHub,
    onStored?: (counts: Map<string, number>) => void,
    limits?: BuildLogLimits,
  ): Promise<BuildLogWriter> {
    return new BuildLogWriter(buildId, store, hub, await store.lastSeq(buildId), onStored, limits);
  }

  /**
   * Goes on with the log of a build an earlier process was writing (a restart): reads what is
   * stored and restores the line numbers of each step, the output bytes against the cap and
   * whether the cap was reached, and where each step's attempt stopped ({@link resumePosition}).
   * A line the earlier process wrote but never stored is not there, so it is delivered again.
   */
  static async resume(
    buildId: number,
    store: LogStore,
    hub: LogHub,
    onStored?: (counts: Map<string, number>) => void,
    limits?: BuildLogLimits,
  ): Promise<BuildLogWriter> {
    const writer = new BuildLogWriter(buildId, store, hub, 0, onStored, limits);
    for (;;) {
      const page = await store.read(buildId, writer.seq, RESUME_PAGE_LINES);
      if (page.length === 0) break;
      for (const line of page) writer.restore(line);
    }
    return writer;
  }

  private restore(line: StoredLogLine): void {
    this.seq = line.seq;
    const key = `${line.stage}/${line.step}`;
    this.lineNumbers.set(key, Math.max(this.lineNumbers.get(key) ?? 0, line.n));
    if (line.stream === 'system') {
      if (line.text === LOG_LIMIT_MARKER) this.limitReached = true;
      return;
    }
    this.outputBytes += Buffer.byteLength(line.text);
    if (line.src === undefined) return;
    const at = `${key}#${line.src.attempt}`;
    const position = this.positions.get(at) ?? { stdout: 0, stderr: 0 };
    position[line.stream] = Math.max(position[line.stream], line.src.pieces);
    this.positions.set(at, position);
  }

  /**
   * Where attempt `attempt` of a step resumes: the pieces of each stream the executor had
   * delivered when its last stored line was written. Counts only what reached the store, and
   * what is written from here on.
   */
  resumePosition(stage: string, step: string, attempt: number): OutputPosition {
    const position = this.positions.get(`${stage}/${step}#${attempt}`);
    return position ? { ...position } : { stdout: 0, stderr: 0 };
  }

  /** Whether output lines are being dropped because the log reached its cap. */
  get limited(): boolean {
    return this.limitReached;
  }

  /** `src`: for step output, where it came from (see {@link StoredLogLine.src}). */
  write(
    stage: string,
    step: string,
    stream: OutputStream | 'system',
    text: string,
    time = Date.now(),
    src?: StoredLogLine['src'],
  ): void {
    const bytes = Buffer.byteLength(text);
    if (stream !== 'system') {
      if (this.limitReached) return;
      if (this.outputBytes + bytes > this.maxBytes) {
        this.limitReached = true;
        this.append(stage, step, 'system', LOG_LIMIT_MARKER, time, LOG_LIMIT_MARKER.length);
        return;
      }
      this.outputBytes += bytes;
    }
    this.append(stage, step, stream, text, time, bytes, stream === 'system' ? undefined : src);
  }

  private append(
    stage: string,
    step: string,
    stream: OutputStream | 'system',
    text: string,
    time: number,
    bytes: number,
    src?: StoredLogLine['src'],
  ): void {
    // A step prints its lines one after another: its key is made once, not once per line.
    if (stage !== this.keyOf.stage || step !== this.keyOf.step)
      this.keyOf = { stage, step, key: `${stage}/${step}` };
    const key = this.keyOf.key;
    const n = (this.lineNumbers.get(key) ?? 0) + 1;
    this.lineNumbers.set(key, n);
    this.seq += 1;
    const line: StoredLogLine = { seq: this.seq, stage, step, stream, n, time, text };
    if (src) line.src = src;
    this.pending.push(line);
    this.pendingBytes += bytes;
    if (this.pending.length >= FLUSH_LINES || this.pendingBytes >= FLUSH_BYTES) void this.flush();
    else this.flushSoon();
  }

  /** Lines so far of a step. */
  linesOf(stage: string, step: string): number {
    return this.lineNumbers.get(`${stage}/${step}`) ?? 0;
  }

  /** Stores everything written so far; resolves when it is stored and published. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.immediate) {
      clearImmediate(this.immediate);
      this.immediate = undefined;
    }
    if (this.pending.length > 0) {
      this.queued.push(this.pending);
      this.queuedBytes.push(this.pendingBytes);
      this.pending = [];
      this.pendingBytes = 0;
    }
    if (this.storing === undefined && this.queued.length > 0) this.storing = this.storeQueued();
    return this.storing ?? Promise.resolve();
  }

  /**
   * Stores what was flushed, one `append` at a time; whatever is flushed while one runs goes
   * into the next (group commit). A burst of output thus costs few store writes and waits for
   * one of them, not for a queue of them one after another.
   */
  private async storeQueued(): Promise<void> {
    // Yield first: were the loop to end before this call returns (a store that throws at
    // once), its `finally` would clear `storing` before the caller set it, leaving a settled
    // promise there that no later flush would replace: every later line would stay unstored.
    await Promise.resolve();
    try {
      while (this.queued.length > 0) {
        const batch = this.nextBatch();
        try {
          await this.store.append(this.buildId, batch);
        } catch (error) {
          // Keep going: a later flush may succeed; the failure is reported at close.
          this.onLinesDropped?.(error, batch.length, this.failure === undefined);
          this.failure = error;
          continue;
        }
        // Published as stored: the store's record and every reader's `lines` event are made
        // of one encoding of the batch (batch-record.ts).
        this.hub.publish(this.buildId, batch);
        const counts = new Map<string, number>();
        for (let i = 0; i < batch.length; i++) {
          const line = batch[i]!;
          const next = batch[i + 1];
          // The last line of each run of one step has the highest number so far.
          if (next === undefined || next.step !== line.step || next.stage !== line.stage)
            counts.set(`${line.stage}/${line.step}`, line.n);
        }
        this.onStored?.(counts);
      }
    } finally {
      this.storing = undefined;
    }
  }

  /**
   * Takes the next batch to store from `queued`: the parts flushed while the store was busy,
   * joined while they stay within one flush's size (FLUSH_LINES, FLUSH_BYTES), so that many
   * small flushes cost one write, and one live event stays small.
   */
  private nextBatch(): StoredLogLine[] {
    let take = 1;
    let lines = this.queued[0]!.length;
    let bytes = this.queuedBytes[0]!;
    while (take < this.queued.length) {
      lines += this.queued[take]!.length;
      bytes += this.queuedBytes[take]!;
      if (lines > FLUSH_LINES || bytes > FLUSH_BYTES) break;
      take += 1;
    }
    const parts = this.queued.splice(0, take);
    this.queuedBytes.splice(0, take);
    return parts.length === 1 ? parts[0]! : parts.flat();
  }

  /** Stores the rest and tells live readers the log is complete. */
  async close(): Promise<void> {
    await this.flush();
    this.hub.end(this.buildId);
    if (this.failure !== undefined) {
      throw this.failure instanceof Error
        ? this.failure
        : new Error('storing log lines failed', { cause: this.failure });
    }
  }

  private flushSoon(): void {
    if (this.timer !== undefined || this.immediate !== undefined) return;
    const wait = this.lastFlushAt + FLUSH_INTERVAL_MS - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.lastFlushAt = Date.now();
        void this.flush();
      }, wait);
    } else {
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.lastFlushAt = Date.now();
        void this.flush();
      });
    }
  }
}
