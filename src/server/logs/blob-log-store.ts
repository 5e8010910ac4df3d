import type { BlobStore } from '../../blobs/types.js';
import { decodeRecord, encodeRecord, isRecord } from './batch-record.js';
import type { LogStore, StoredLogLine } from './types.js';

/** Digits of the seq numbers in chunk names: names sort as numbers do. */
const SEQ_DIGITS = 12;

/**
 * Logs on a blob store (S3 or files): every `append` batch becomes one immutable object
 * `<prefix>/<buildId>/<firstSeq>-<lastSeq>.ndjson`, so appending never rewrites anything (S3
 * objects cannot be appended to) and a batch is durable once its put resolved. `read` lists
 * the build's chunks, skips those wholly before `afterSeq` by their names and reads the rest;
 * `lastSeq` needs only the listing.
 *
 * The log writer batches lines for about 20 ms, so a chatty build makes a few dozen small
 * objects a second: fine for S3, and bounded by the build's length.
 */
export class BlobLogStore implements LogStore {
  constructor(
    private readonly blobs: BlobStore,
    private readonly prefix = 'logs',
  ) {}

  async append(buildId: number, lines: readonly StoredLogLine[]): Promise<void> {
    if (lines.length === 0) return;
    const first = lines[0]!.seq;
    const last = lines.at(-1)!.seq;
    if (last < first)
      throw new RangeError(`log lines of build ${buildId} are not in seq order (${first} … ${last})`);
    // One batch record (batch-record.ts): the same encoding the live readers get.
    const body = encodeRecord(lines) + '\n';
    await this.blobs.put(this.chunkKey(buildId, first, last), body, {
      size: Buffer.byteLength(body),
      contentType: 'application/x-ndjson',
    });
  }

  async read(buildId: number, afterSeq: number, limit = Infinity): Promise<StoredLogLine[]> {
    const out: StoredLogLine[] = [];
    let lastSeen = afterSeq;
    for (const chunk of await this.chunks(buildId)) {
      if (out.length >= limit) break;
      if (chunk.last <= lastSeen) continue;
      const stream = await this.blobs.get(chunk.key);
      if (stream === undefined) continue; // removed since the listing
      let text = '';
      for await (const part of stream) text += Buffer.isBuffer(part) ? part.toString('utf8') : String(part);
      // A batch record, or one line per JSON object as older servers stored them.
      const lines: StoredLogLine[] = [];
      for (const raw of text.split('\n')) {
        if (raw === '') continue;
        try {
          const parsed: unknown = JSON.parse(raw);
          if (isRecord(parsed)) decodeRecord(parsed, lines);
          else lines.push(parsed as StoredLogLine);
        } catch {
          continue;
        }
      }
      for (const line of lines) {
        // Chunks never overlap when one writer at a time appends; if they do, each seq counts once.
        if (line.seq <= lastSeen) continue;
        out.push(line);
        lastSeen = line.seq;
        if (out.length >= limit) break;
      }
    }
    return out;
  }

  async lastSeq(buildId: number): Promise<number> {
    const chunks = await this.chunks(buildId);
    return chunks.reduce((max, chunk) => Math.max(max, chunk.last), 0);
  }

  async remove(buildId: number): Promise<void> {
    await this.blobs.deletePrefix(`${this.buildPrefix(buildId)}`);
  }

  private async chunks(buildId: number): Promise<{ key: string; first: number; last: number }[]> {
    const found: { key: string; first: number; last: number }[] = [];
    const prefix = this.buildPrefix(buildId);
    for await (const blob of this.blobs.list(prefix)) {
      const match = /^(\d+)-(\d+)\.ndjson$/.exec(blob.key.slice(prefix.length));
      if (match) found.push({ key: blob.key, first: Number(match[1]), last: Number(match[2]) });
    }
    return found.sort((a, b) => a.first - b.first || a.last - b.last);
  }

  private buildPrefix(buildId: number): string {
    return `${this.prefix}/${buildId}/`;
  }

  private chunkKey(buildId: number, first: number, last: number): string {
    return `${this.buildPrefix(buildId)}${String(first).padStart(SEQ_DIGITS, '0')}-${String(last).padStart(SEQ_DIGITS, '0')}.ndjson`;
  }
}
