import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromLogBatch } from '../../../contract/log-stream.js';
import { SseParser } from '../../../contract/sse.js';
import { claimNextBuilds, setBuildStatus } from '../../../store/index.js';
import type { Build } from '../../../store/index.js';
import { openTestDatabase } from '../../../store/testing/dialects.js';
import type { TestDatabase } from '../../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../../store/testing/fixtures.js';
import { LogHub } from '../../logs/log-hub.js';
import type { LogStore, StoredLogLine } from '../../logs/types.js';
import { LiveLogs } from './build-feed.js';
import { LineBatch } from './sse-format.js';
import { SseReader } from './sse-reader.js';
import type { SseSink } from './sse-reader.js';

/** Log store in memory whose reads can be held at a gate, to put live lines exactly in the gap. */
class GatedLogStore implements LogStore {
  private readonly lines = new Map<number, StoredLogLine[]>();
  reads = 0;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;

  /** Reads started from now on take their snapshot, then wait until `release`. */
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.gate = undefined;
    this.open?.();
  }

  append(buildId: number, lines: readonly StoredLogLine[]): Promise<void> {
    this.lines.set(buildId, [...(this.lines.get(buildId) ?? []), ...lines]);
    return Promise.resolve();
  }

  async read(buildId: number, afterSeq: number, limit = Infinity): Promise<StoredLogLine[]> {
    this.reads += 1;
    const snapshot = (this.lines.get(buildId) ?? []).filter((l) => l.seq > afterSeq).slice(0, limit);
    if (this.gate !== undefined) await this.gate;
    return snapshot;
  }

  lastSeq(buildId: number): Promise<number> {
    return Promise.resolve(this.lines.get(buildId)?.at(-1)?.seq ?? 0);
  }

  remove(buildId: number): Promise<void> {
    this.lines.delete(buildId);
    return Promise.resolve();
  }
}

/** A connection whose buffer fills after `capacity` writes until the test drains it. */
class FakeSink implements SseSink {
  readonly chunks: string[] = [];
  /** The byte chunks as written: shared batches are the same Buffer for every reader. */
  readonly raw: (string | Uint8Array)[] = [];
  private full = false;
  closed = false;
  queued = 0;
  /** Most bytes ever queued, the final `lag` event aside. */
  peak = 0;
  private sinceDrain = 0;
  private waiting: (() => void)[] = [];

  constructor(
    private readonly capacity = Infinity,
    /** Bytes queued beyond which it is behind, as a socket's buffer is. */
    private readonly highWater = Infinity,
  ) {}

  get backedUp(): boolean {
    return this.full || this.queued > this.highWater;
  }

  write(chunk: string | Uint8Array): void {
    this.raw.push(chunk);
    this.chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    this.queued += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (!(typeof chunk === 'string' && chunk.startsWith('event: lag')))
      this.peak = Math.max(this.peak, this.queued);
    this.sinceDrain += 1;
    if (this.sinceDrain >= this.capacity) this.full = true;
  }

