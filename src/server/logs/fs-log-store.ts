import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeRecord, encodeRecord, isRecord } from './batch-record.js';
import { memoryReleased } from '../idle-memory.js';
import type { LogStore, StoredLogLine } from './types.js';

/** Lines per chunk file: big enough for few files, small enough to skip quickly when resuming. */
const CHUNK_LINES = 10_000;
/**
 * A chunk is also closed past this many bytes: chunks are parsed (and cached) whole, so 10,000
 * lines of 64 KiB each would make one read cost 640 MB.
 */
const CHUNK_BYTES = 4 * 1024 * 1024;
/** Parsed chunks kept in memory: many readers of one busy build read the same few chunks. */
const CACHED_CHUNKS = 16;
/**
 * A parsed chunk nobody read for this long is dropped: after a burst of readers (a fan-out)
 * the server's memory goes back to what it was, instead of keeping 16 chunks for ever. The
 * readers it serves read the same chunks within moments of each other; and dropped within the
 * idle collector's few quiet windows (src/server/idle-memory.ts), the chunks are collected too.
 */
const CACHE_IDLE_MS = 10_000;

/** Text (code units) of one record at most: bounds how far a record takes a chunk past CHUNK_BYTES. */
const RECORD_CHARS = 1024 * 1024;
/** What a line costs in a record besides its text, roughly (its `dt`, quotes, commas). */
const LINE_OVERHEAD = 8;

/** An open chunk's file stays open for appends until it is full or unused for this long. */
const HANDLE_IDLE_MS = 10_000;

/** The chunk a build's appends go to. */
interface OpenChunk {
  first: number;
  count: number;
  bytes: number;
  /** Opened for appending at the first append; closed when the chunk is full or idle. */
  handle?: FileHandle;
  usedAt: number;
  /** An append is writing to `handle`: the idle sweep leaves it alone. */
  busy: boolean;
  /**
   * The file ends in part of a record (a write cut short by a crash, never acknowledged): the
   * next record starts on a line of its own, so only that part is skipped when read.
   */
  torn?: boolean;
}

interface ParsedChunk {
  /** Bytes of the file parsed so far (up to its last complete line). */
  size: number;
  lines: StoredLogLine[];
  usedAt?: number;
}

/**
 * Logs as newline-delimited JSON chunk files: `<root>/<buildId>/<firstSeq>.ndjson`, a record
 * per appended batch (batch-record.ts; older chunks have one JSON line per log line, and are
 * read as well). An append is one `write` to the chunk's file, kept open while the build
 * writes: once `append` resolves the lines are in the kernel and survive a `kill -9` of the
 * server; `fsyncEvery` bounds what a power loss can take. (One write rather than open, write and close: each is a round trip to
 * the thread pool, and a build flooding its output would make every batch wait for three.)
 */
export class FsLogStore implements LogStore {
  private readonly openChunks = new Map<number, OpenChunk>();
  private readonly parsed = new Map<string, ParsedChunk>();
  private sweeper: NodeJS.Timeout | undefined;
  private handleSweeper: NodeJS.Timeout | undefined;

  constructor(private readonly root: string) {}

  async append(buildId: number, lines: readonly StoredLogLine[]): Promise<void> {
    if (lines.length === 0) return;
    let index = 0;
    while (index < lines.length) {
      let chunk = this.openChunks.get(buildId) ?? (await this.recoverChunk(buildId));
      if (!chunk || chunk.count >= CHUNK_LINES || chunk.bytes >= CHUNK_BYTES) {
        await this.closeChunk(buildId);
        chunk = { first: lines[index]!.seq, count: 0, bytes: 0, usedAt: Date.now(), busy: false };
      }
      // The lines that fit the chunk, as one record (batch-record.ts). Their size is reckoned
      // from their text, not encoded line by line: a chunk may pass CHUNK_BYTES by about a
      // record, which RECORD_CHARS keeps small.
      let end = index;
      let chars = 0;
      const room = CHUNK_LINES - chunk.count;
      while (end < lines.length && end - index < room) {
        chars += lines[end]!.text.length + LINE_OVERHEAD;
        end += 1;
        if (chunk.bytes + chars >= CHUNK_BYTES || chars >= RECORD_CHARS) break;
      }
      const count = end - index;
      const part = index === 0 && end === lines.length ? lines : lines.slice(index, end);
      const data = Buffer.from(`${chunk.torn ? '\n' : ''}${encodeRecord(part)}\n`, 'utf8');
      chunk.busy = true;
      try {
        chunk.handle ??= await this.openForAppend(buildId, chunk.first);
        let written = 0;
        while (written < data.length) written += (await chunk.handle.write(data, written)).bytesWritten;
      } catch (error) {
        chunk.torn = true; // part of the record may be in the file
        throw error;
      } finally {
        chunk.busy = false;
        chunk.usedAt = Date.now();
      }
      chunk.torn = false;
      chunk.count += count;
      chunk.bytes += data.length;
      this.openChunks.set(buildId, chunk);
      this.sweepHandlesSoon();
      index += count;
    }
  }

