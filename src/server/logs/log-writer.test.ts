import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsLogStore } from './fs-log-store.js';
import { LogHub } from './log-hub.js';
import { BuildLogWriter, LOG_LIMIT_MARKER } from './log-writer.js';
import type { LogStore, StoredLogLine } from './types.js';

async function store() {
  return new FsLogStore(await mkdtemp(join(tmpdir(), 'slipway-logs-')));
}

describe('BuildLogWriter + FsLogStore', () => {
  it('numbers lines per build and per step, stores them before publishing', async () => {
    const logs = await store();
    const hub = new LogHub();
    const published: StoredLogLine[] = [];
    hub.subscribe(
      1,
      (lines) => {
        published.push(...lines);
      },
      () => undefined,
    );
    const writer = await BuildLogWriter.open(1, logs, hub);
    writer.write('test', 'unit', 'stdout', 'a');
    writer.write('test', 'lint', 'stderr', 'b');
    writer.write('test', 'unit', 'stdout', 'c');
    await writer.flush();
    expect(published.map((l) => [l.seq, l.step, l.n, l.text])).toEqual([
      [1, 'unit', 1, 'a'],
      [2, 'lint', 1, 'b'],
      [3, 'unit', 2, 'c'],
    ]);
    expect((await logs.read(1, 0)).map((l) => l.text)).toEqual(['a', 'b', 'c']);
    expect((await logs.read(1, 2)).map((l) => l.seq)).toEqual([3]);
  });

  it("publishes each batch as stored, joining the flushes made while the store was busy up to a flush's size", async () => {
    const logs = await store();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const appended: (readonly StoredLogLine[])[] = [];
    const gated: LogStore = {
      append: async (buildId, lines) => {
        appended.push(lines);
        if (appended.length === 1) await gate;
        await logs.append(buildId, lines);
      },
      read: (buildId, after, limit) => logs.read(buildId, after, limit),
      lastSeq: (buildId) => logs.lastSeq(buildId),
      remove: (buildId) => logs.remove(buildId),
    };
    const hub = new LogHub();
    const published: (readonly StoredLogLine[])[] = [];
    hub.subscribe(
      1,
      (lines) => void published.push(lines),
      () => undefined,
    );
    const writer = await BuildLogWriter.open(1, gated, hub);
    writer.write('s', 't', 'stdout', 'first');
    const first = writer.flush();
    while (appended.length === 0) await new Promise(setImmediate); // the store is busy with it
    for (let i = 0; i < 5; i++) {
      writer.write('s', 't', 'stdout', `small ${i}`);
      void writer.flush();
    }
    for (let i = 0; i < 2500; i++) writer.write('s', 't', 'stdout', `bulk ${i}`);
    void writer.flush();
    release();
    await first;
    await writer.close();
    expect(appended.map((b) => b.length)).toEqual([1, 5, 2000, 500]);
    // The very arrays stored are the ones published: one encoding serves both.
    expect(published).toHaveLength(appended.length);
    published.forEach((batch, i) => expect(batch).toBe(appended[i]));
    expect(published.flat().map((l) => l.seq)).toEqual(Array.from({ length: 2506 }, (_, i) => i + 1));
    expect((await logs.read(1, 0)).length).toBe(2506);
  });

  it('stores and publishes lines on its own, at once after a quiet spell and soon after a flush', async () => {
    const logs = await store();
    const hub = new LogHub();
    const published: string[] = [];
    let wake: (() => void) | undefined;
    hub.subscribe(
      9,
      (lines) => {
        published.push(...lines.map((l) => l.text));
        wake?.();
      },
      () => undefined,
    );
    const next = () => new Promise<void>((resolve) => (wake = resolve));
    const writer = await BuildLogWriter.open(9, logs, hub);
    let got = next();
    writer.write('s', 'x', 'stdout', 'a');
    writer.write('s', 'x', 'stdout', 'b');
    await got;
    expect(published).toEqual(['a', 'b']);
    got = next();
    writer.write('s', 'x', 'stdout', 'c');
    await got;
    expect(published).toEqual(['a', 'b', 'c']);
    expect((await logs.read(9, 0)).map((l) => l.text)).toEqual(['a', 'b', 'c']);
    await writer.close();
  });

  it("tells the hub that this process writes the build's log until the writer closes", async () => {
    const hub = new LogHub();
    const writer = await BuildLogWriter.open(10, await store(), hub);
    expect(hub.isWritten(10)).toBe(true);
    expect(hub.isWritten(11)).toBe(false);
    await writer.close();
    expect(hub.isWritten(10)).toBe(false);
  });

  it('stores lines written after a flush that had nothing to store', async () => {
    const logs = await store();
    const writer = await BuildLogWriter.open(2, logs, new LogHub());
    await writer.flush();
    writer.write('s', 'x', 'stdout', 'first');
    await writer.flush();
    writer.write('s', 'x', 'stdout', 'second');
    await writer.flush();
    expect((await logs.read(2, 0)).map((l) => l.text)).toEqual(['first', 'second']);
  });

  it('spans chunk files and resumes reading from any seq without gaps or duplicates', async () => {
    const logs = await store();
    const writer = await BuildLogWriter.open(7, logs, new LogHub());
    for (let i = 1; i <= 25_000; i++) writer.write('s', 'x', 'stdout', `line ${i}`);
    await writer.close();
    const all = await logs.read(7, 0);
    expect(all).toHaveLength(25_000);
    expect(all.every((l, i) => l.seq === i + 1)).toBe(true);
    const tail = await logs.read(7, 19_999, 5);
    expect(tail.map((l) => l.seq)).toEqual([20_000, 20_001, 20_002, 20_003, 20_004]);
    expect(await logs.lastSeq(7)).toBe(25_000);
  });

  it('a new writer (after a restart) continues the sequence', async () => {
    const logs = await store();
    const first = await BuildLogWriter.open(3, logs, new LogHub());
    first.write('s', 'x', 'stdout', 'before');
    await first.flush();
    const second = await BuildLogWriter.open(3, logs, new LogHub());
    second.write('s', 'slipway', 'system', 'after restart');
    await second.close();
    expect((await logs.read(3, 0)).map((l) => [l.seq, l.text])).toEqual([
      [1, 'before'],
      [2, 'after restart'],
    ]);
  });

  it('tells live readers when the log is complete', async () => {
    const logs = await store();
    const hub = new LogHub();
    let ended = false;
    hub.subscribe(
      9,
      () => undefined,
      () => (ended = true),
    );
    const writer = await BuildLogWriter.open(9, logs, hub);
    await writer.close();
    expect(ended).toBe(true);
    expect(hub.subscriberCount(9)).toBe(0);
  });

  it('past the byte cap drops output after one marker line, and keeps the server notes', async () => {
    const logs = await store();
    const writer = await BuildLogWriter.open(7, logs, new LogHub(), undefined, { maxBytes: 10 });
    writer.write('s', 'a', 'stdout', '12345');
    writer.write('s', 'a', 'stdout', '678é'); // 9 bytes so far
    writer.write('s', 'b', 'stderr', 'xy'); // would make 11
    writer.write('s', 'a', 'stdout', 'z');
    writer.write('s', 'a', 'system', 'step failed: exit code 1');
    await writer.close();
    expect(writer.limited).toBe(true);
    expect((await logs.read(7, 0)).map((l) => [l.step, l.stream, l.text])).toEqual([
      ['a', 'stdout', '12345'],
      ['a', 'stdout', '678é'],
      ['b', 'system', LOG_LIMIT_MARKER],
      ['a', 'system', 'step failed: exit code 1'],
    ]);
  });

  it("resumed after a restart: line numbers, the byte cap and each attempt's position go on from the store", async () => {
    const logs = await store();
    const first = await BuildLogWriter.open(9, logs, new LogHub(), undefined, { maxBytes: 12 });
    first.write('t', 'unit', 'stdout', 'one', 1, { attempt: 1, pieces: 1 });
    first.write('t', 'unit', 'stderr', 'two', 2, { attempt: 1, pieces: 1 });
    first.write('t', 'unit', 'system', 'retrying', 3);
    first.write('t', 'unit', 'stdout', 'three', 4, { attempt: 2, pieces: 2 });
    await first.flush();

    const second = await BuildLogWriter.resume(9, logs, new LogHub(), undefined, { maxBytes: 12 });
    expect(second.linesOf('t', 'unit')).toBe(4);
    expect(second.resumePosition('t', 'unit', 1)).toEqual({ stdout: 1, stderr: 1 });
    expect(second.resumePosition('t', 'unit', 2)).toEqual({ stdout: 2, stderr: 0 });
    expect(second.resumePosition('t', 'lint', 1)).toEqual({ stdout: 0, stderr: 0 });
    expect(second.limited).toBe(false);
    second.write('t', 'unit', 'stdout', 'four', 6, { attempt: 2, pieces: 3 }); // 11 bytes + 4 > 12
    second.write('t', 'unit', 'stdout', 'dropped', 7, { attempt: 2, pieces: 4 });
    await second.close();
    const stored = await logs.read(9, 0);
    expect(stored.map((l) => [l.seq, l.n, l.stream, l.text, l.src?.pieces])).toEqual([
      [1, 1, 'stdout', 'one', 1],
      [2, 2, 'stderr', 'two', 1],
      [3, 3, 'system', 'retrying', undefined],
      [4, 4, 'stdout', 'three', 2],
      [5, 5, 'system', LOG_LIMIT_MARKER, undefined],
    ]);

    const third = await BuildLogWriter.resume(9, logs, new LogHub(), undefined, { maxBytes: 12 });
    expect(third.limited).toBe(true);
    third.write('t', 'unit', 'stdout', 'x', 8, { attempt: 2, pieces: 5 });
    third.write('t', 'unit', 'system', 'step success', 9);
    await third.close();
    expect((await logs.read(9, 5)).map((l) => [l.seq, l.n, l.text])).toEqual([[6, 6, 'step success']]);
  });
});