  drained(): Promise<void> {
    if (!this.backedUp || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  drain(): void {
    this.full = false;
    this.queued = 0;
    this.sinceDrain = 0;
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  end(): void {
    this.closed = true;
  }

  get text(): string {
    return this.chunks.join('');
  }

  /** Seqs of the lines sent, in order, of either format; a batch's id must be its last seq. */
  seqs(): number[] {
    const seqs: number[] = [];
    for (const event of new SseParser().push(this.text)) {
      if (event.event === 'line') seqs.push(Number(event.id));
      if (event.event !== 'lines') continue;
      const batch = fromLogBatch(JSON.parse(event.data));
      if (String(batch.at(-1)?.seq) !== event.id) throw new Error(`batch ${event.id} ends elsewhere`);
      seqs.push(...batch.map((line) => line.seq));
    }
    return seqs;
  }

  events(): string[] {
    return [...this.text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]!);
  }
}

const BUILD_ID = 7;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const lines = (from: number, to: number): StoredLogLine[] =>
  range(from, to).map((seq) => ({
    seq,
    stage: 's',
    step: 't',
    stream: 'stdout',
    n: seq,
    time: 0,
    text: `line ${seq}`,
  }));
const finishedBuild = (): Build => ({
  id: BUILD_ID,
  projectId: 1,
  projectSlug: 'acme/web',
  number: 1,
  status: 'success',
  reason: null,
  branch: 'main',
  commitSha: null,
  commitMessage: null,
  commitAuthor: null,
  pullRequest: null,
  tag: null,
  event: 'manual',
  trigger: 'manual',
  triggeredBy: null,
  createdAt: 0,
  queuedAt: 0,
  startedAt: 0,
  finishedAt: 1000,
  durationMs: 1000,
  rerunOf: null,
  rerunFailed: false,
  executor: null,
  leaseOwner: null,
  leaseExpiresAt: null,
  attempt: 1,
});
const tick = () => new Promise((resolve) => setImmediate(resolve));

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 2000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  if (!check()) throw new Error(`not reached: ${what}`);
}

describe('SseReader', () => {
  /** What the feed does: store, then hand over. */
  async function storeAndPublish(
    store: GatedLogStore,
    reader: SseReader,
    from: number,
    to: number,
  ): Promise<void> {
    await store.append(BUILD_ID, lines(from, to));
    reader.lines(new LineBatch(lines(from, to)));
  }

  it('delivers lines that arrive while the backlog is being read, once, after the backlog', async () => {
    const store = new GatedLogStore();
    await store.append(BUILD_ID, lines(1, 5));
    const sink = new FakeSink();
    const reader = new SseReader(sink, BUILD_ID, store, 0);
    store.hold();
    reader.start();
    await tick();
    // Stored and published after the backlog read took its snapshot: only the buffer has them.
    await storeAndPublish(store, reader, 6, 8);
    expect(sink.seqs()).toEqual([]);
    store.release();
    await until(() => sink.seqs().length === 8, 'backlog and buffered lines');
    await storeAndPublish(store, reader, 9, 10);
    expect(sink.seqs()).toEqual(range(1, 10));
  });

  it('starts after the resume point and never repeats a seq it sent', async () => {
    const store = new GatedLogStore();
    await store.append(BUILD_ID, lines(1, 10));
    const sink = new FakeSink();
    const reader = new SseReader(sink, BUILD_ID, store, 4);
    reader.start();
    await until(() => reader.position === 10, 'the backlog');
    // Hub and store overlap: a batch partly sent already.
    reader.lines(new LineBatch(lines(9, 12)));
    reader.lines(new LineBatch(lines(12, 13)));
    expect(sink.seqs()).toEqual(range(5, 13));
  });

  it('drops live lines beyond its buffer while catching up and reads them from the store instead', async () => {
    const store = new GatedLogStore();
    await store.append(BUILD_ID, lines(1, 2));
    const sink = new FakeSink();
    const reader = new SseReader(sink, BUILD_ID, store, 0, { maxBuffered: 3, pageSize: 4 });
    store.hold();
    reader.start();
    await tick();
    for (let from = 3; from <= 19; from += 2) await storeAndPublish(store, reader, from, from + 1);
    store.release();
    await until(() => reader.position === 20, 'everything');
    expect(sink.seqs()).toEqual(range(1, 20));
  });

  it('catches up from the store when its client is slow, with bounded memory and no duplicates', async () => {
    const store = new GatedLogStore();
    const sink = new FakeSink(2);
    const reader = new SseReader(sink, BUILD_ID, store, 0, { maxBuffered: 5, pageSize: 3 });
    reader.start();
    await until(() => store.reads === 1, 'the empty backlog');
    await tick();
    for (let from = 1; from <= 40; from += 4) {
      await storeAndPublish(store, reader, from, from + 3);
      if (from % 12 === 1) sink.drain();
      await tick();
    }
    for (let i = 0; i < 50 && reader.position < 40; i++) {
      sink.drain();
      await tick();
    }
    expect(sink.seqs()).toEqual(range(1, 40));
  });

  it('sends end after every line even when told to end while catching up', async () => {
    const store = new GatedLogStore();
    await store.append(BUILD_ID, lines(1, 3));
    const sink = new FakeSink();
    const reader = new SseReader(sink, BUILD_ID, store, 0, { format: 'line' });
    store.hold();
    reader.start();
    await tick();
    reader.end(finishedBuild());
    expect(sink.closed).toBe(false);
    store.release();
    await until(() => sink.closed, 'the end');
    expect(sink.seqs()).toEqual([1, 2, 3]);
    expect(sink.events()).toEqual(['line', 'line', 'line', 'status', 'end']);
  });

  it('writes a live batch as one `lines` event, the same bytes for every reader', async () => {
    const store = new GatedLogStore();
    const sinks = [new FakeSink(), new FakeSink()];
    const readers = sinks.map((sink) => new SseReader(sink, BUILD_ID, store, 0));
    for (const reader of readers) reader.start();
    await until(() => store.reads === 2, 'the empty backlogs');
    await tick();
    const batch = new LineBatch(lines(1, 50));
    await store.append(BUILD_ID, batch.lines);
    for (const reader of readers) reader.lines(batch);
    expect(sinks[0]!.raw.at(-1)).toBeInstanceOf(Buffer);
    expect(sinks[0]!.raw.at(-1)).toBe(sinks[1]!.raw.at(-1));
    expect(sinks[0]!.events()).toEqual(['lines']);
    expect(sinks[0]!.seqs()).toEqual(range(1, 50));
  });

  it('ends a reader that falls behind with `lag`, bounded; its resume is exact and a fast reader misses nothing', async () => {
    const store = new GatedLogStore();
    const fast = new FakeSink();
    const slow = new FakeSink();
    const options = { maxLagBytes: 2000 };
    const fastReader = new SseReader(fast, BUILD_ID, store, 0, options);
    const slowReader = new SseReader(slow, BUILD_ID, store, 0, options);
    fastReader.start();
    slowReader.start();
    await until(() => store.reads === 2, 'the empty backlogs');
    await tick();
    for (let from = 1; from <= 200; from += 10) {
      const batch = new LineBatch(lines(from, from + 9));
      await store.append(BUILD_ID, batch.lines);
      fastReader.lines(batch);
      slowReader.lines(batch);
      fast.drain(); // the slow client never reads
    }
    expect(fast.seqs()).toEqual(range(1, 200));
    expect(fast.closed).toBe(false);
    expect(slow.closed).toBe(true);
    expect(slow.events().at(-1)).toBe('lag');
    expect(slow.peak).toBeLessThanOrEqual(2000);
    const parser = new SseParser();
    const lag = parser.push(slow.text).at(-1)!;
    expect(JSON.parse(lag.data)).toMatchObject({ after: slowReader.position });
    expect(parser.lastEventId).toBe(String(slowReader.position));
    expect(slowReader.position).toBeLessThan(200);

    const resumed = new FakeSink();
    const again = new SseReader(resumed, BUILD_ID, store, Number(parser.lastEventId), options);
    again.start();
    await until(() => again.position === 200, 'the resume');
    expect([...slow.seqs(), ...resumed.seqs()]).toEqual(range(1, 200));
  });

  it('property: whatever the batches and however often a slow client is dropped, its resumes add up to every line once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ count: fc.integer({ min: 1, max: 30 }), width: fc.nat(120), drain: fc.boolean() }),
          {
            minLength: 1,
            maxLength: 25,
          },
        ),
        fc.integer({ min: 100, max: 6000 }),
        async (batches, maxLagBytes) => {
          const store = new GatedLogStore();
          const sessions: FakeSink[] = [];
          let reader: SseReader | undefined;
          let sink: FakeSink | undefined;
          let after = 0;
          const connect = async () => {
            // What a client does: resume after the last id it received.
            if (sink !== undefined) {
              const parser = new SseParser(String(after));
              parser.push(sink.text);
              after = Number(parser.lastEventId);
            }
            sink = new FakeSink(Infinity, 1000);
            sessions.push(sink);
            reader = new SseReader(sink, BUILD_ID, store, after, { maxLagBytes, pageSize: 7 });
            reader.start();
            const last = await store.lastSeq(BUILD_ID);
            while (reader.position < last) {
              sink.drain();
              await tick();
            }
          };
          await connect();
          let seq = 0;
          for (const { count, width, drain } of batches) {
            const batch = lines(seq + 1, seq + count).map((line) => ({ ...line, text: 'x'.repeat(width) }));
            seq += count;
            await store.append(BUILD_ID, batch);
            reader!.lines(new LineBatch(batch));
            if (drain) sink!.drain();
            if (sink!.closed) await connect();
          }
          while (reader!.position < seq) {
            sink!.drain();
            await tick();
            if (sink!.closed) await connect();
          }
          const all = sessions.flatMap((s) => s.seqs());
          expect(all).toEqual(range(1, seq));
          // Bounded: never more queued than the bound, or one frame to a client that had taken all.
          for (const s of sessions) expect(s.peak).toBeLessThanOrEqual(Math.max(maxLagBytes, 6000));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('writes nothing more once its client is gone', async () => {
    const store = new GatedLogStore();
    const sink = new FakeSink();
    const reader = new SseReader(sink, BUILD_ID, store, 0);
    reader.start();
    await tick();
    reader.abort();
    reader.lines(new LineBatch(lines(1, 3)));
    reader.heartbeat();
    expect(sink.chunks).toEqual([]);
  });
});

describe('LiveLogs (shared feeds)', () => {
  let t: TestDatabase;
  let build: Build;

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    const project = await makeProject(t.db);
    build = await makeBuild(t.db, project.id);
    await claimNextBuilds(t.db, 'test-owner', 60_000, { global: 10 });
    await setBuildStatus(t.db, build.id, ['pending'], 'running');
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it('serves 200 readers of one build with one hub subscription and no store polling while the hub delivers', async () => {
    const store = new GatedLogStore();
    const hub = new LogHub();
    const live = new LiveLogs({
      db: t.db,
      logs: store,
      hub,
      timing: { storePollMs: 250, statusPollMs: 30, heartbeatMs: 60_000 },
    });
    let seq = 0;
    const emit = async (count: number) => {
      const batch = lines(seq + 1, seq + count);
      seq += count;
      await store.append(build.id, batch);
      hub.publish(build.id, batch);
    };
    await emit(50);

    const sinks: FakeSink[] = [];
    for (let i = 0; i < 200; i++) {
      const sink = new FakeSink();
      const reader = new SseReader(sink, build.id, store, 0);
      const membership = live.join(build.id, reader);
      void membership.ready.then(() => reader.start());
      sinks.push(sink);
      if (i % 20 === 0) await emit(5);
    }
    expect(hub.subscriberCount(build.id)).toBe(1);
    await until(() => store.reads >= 200, 'every backlog read');
    const readsAfterJoin = store.reads;
    for (let i = 0; i < 40; i++) {
      await emit(10);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Every reader read its backlog once; the feed did not poll while lines kept coming.
    expect(store.reads - readsAfterJoin).toBeLessThanOrEqual(2);

    await setBuildStatus(t.db, build.id, ['running'], 'success');
    await until(() => sinks.every((s) => s.closed), 'every reader to end');
    for (const sink of sinks) {
      expect(sink.seqs()).toEqual(range(1, seq));
      expect(sink.events().at(-1)).toBe('end');
    }
    expect(live.followedBuilds).toEqual([]);
    expect(hub.subscriberCount(build.id)).toBe(0);
  });

  it('polls the store for lines written elsewhere, never while a writer in this process writes the log', async () => {
    /** Store reads by the feed while its reader waits for three heartbeats (ten polls each). */
    const pollsWhile = async (writtenHere: boolean): Promise<number> => {
      const followed = await makeBuild(t.db, build.projectId, { branch: writtenHere ? 'here' : 'elsewhere' });
      const store = new GatedLogStore();
      const hub = new LogHub();
      if (writtenHere) hub.writing(followed.id);
      const live = new LiveLogs({
        db: t.db,
        logs: store,
        hub,
        timing: { storePollMs: 5, statusPollMs: 60_000, heartbeatMs: 50 },
      });
      const sink = new FakeSink();
      const reader = new SseReader(sink, followed.id, store, 0);
      const membership = live.join(followed.id, reader);
      await membership.ready;
      reader.start(); // reads its (empty) backlog at once
      const before = store.reads;
      await until(() => sink.text.split(': keep-alive').length > 3, 'three heartbeats');
      membership.leave();
      return store.reads - before;
    };
    expect(await pollsWhile(false)).toBeGreaterThan(0);
    expect(await pollsWhile(true)).toBe(0);
  });

  it('disconnects its readers on shutdown without claiming the build ended', async () => {
    const other = await makeBuild(t.db, build.projectId, { branch: 'other' });
    const live = new LiveLogs({ db: t.db, logs: new GatedLogStore(), hub: new LogHub() });
    const sink = new FakeSink();
    const reader = new SseReader(sink, other.id, new GatedLogStore(), 0);
    const membership = live.join(other.id, reader);
    await membership.ready;
    live.closeAll();
    expect(sink.closed).toBe(true);
    expect(sink.events()).not.toContain('end');
    expect(live.followedBuilds).toEqual([]);
  });
});