  private async openForAppend(buildId: number, first: number): Promise<FileHandle> {
    const file = this.chunkFile(buildId, first);
    try {
      return await open(file, 'a');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      await mkdir(this.dirOf(buildId), { recursive: true });
      return await open(file, 'a');
    }
  }

  /** Closes the file of a build's open chunk (it is opened again by the next append). */
  private async closeChunk(buildId: number): Promise<void> {
    const chunk = this.openChunks.get(buildId);
    const handle = chunk?.handle;
    if (chunk === undefined || handle === undefined) return;
    chunk.handle = undefined;
    await handle.close().catch(() => undefined);
  }

  private sweepHandlesSoon(): void {
    this.handleSweeper ??= setTimeout(() => {
      this.handleSweeper = undefined;
      const before = Date.now() - HANDLE_IDLE_MS;
      let open = false;
      for (const [buildId, chunk] of this.openChunks) {
        if (chunk.handle === undefined) continue;
        if (!chunk.busy && chunk.usedAt <= before) void this.closeChunk(buildId);
        else open = true;
      }
      if (open) this.sweepHandlesSoon();
    }, HANDLE_IDLE_MS).unref();
  }

  async read(buildId: number, afterSeq: number, limit = Infinity): Promise<StoredLogLine[]> {
    const firsts = await this.chunkFirsts(buildId);
    const out: StoredLogLine[] = [];
    for (let i = 0; i < firsts.length && out.length < limit; i++) {
      const first = firsts[i]!;
      const next = firsts[i + 1];
      if (next !== undefined && next - 1 <= afterSeq) continue; // the whole chunk is older
      const lines = await this.chunkLines(this.chunkFile(buildId, first));
      // Seqs in a chunk are consecutive from its first: jump straight to the line after `afterSeq`.
      let start = Math.max(0, afterSeq - first + 1);
      while (start > 0 && (lines[start - 1]?.seq ?? 0) > afterSeq) start -= 1;
      while (start < lines.length && lines[start]!.seq <= afterSeq) start += 1;
      const take = Math.min(lines.length, start + (limit - out.length));
      for (let j = start; j < take; j++) out.push(lines[j]!);
    }
    return out;
  }

  async lastSeq(buildId: number): Promise<number> {
    const firsts = await this.chunkFirsts(buildId);
    const last = firsts.at(-1);
    if (last === undefined) return 0;
    const lines = await this.chunkLines(this.chunkFile(buildId, last));
    return lines.at(-1)?.seq ?? last - 1;
  }

  async remove(buildId: number): Promise<void> {
    await this.closeChunk(buildId);
    this.openChunks.delete(buildId);
    for (const file of this.parsed.keys())
      if (file.startsWith(this.dirOf(buildId) + '/')) this.parsed.delete(file);
    await rm(this.dirOf(buildId), { recursive: true, force: true });
  }

  /** Forgets the in-memory state of a build whose log is complete. */
  close(buildId: number): void {
    void this.closeChunk(buildId);
    this.openChunks.delete(buildId);
  }

