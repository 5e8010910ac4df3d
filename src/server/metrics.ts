import type { Kysely } from 'kysely';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { queueDepth, runningCounts } from '../store/index.js';
import type { Database } from '../store/index.js';

export interface MetricsOptions {
  /** Where the queue gauges are read from on each scrape; without it they stay unset. */
  db?: Kysely<Database>;
  /** Node.js process metrics (CPU, memory, event loop, GC). Default true. */
  processMetrics?: boolean;
  /**
   * Called when the store cannot be read during a scrape. The gauges then report NaN
   * ("unknown") instead of failing the whole scrape, so the process metrics still arrive
   * while the database is down.
   */
  onCollectError?: (error: unknown) => void;
}

/** Upper bounds of build durations in seconds: a second-long smoke test up to a two-hour release. */
const DURATION_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200];

/**
 * Slipway's Prometheus metrics, in a registry of its own (not prom-client's global one), so
 * several servers in one process (tests) do not collide. Queue gauges are read from the
 * database at scrape time: with several replicas sharing one database each reports the
 * shared queue, which is what an alert on queue depth wants.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly buildDuration: Histogram<'status'>;
  private readonly stepOutcomes: Counter<'status'>;
  private readonly webhookRejections: Counter<'forge' | 'reason'>;
  private readonly droppedLogLines: Counter;

  constructor(options: MetricsOptions = {}) {
    const { db, onCollectError } = options;
    const registers = [this.registry];
    const fromStore = (read: (db: Kysely<Database>) => Promise<number>) =>
      async function collect(this: Gauge) {
        if (db === undefined) return;
        try {
          this.set(await read(db));
        } catch (error) {
          this.set(Number.NaN);
          onCollectError?.(error);
        }
      };
    new Gauge({
      name: 'slipway_queue_depth',
      help: 'Builds waiting in the queue (status queued).',
      registers,
      collect: fromStore(queueDepth),
    });
    new Gauge({
      name: 'slipway_running_builds',
      help: 'Active builds (pending, running or waiting for approval) across all replicas.',
      registers,
      collect: fromStore(async (d) => (await runningCounts(d)).total),
    });
    this.buildDuration = new Histogram({
      name: 'slipway_build_duration_seconds',
      help: 'Duration of finished builds, by final status.',
      labelNames: ['status'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.stepOutcomes = new Counter({
      name: 'slipway_step_outcomes_total',
      help: 'Finished steps, by final status.',
      labelNames: ['status'],
      registers,
    });
    this.webhookRejections = new Counter({
      name: 'slipway_webhook_rejected_total',
      help: 'Webhook deliveries refused, by forge and reason.',
      labelNames: ['forge', 'reason'],
      registers,
    });
    this.droppedLogLines = new Counter({
      name: 'slipway_log_lines_dropped_total',
      help: "Build log lines lost because the log store refused them (the server log has each build's first error).",
      registers,
    });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** A build reached a final status; `seconds` is null for a build that never started. */
  buildFinished(status: string, seconds: number | null): void {
    if (seconds === null || !Number.isFinite(seconds)) return;
    this.buildDuration.observe({ status }, Math.max(0, seconds));
  }

  /** A step reached a final status. */
  stepFinished(status: string): void {
    this.stepOutcomes.inc({ status });
  }

  /** A webhook delivery was refused (bad signature, unknown project, filtered ref, …). */
  webhookRejected(forge: string, reason: string): void {
    this.webhookRejections.inc({ forge, reason });
  }

  /** Lines of a build's log could not be stored and are lost. */
  logLinesDropped(lines: number): void {
    this.droppedLogLines.inc(lines);
  }

  /** The exposition text and its content type, for `/metrics`. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
