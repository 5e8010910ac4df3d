import { createReadStream } from 'node:fs';
import { appendFile, mkdir, readdir, rm, open } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { LogStore, StoredLogLine } from './types.js';

/** Lines per chunk file: big enough for few files, small enough to skip quickly when resuming. */
const CHUNK_LINES = 10_000;

/**
 * Logs as newline-delimited JSON chunk files: `<root>/<buildId>/<firstSeq>.ndjson`. Appends go
 * through `appendFile`, so once `append` resolves the lines are in the kernel and survive a
 * `kill -9` of the server; `fsyncEvery` bounds what a power loss can take.
 */
export class FsLogStore implements LogStore {
  private readonly openChunks = new Map<number, { first: number; count: number }>();

  constructor(private readonly root: string) {}

  async append(buildId: number, lines: readonly StoredLogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const dir = this.dirOf(buildId);
    await mkdir(dir, { recursive: true });
    let index = 0;
    while (index < lines.length) {
      let chunk = this.openChunks.get(buildId) ?? (await this.recoverChunk(buildId));
      if (!chunk || chunk.count >= CHUNK_LINES) {
        chunk = { first: lines[index]!.seq, count: 0 };
      }
      const take = lines.slice(index, index + (CHUNK_LINES - chunk.count));
      await appendFile(this.chunkFile(buildId, chunk.first), take.map(encode).join(''));
      chunk.count += take.length;
      this.openChunks.set(buildId, chunk);
      index += take.length;
    }
  }

  async read(buildId: number, afterSeq: number, limit = Infinity): Promise<StoredLogLine[]> {
    const firsts = await this.chunkFirsts(buildId);
    const out: StoredLogLine[] = [];
    for (let i = 0; i < firsts.length && out.length < limit; i++) {
      const next = firsts[i + 1];
      if (next !== undefined && next - 1 <= afterSeq) continue; // the whole chunk is older
      for await (const line of readLines(this.chunkFile(buildId, firsts[i]!))) {
        if (line.seq > afterSeq) out.push(line);
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  async lastSeq(buildId: number): Promise<number> {
    const firsts = await this.chunkFirsts(buildId);
    const last = firsts.at(-1);
    if (last === undefined) return 0;
    let seq = last - 1;
    for await (const line of readLines(this.chunkFile(buildId, last))) seq = line.seq;
    return seq;
  }

  async remove(buildId: number): Promise<void> {
    this.openChunks.delete(buildId);
    await rm(this.dirOf(buildId), { recursive: true, force: true });
  }

  /** Forgets the in-memory state of a build whose log is complete. */
  close(buildId: number): void {
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

  private async recoverChunk(buildId: number): Promise<{ first: number; count: number } | undefined> {
    const firsts = await this.chunkFirsts(buildId);
    const first = firsts.at(-1);
    if (first === undefined) return undefined;
    let count = 0;
    for await (const _line of readLines(this.chunkFile(buildId, first))) count += 1;
    return { first, count };
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

function encode(line: StoredLogLine): string {
  return JSON.stringify(line) + '\n';
}

async function* readLines(file: string): AsyncGenerator<StoredLogLine> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const text of lines) {
      // A torn last line (crash in the middle of a write) was never acknowledged: skip it.
      if (text.length === 0) continue;
      try {
        yield JSON.parse(text) as StoredLogLine;
      } catch {
        continue;
      }
    }
  } finally {
    lines.close();
    input.destroy();
  }
}