  /** Flushes file data of a build's open chunk to the disk (power-loss safety). */
  async sync(buildId: number): Promise<void> {
    const chunk = this.openChunks.get(buildId);
    if (!chunk) return;
    const handle = await open(this.chunkFile(buildId, chunk.first), 'r');
    try {
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  private async recoverChunk(buildId: number): Promise<OpenChunk | undefined> {
    const firsts = await this.chunkFirsts(buildId);
    const first = firsts.at(-1);
    if (first === undefined) return undefined;
    const file = this.chunkFile(buildId, first);
    const count = (await this.chunkLines(file)).length;
    const bytes = this.parsed.get(file)?.size ?? 0;
    const size = await stat(file)
      .then((s) => s.size)
      .catch(() => bytes);
    return { first, count, bytes, usedAt: Date.now(), busy: false, torn: size > bytes };
  }

  /**
   * The parsed lines of a chunk file. Chunks only grow, so a cached chunk is brought up to
   * date by parsing just the bytes appended since; a torn last line (a crash in the middle of
   * a write) was never acknowledged and is left out.
   */
  private async chunkLines(file: string): Promise<StoredLogLine[]> {
    const cached = this.parsed.get(file);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch {
      return [];
    }
    try {
      const { size } = await handle.stat();
      if (cached && cached.size === size) {
        this.touch(file, cached);
        return cached.lines;
      }
      const from = cached && size > cached.size ? cached.size : 0;
      const buffer = Buffer.alloc(size - from);
      let read = 0;
      while (read < buffer.length) {
        const { bytesRead } = await handle.read(buffer, read, buffer.length - read, from + read);
        if (bytesRead === 0) break;
        read += bytesRead;
      }
      const complete = buffer.lastIndexOf(0x0a, read - 1) + 1;
      const fresh: StoredLogLine[] = [];
      for (const text of buffer.toString('utf8', 0, complete).split('\n')) {
        if (text.length === 0) continue;
        try {
          // A batch record (batch-record.ts), or one line as older servers stored them: a log
          // written across an upgrade has both, in one chunk.
          const parsed: unknown = JSON.parse(text);
          if (isRecord(parsed)) decodeRecord(parsed, fresh);
          else fresh.push(parsed as StoredLogLine);
        } catch {
          // A damaged line is skipped, not fatal to the whole log.
        }
      }
      const entry: ParsedChunk = {
        size: from + complete,
        lines: from > 0 && cached ? cached.lines.concat(fresh) : fresh,
      };
      this.touch(file, entry);
      return entry.lines;
    } finally {
      await handle.close();
    }
  }

  private touch(file: string, entry: ParsedChunk): void {
    entry.usedAt = Date.now();
    this.parsed.delete(file);
    this.parsed.set(file, entry);
    if (this.parsed.size > CACHED_CHUNKS) this.parsed.delete(this.parsed.keys().next().value!);
    this.sweeper ??= setTimeout(() => this.sweep(), CACHE_IDLE_MS).unref();
  }

  /** Parsed chunks held now (for tests). */
  get cachedChunks(): number {
    return this.parsed.size;
  }

  /**
   * Drops the chunks not read for {@link CACHE_IDLE_MS} (least recently used come first), and
   * comes back when the oldest left is due, not a whole period later.
   */
  private sweep(): void {
    this.sweeper = undefined;
    const now = Date.now();
    let dropped = false;
    for (const [file, entry] of this.parsed) {
      const idle = now - (entry.usedAt ?? 0);
      if (idle < CACHE_IDLE_MS) {
        this.sweeper = setTimeout(() => this.sweep(), CACHE_IDLE_MS - idle).unref();
        break;
      }
      this.parsed.delete(file);
      dropped = true;
    }
    if (dropped) memoryReleased();
  }

  private async chunkFirsts(buildId: number): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.dirOf(buildId));
    } catch {
      return [];
    }
    return names
      .filter((n) => n.endsWith('.ndjson'))
      .map((n) => Number(n.slice(0, -'.ndjson'.length)))
      .filter(Number.isInteger)
      .sort((a, b) => a - b);
  }

  private dirOf(buildId: number): string {
    return join(this.root, String(buildId));
  }

  private chunkFile(buildId: number, first: number): string {
    return join(this.dirOf(buildId), `${String(first).padStart(10, '0')}.ndjson`);
  }
}
