import { open, stat, type FileHandle } from 'node:fs/promises';

/**
 * The fsync of a SQLite database's write-ahead log, run off the event loop and shared by the
 * commits that wait for it.
 *
 * In WAL mode, `synchronous=FULL` is `NORMAL` plus an fsync of the WAL file after each commit;
 * better-sqlite3 runs that fsync on the main thread, where it stalls every request and build for
 * as long as the disk takes (1–25 ms per commit on a busy machine, more than all of a build's
 * queries together). A `full` write transaction therefore commits with `synchronous=NORMAL` and
 * then waits for `sync()`: the same fsync of the same file, on libuv's thread pool. It returns
 * only once the commit is on disk, so what the API accepts still survives a power cut; only the
 * main thread no longer waits for the disk meanwhile.
 *
 * Commits waiting at once share fsyncs: a caller is answered by the first fsync that started
 * after it asked (one under way may have started before its commit was written).
 */
export class WalSync {
  private handle: FileHandle | undefined;
  private running: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  /** fsyncs made so far (for tests and metrics). */
  syncs = 0;

  constructor(readonly walPath: string) {}

  /** Resolves once everything committed before the call is on disk. */
  sync(): Promise<void> {
    if (this.running === undefined) {
      const run = this.flush().finally(() => {
        if (this.running === run) this.running = undefined;
      });
      this.running = run;
      return run;
    }
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.sync();
      });
    return this.next;
  }

  /** Closes the file (the database is closing); a later `sync` opens it again. */
  close(): void {
    const handle = this.handle;
    this.handle = undefined;
    void handle?.close().catch(() => undefined);
  }

  private async flush(): Promise<void> {
    this.syncs += 1;
    const handle = await this.file();
    // No WAL file: no commit has written one yet (or the last connection checkpointed and
    // removed it, which syncs the database file first), so there is nothing to sync.
    if (handle === undefined) return;
    await handle.sync();
  }

  /**
   * The WAL file, opened once. SQLite keeps the file while a connection is open and rewrites it
   * in place after checkpoints; should it have been replaced all the same, the new one is opened.
   */
  private async file(): Promise<FileHandle | undefined> {
    if (this.handle !== undefined) {
      const [held, now] = await Promise.all([this.handle.stat(), stat(this.walPath).catch(() => undefined)]);
      if (now !== undefined && now.ino === held.ino && now.dev === held.dev) return this.handle;
      this.close();
    }
    try {
      this.handle = await open(this.walPath, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    return this.handle;
  }
}
