import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LineSplitter } from '../lines.js';
import type { OutputPosition, OutputSink, OutputStream } from '../types.js';

/** Bytes read from one stream per pass, so that a flood on one does not starve the other. */
const PASS_BYTES = 1024 * 1024;
const CHUNK = 64 * 1024;
/** Polling backs off from the first to the last interval while nothing new comes. */
const FIRST_POLL_MS = 10;
const MAX_POLL_MS = 200;

/**
 * Delivers the output a step wrote to `<dir>/stdout` and `<dir>/stderr`, from the start of the
 * files, split exactly as a pipe's output would be (the splitter's pieces do not depend on how
 * the bytes were chunked), skipping the first `from.stdout` / `from.stderr` pieces of each
 * stream. Follows the files until `ended()` says no more output can come (the exit is
 * recorded, or the step is gone), then drains them and flushes a partial last line. Stops
 * without flushing when `signal` aborts: a later tail from the delivered position goes on.
 *
 * The files are polled (backing off to {@link MAX_POLL_MS}) rather than watched with inotify:
 * the writer is another process that may belong to another user, and polling works the same
 * on every file system (NFS, overlay) at the cost of a read per stream per interval.
 * `wake` (the watcher of a step this process started ended) cuts the wait short.
 *
 * Ordering between the two streams is only as exact as two files can be: each stream is in
 * order, but lines of stdout and stderr written close together may arrive interleaved
 * differently than the step printed them. Per-stream positions keep a resume exact anyway.
 */
export async function tailFiles(
  dir: string,
  from: OutputPosition,
  sink: OutputSink,
  signal: AbortSignal,
  ended: () => Promise<boolean>,
  wake?: Promise<unknown>,
): Promise<void> {
  const streams = [new FileStream(dir, 'stdout', from, sink), new FileStream(dir, 'stderr', from, sink)];
  let woken = false;
  let recheckedAfterWake = false;
  void wake?.then(() => (woken = true));
  try {
    let idle = FIRST_POLL_MS;
    for (;;) {
      if (signal.aborted) return;
      const last = await ended();
      let got = 0;
      if (last) {
        for (const s of streams) await s.drain();
        for (const s of streams) s.flush();
        return;
      }
      for (const s of streams) got += await s.read(PASS_BYTES);
      if (got > 0) {
        idle = FIRST_POLL_MS;
        continue;
      }
      // The wake came while this pass read: ask `ended` again now rather than sleep a full
      // interval with nothing left to cut it short (every short step paid that 10 ms).
      if (woken && !recheckedAfterWake) {
        recheckedAfterWake = true;
        continue;
      }
      const waits: Promise<unknown>[] = [sleep(idle, undefined, { signal }).catch(() => undefined)];
      if (wake && !woken) waits.push(wake);
      await Promise.race(waits);
      idle = Math.min(MAX_POLL_MS, idle * 2);
    }
  } finally {
    await Promise.all(streams.map((s) => s.close()));
  }
}

class FileStream {
  private handle: FileHandle | undefined;
  private position = 0;
  private seen = 0;
  private readonly splitter: LineSplitter;
  private readonly buffer = Buffer.allocUnsafe(CHUNK);

  constructor(
    private readonly dir: string,
    private readonly stream: OutputStream,
    from: OutputPosition,
    sink: OutputSink,
  ) {
    const skip = from[stream];
    this.splitter = new LineSplitter((text, continues) => {
      this.seen += 1;
      if (this.seen > skip) sink.line(stream, text, continues);
    });
  }

  /** Reads what is there, up to `limit` bytes; 0 when nothing new (or no file yet). */
  async read(limit: number): Promise<number> {
    if (!this.handle) {
      try {
        this.handle = await open(join(this.dir, this.stream), 'r');
      } catch {
        return 0;
      }
    }
    let total = 0;
    while (total < limit) {
      const { bytesRead } = await this.handle.read(this.buffer, 0, CHUNK, this.position);
      if (bytesRead === 0) break;
      this.position += bytesRead;
      total += bytesRead;
      this.splitter.write(this.buffer.subarray(0, bytesRead));
    }
    return total;
  }

  /**
   * Reads to the end the file has now: a grandchild that escaped the step's group and goes on
   * writing cannot keep the tail open.
   */
  async drain(): Promise<void> {
    await this.read(0); // opens the file, if it exists by now
    if (!this.handle) return;
    const size = (await this.handle.stat()).size;
    await this.read(size - this.position);
  }

  flush(): void {
    this.splitter.flush();
  }

  async close(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
  }
}
