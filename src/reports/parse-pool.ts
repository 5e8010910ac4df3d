/**
 * Parses JUnit reports off the event loop: one worker thread (parsing is CPU work, and the
 * server's machine has few cores), reused while reports keep coming and ended when idle. Each
 * parse has a time bound and the worker a heap bound; a worker over either is terminated and
 * the report gets an error saying which bound it crossed. Where there is no built worker
 * script (the TypeScript sources the unit tests run) it parses in this thread.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  decodeParts,
  DEFAULT_JUNIT_LIMITS,
  parseJUnit,
  type JUnitLimits,
  type ParsedCase,
  type ParsedReport,
} from './junit.js';
import type { ParseAnswer, ParseRequest } from './parse-worker.js';

const READY = 'ready';

/** Longest one parse may take (a 50 MB report parses in a few seconds on a busy machine). */
export const PARSE_TIMEOUT_MS = 60_000;
/** Heap of the worker: a report's tree is several times its size; the file cap is 50 MB. */
export const PARSE_HEAP_MB = 768;
const IDLE_MS = 10_000;

interface Pending {
  bytes: readonly Uint8Array[];
  limits: JUnitLimits;
  resolve: (report: ParsedReport) => void;
}

export interface ParserOptions {
  timeoutMs?: number;
  maxHeapMb?: number;
  /** The worker script; default `parse-worker.js` beside this module (absent: parse in this thread). */
  workerUrl?: URL;
}

/** Parses reports one at a time in a worker thread; `parse` never rejects. */
export class ReportParser {
  private readonly timeoutMs: number;
  private readonly maxHeapMb: number;
  private readonly workerUrl: URL | undefined;
  private readonly queue: Pending[] = [];
  private worker: Worker | undefined;
  private ready = false;
  private busy = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private nextId = 1;

  constructor(options: ParserOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? PARSE_TIMEOUT_MS;
    this.maxHeapMb = options.maxHeapMb ?? PARSE_HEAP_MB;
    const url = options.workerUrl ?? new URL('./parse-worker.js', import.meta.url);
    this.workerUrl = existsSync(fileURLToPath(url)) ? url : undefined;
  }

  /** Whether parses run in a worker thread (false: in this thread, for tests from sources). */
  get offThread(): boolean {
    return this.workerUrl !== undefined;
  }

  /**
   * Parses a file's bytes, whole or in pieces (as a stream gave them: no copy into one buffer on
   * this thread). Their buffers are transferred to the worker: the caller gives them up.
   */
  parse(
    bytes: Uint8Array | readonly Uint8Array[],
    limits: JUnitLimits = DEFAULT_JUNIT_LIMITS,
  ): Promise<ParsedReport> {
    // A view on part of a buffer (a Buffer from Node's shared pool, say) is copied: transferring
    // its buffer would take the rest of it from its owner.
    const parts = (bytes instanceof Uint8Array ? [bytes] : bytes).map((part) =>
      part.byteOffset === 0 && part.byteLength === part.buffer.byteLength ? part : new Uint8Array(part),
    );
    if (!this.workerUrl) return Promise.resolve(parseJUnit(decodeParts(parts), limits));
    return new Promise((resolve) => {
      this.queue.push({ bytes: parts, limits, resolve });
      this.drain();
    });
  }

  async close(): Promise<void> {
    for (const p of this.queue.splice(0)) p.resolve(failed('the server is shutting down'));
    clearTimeout(this.idleTimer);
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }

  private drain(): void {
    if (this.busy || this.queue.length === 0) return;
    clearTimeout(this.idleTimer);
    this.busy = true;
    const next = this.queue.shift()!;
    const worker = (this.worker ??= this.spawn());
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    // The kept cases come in slices before the report (`ParseAnswer`).
    const cases: ParsedCase[] = [];
    const settle = (report: ParsedReport, keep: boolean): void => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (!keep) {
        if (this.worker === worker) this.worker = undefined;
        void worker.terminate();
      }
      this.busy = false;
      next.resolve(report);
      if (this.queue.length > 0) this.drain();
      else if (this.worker) this.idleTimer = setTimeout(() => void this.close(), IDLE_MS).unref();
    };
    const start = (): void => {
      timer = setTimeout(
        () =>
          settle(
            failed(`parsing took longer than ${Math.round(this.timeoutMs / 1000)} s and was stopped`),
            false,
          ),
        this.timeoutMs,
      );
      const request: ParseRequest = { id, bytes: next.bytes, limits: next.limits };
      // Transferred, not copied: the bytes are the parse's alone.
      const buffers = new Set(next.bytes.map((part) => part.buffer as ArrayBuffer));
      worker.postMessage(request, [...buffers]);
    };
    const onMessage = (message: typeof READY | ParseAnswer): void => {
      if (message === READY) {
        this.ready = true;
        start();
      } else if (message.id !== id) return;
      else if ('cases' in message) for (const c of message.cases) cases.push(c);
      else settle({ ...message.report, cases }, true);
    };
    const onError = (error: Error): void => {
      const code = (error as { code?: unknown }).code;
      settle(
        failed(
          code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? `parsing needed more than ${this.maxHeapMb} MB of memory and was stopped`
            : `the parser failed (${error.message})`,
        ),
        false,
      );
    };
    const onExit = (): void => settle(failed('the parser stopped unexpectedly'), false);
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    if (this.ready) start();
  }

  private spawn(): Worker {
    this.ready = false;
    const worker = new Worker(this.workerUrl!, {
      resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb },
    });
    // An idle worker must not keep the process alive.
    worker.unref();
    return worker;
  }
}

function failed(error: string): ParsedReport {
  return {
    cases: [],
    totals: { tests: 0, failures: 0, errors: 0, skipped: 0, timeMs: 0 },
    dropped: 0,
    notes: [],
    error,
  };
}
