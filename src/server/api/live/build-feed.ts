import type { Kysely } from 'kysely';
import { getBuild, isTerminalStatus } from '../../../store/index.js';
import type { Build, Database } from '../../../store/index.js';
import type { LogHub } from '../../logs/log-hub.js';
import type { LogStore, StoredLogLine } from '../../logs/types.js';
import { OpenStreams } from './open-streams.js';
import { LineBatch } from './sse-format.js';

/** One follower of a build's live log (an SSE connection). Calls never overlap; none throws. */
export interface FeedListener {
  /** Newly stored lines, ascending; each batch starts after the previous one. */
  lines(batch: LineBatch): void;
  /** The build's current record, on joining and whenever its status changes. */
  status(build: Build): void;
  /** The build is over and every stored line has been handed out. The feed forgets the listener. */
  end(build: Build): void;
  heartbeat(): void;
  /**
   * The feed stops although the build may not be over (server shutdown, store failure, build
   * deleted): the listener closes its connection so that the client reconnects and resumes.
   */
  disconnect(): void;
}

export interface LiveLogTiming {
  /** How often the build's status is read. Default 1000. */
  statusPollMs?: number;
  /**
   * How often the log store is read for new lines while the hub is silent: the build may run
   * in another server process, whose lines reach this one only through the store. Default 500.
   */
  storePollMs?: number;
  /** Default 15000. */
  heartbeatMs?: number;
  /** Lines per store read. Default 5000. */
  pageSize?: number;
}

export interface LiveLogDeps {
  db: Kysely<Database>;
  logs: LogStore;
  hub: LogHub;
  timing?: LiveLogTiming;
  /** Failures of background reads; the feed carries on (or disconnects its listeners). */
  onError?: (error: unknown, buildId: number) => void;
}

/** A listener's place in a feed. */
export interface FeedMembership {
  /**
   * Resolves once the feed knows where the store's log ended when it started: from then on
   * it hands every newer line to the listener, so the listener may read its backlog from the
   * store and lose nothing in between. Never rejects.
   */
  ready: Promise<void>;
  leave(): void;
}

/**
 * Live logs of all builds followed through this server process: one shared feed per build,
 * however many readers follow it. A feed subscribes to the LogHub once, reads the build's
 * status once per `statusPollMs` and, when the hub is silent (the build runs elsewhere, or is
 * quiet), reads the store once per `storePollMs`; readers only get what it found. So 200
 * readers of one build cost what one does, apart from their own sockets.
 */
export class LiveLogs {
  private readonly feeds = new Map<number, BuildFeed>();
  /** The SSE connections by the credential that opened them: closed when it is revoked. */
  readonly streams = new OpenStreams();

  constructor(private readonly deps: LiveLogDeps) {}

  join(buildId: number, listener: FeedListener): FeedMembership {
    let feed = this.feeds.get(buildId);
    if (feed === undefined) {
      const created: BuildFeed = new BuildFeed(buildId, this.deps, () => {
        if (this.feeds.get(buildId) === created) this.feeds.delete(buildId);
      });
      feed = created;
      this.feeds.set(buildId, created);
    }
    return feed.add(listener);
  }

  /** Builds followed right now (for tests and diagnostics). */
  get followedBuilds(): number[] {
    return [...this.feeds.keys()];
  }

  /** Disconnects every listener: the server is shutting down and their clients should reconnect elsewhere. */
  closeAll(): void {
    for (const feed of [...this.feeds.values()]) feed.fail();
  }
}

/** How long a feed relies on a writer in this process without hearing from it (see `pollStore`). */
const LOCAL_WRITER_TRUST_MS = 30_000;

class BuildFeed {
  private readonly listeners = new Set<FeedListener>();
  private readonly timing: Required<LiveLogTiming>;
  private state: 'starting' | 'ready' | 'closed' = 'starting';
  /** Highest seq handed out; every stored line above it will be. */
  private head = 0;
  /** Hub batches that arrived before `head` was known. */
  private early: (readonly StoredLogLine[])[] = [];
  private lastHubAt = 0;
  private readonly createdAt = Date.now();
  private latest: Build | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: () => void;
  private polling = false;
  private checking = false;
  private checkAgain = false;
  readonly ready: Promise<void>;

  constructor(
    private readonly buildId: number,
    private readonly deps: LiveLogDeps,
    private readonly onClosed: () => void,
  ) {
    this.timing = {
      statusPollMs: deps.timing?.statusPollMs ?? 1000,
      storePollMs: deps.timing?.storePollMs ?? 500,
      heartbeatMs: deps.timing?.heartbeatMs ?? 15_000,
      pageSize: deps.timing?.pageSize ?? 5000,
    };
    // Subscribed before the store is read: a line stored after the read is then surely
    // published to us (the hub publishes only stored lines), so none falls in between.
    this.unsubscribe = deps.hub.subscribe(
      buildId,
      (lines) => this.fromHub(lines),
      () => this.checkStatusSoon(),
    );
    this.ready = this.start();
  }

