import { appendFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineSplitter, MAX_LINE_LENGTH, MAX_LOGICAL_LINE } from '../../executors/lines.js';
import { FsBlobStore } from '../../blobs/fs-blob-store.js';
import { encodeRecord } from './batch-record.js';
import { BlobLogStore } from './blob-log-store.js';
import { FsLogStore } from './fs-log-store.js';
import { LogHub } from './log-hub.js';
import { BuildLogWriter } from './log-writer.js';
import type { StoredLogLine } from './types.js';

/** Lines of two steps and the server's notes, with and without `src`, pieces not always +1. */
function mixed(from: number, count: number): StoredLogLine[] {
  const out: StoredLogLine[] = [];
  for (let i = 0; i < count; i++) {
    const seq = from + i;
    const step = seq % 17 < 9 ? 'build' : 'test';
    const stream = seq % 23 === 0 ? 'system' : seq % 5 === 0 ? 'stderr' : 'stdout';
    const line: StoredLogLine = {
      seq,
      stage: 'ci',
      step,
      stream,
      n: seq,
      time: 1_700_000_000_000 + seq * 3 - (seq % 7),
      text: `${step} ${seq} "ünï" \\ \t`,
    };
    // A long line cut in two pieces repeats its pieces count.
    if (stream !== 'system')
      line.src = { attempt: 1 + (seq % 41 === 0 ? 1 : 0), pieces: seq - (seq % 13 === 0 ? 1 : 0) };
    out.push(line);
  }
  return out;
}

describe('FsLogStore batch records', () => {
  let dir: string;
  let nextBuild = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-records-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const chunkOf = async (build: number) => {
    const names = await readdir(join(dir, String(build)));
    return join(dir, String(build), names.sort()[0]!);
  };

  it('reads back every field of every line, resuming exactly after any seq inside a batch', async () => {
    const build = ++nextBuild;
    const lines = mixed(1, 120);
    await new FsLogStore(dir).append(build, lines);
    const store = new FsLogStore(dir);
    expect(await store.read(build, 0)).toEqual(lines);
    for (let after = 0; after <= lines.length; after++) {
      expect(await store.read(build, after)).toEqual(lines.slice(after));
      expect(await store.read(build, after, 7)).toEqual(lines.slice(after, after + 7));
    }
    expect(lines.filter((l) => l.stream === 'system').every((l) => !('src' in l))).toBe(true);
    expect(await store.lastSeq(build)).toBe(120);
  });

  it('reads a chunk an older server wrote line by line, with batch records appended after it', async () => {
    const build = ++nextBuild;
    const old = mixed(1, 30);
    await mkdir(join(dir, String(build)));
    // The older form: one JSON object per log line.
    await writeFile(
      join(dir, String(build), '0000000001.ndjson'),
      old.map((l) => JSON.stringify(l) + '\n').join(''),
    );
    const store = new FsLogStore(dir);
    expect(await store.lastSeq(build)).toBe(30);
    const fresh = mixed(31, 40);
    await store.append(build, fresh.slice(0, 25));
    await store.append(build, fresh.slice(25));
    expect((await readdir(join(dir, String(build)))).length).toBe(1); // the same chunk goes on
    const all = [...old, ...fresh];
    for (const reader of [store, new FsLogStore(dir)]) {
      expect(await reader.read(build, 0)).toEqual(all);
      expect(await reader.read(build, 28, 5)).toEqual(all.slice(28, 33));
      expect(await reader.read(build, 55)).toEqual(all.slice(55));
      expect(await reader.lastSeq(build)).toBe(70);
    }
  });

  it('leaves out a record cut short by a crash and keeps the next one whole', async () => {
    const build = ++nextBuild;
    const first = mixed(1, 50);
    await new FsLogStore(dir).append(build, first);
    // kill -9 in the middle of writing the next batch: part of its record is in the file.
    const lost = encodeRecord(mixed(51, 50));
    await appendFile(await chunkOf(build), lost.slice(0, lost.length >> 1));
    const restarted = new FsLogStore(dir);
    expect(await restarted.read(build, 0)).toEqual(first);
    expect(await restarted.lastSeq(build)).toBe(50);
    // The new server writes those seqs again: they follow the torn bytes, on a line of their own.
    const again = mixed(51, 60);
    await restarted.append(build, again);
    expect(await restarted.read(build, 0)).toEqual([...first, ...again]);
    expect(await new FsLogStore(dir).read(build, 49)).toEqual([first[49], ...again]);
  });

  it('stores a 50 MB line as the splitter caps it, in chunks of bounded size', async () => {
    const build = ++nextBuild;
    const store = new FsLogStore(dir);
    const writer = new BuildLogWriter(build, store, new LogHub(), 0, undefined, {
      maxBytes: 200 * 1024 * 1024,
    });
    const splitter = new LineSplitter((text) => writer.write('ci', 'flood', 'stdout', text));
    const piece = Buffer.alloc(1024 * 1024, 'a');
    for (let i = 0; i < 50; i++) splitter.write(piece);
    splitter.write(Buffer.from('\nafter\n'));
    // Many long lines too: a chunk is closed near its byte cap, not after 10,000 lines.
    const long = Buffer.from('b'.repeat(MAX_LINE_LENGTH - 1) + '\n');
    for (let i = 0; i < 200; i++) splitter.write(long);
    splitter.flush();
    await writer.close();

    const read = await new FsLogStore(dir).read(build, 0);
    const kept = MAX_LOGICAL_LINE / MAX_LINE_LENGTH;
    expect(read.length).toBe(kept + 1 + 1 + 200);
    expect(read.slice(0, kept).every((l) => l.text.length === MAX_LINE_LENGTH)).toBe(true);
    expect(read[kept]!.text).toMatch(/^… \[line truncated: 52,428,800 bytes, kept 1,048,576\]$/);
    expect(read[kept + 1]!.text).toBe('after');
    expect(read.map((l) => l.seq)).toEqual(read.map((_, i) => i + 1));
    const files = await readdir(join(dir, String(build)));
    expect(files.length).toBeGreaterThan(1);
    for (const file of files)
      expect((await stat(join(dir, String(build), file))).size).toBeLessThan(
        4 * 1024 * 1024 + 1024 * 1024 + 4096,
      );
  });
});

describe('BlobLogStore batch records', () => {
  it('reads objects an older server wrote line by line next to batch records', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-records-'));
    try {
      const blobs = new FsBlobStore(dir);
      const old = mixed(1, 20);
      const body = old.map((l) => JSON.stringify(l) + '\n').join('');
      await blobs.put('logs/3/000000000001-000000000020.ndjson', body, { size: Buffer.byteLength(body) });
      const store = new BlobLogStore(blobs);
      const fresh = mixed(21, 30);
      await store.append(3, fresh);
      const all = [...old, ...fresh];
      expect(await store.read(3, 0)).toEqual(all);
      expect(await store.read(3, 18, 4)).toEqual(all.slice(18, 22));
      expect(await store.read(3, 33)).toEqual(all.slice(33));
      expect(await store.lastSeq(3)).toBe(50);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