  add(listener: FeedListener): FeedMembership {
    this.listeners.add(listener);
    if (this.latest !== undefined) listener.status(this.latest);
    return {
      ready: this.ready,
      leave: () => {
        this.listeners.delete(listener);
        if (this.listeners.size === 0) this.close();
      },
    };
  }

  /** Disconnects every listener and stops. */
  fail(): void {
    const listeners = [...this.listeners];
    this.close();
    for (const listener of listeners) listener.disconnect();
  }

  private async start(): Promise<void> {
    try {
      const head = await this.deps.logs.lastSeq(this.buildId);
      if (this.state === 'closed') return;
      this.head = head;
      this.state = 'ready';
      const early = this.early;
      this.early = [];
      for (const lines of early) this.distribute(lines);
      this.timers.push(
        setInterval(() => void this.pollStore(), this.timing.storePollMs),
        setInterval(() => this.checkStatusSoon(), this.timing.statusPollMs),
        setInterval(() => this.heartbeat(), this.timing.heartbeatMs),
      );
      // At once, so that a finished build ends its readers without waiting for the first tick.
      this.checkStatusSoon();
    } catch (error) {
      this.deps.onError?.(error, this.buildId);
      this.fail();
    }
  }

  private fromHub(lines: readonly StoredLogLine[]): void {
    this.lastHubAt = Date.now();
    if (this.state === 'starting') this.early.push(lines);
    else if (this.state === 'ready') this.distribute(lines);
  }

  /** Hands out the lines above `head`, in order; lines seen before (hub and store overlap) are dropped. */
  private distribute(lines: readonly StoredLogLine[]): void {
    let from = 0;
    while (from < lines.length && lines[from]!.seq <= this.head) from += 1;
    if (from === lines.length) return;
    const batch = new LineBatch(from === 0 ? lines : lines.slice(from));
    this.head = batch.lastSeq;
    for (const listener of this.listeners) listener.lines(batch);
  }

  private async pollStore(): Promise<void> {
    if (this.state !== 'ready' || this.polling) return;
    // While the hub delivers, the store has nothing the hub will not bring.
    if (Date.now() - this.lastHubAt < this.timing.storePollMs) return;
    // Nor while a writer in this process writes the log, however long a burst takes to store:
    // reading the store then would parse (and cache) what the hub brings anyway. A writer that
    // stays silent that long may have been left unclosed: the store is read again.
    const silent = Date.now() - Math.max(this.lastHubAt, this.createdAt);
    if (this.deps.hub.isWritten(this.buildId) && silent < LOCAL_WRITER_TRUST_MS) return;
    this.polling = true;
    try {
      await this.readStore();
    } catch (error) {
      this.deps.onError?.(error, this.buildId);
    } finally {
      this.polling = false;
    }
  }

  /** Hands out everything the store has above `head`. */
  private async readStore(): Promise<void> {
    for (;;) {
      const lines = await this.deps.logs.read(this.buildId, this.head, this.timing.pageSize);
      if (this.state !== 'ready') return;
      this.distribute(lines);
      if (lines.length < this.timing.pageSize) return;
    }
  }

  private checkStatusSoon(): void {
    if (this.state !== 'ready') return;
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    void this.checkStatus().finally(() => {
      this.checking = false;
      if (this.checkAgain) {
        this.checkAgain = false;
        this.checkStatusSoon();
      }
    });
  }

  private async checkStatus(): Promise<void> {
    try {
      const build = await getBuild(this.deps.db, this.buildId);
      if (this.state !== 'ready') return;
      if (build === undefined) {
        // Deleted with its project: reconnecting clients get a 404 and stop.
        this.fail();
        return;
      }
      const changed = this.latest?.status !== build.status;
      this.latest = build;
      if (changed) for (const listener of this.listeners) listener.status(build);
      if (!isTerminalStatus(build.status)) return;
      // A build is finished only after its last lines were stored, so this read gets them all.
      await this.readStore();
      if (this.state !== 'ready') return;
      const listeners = [...this.listeners];
      this.close();
      for (const listener of listeners) listener.end(build);
    } catch (error) {
      this.deps.onError?.(error, this.buildId);
    }
  }

  private heartbeat(): void {
    for (const listener of this.listeners) listener.heartbeat();
  }

  private close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const timer of this.timers) clearInterval(timer);
    this.unsubscribe();
    this.listeners.clear();
    this.onClosed();
  }
}
