/**
 * Compiles pipelines off the event loop: a small pool of worker threads (`compile-worker.ts`),
 * reused from build to build. The server compiles files from repositories it does not trust;
 * a file that takes long to compile (a 10 MB file held the server for 7 s) must cost one
 * build, not every request. Each compile has a time bound and the worker a heap bound; a
 * worker over either is terminated, replaced on the next compile, and the compile fails with
 * an error that says which bound it crossed. `slipway run` and `validate` compile in their own
 * process and do not load this module.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { compilePipeline, type CompileInput, type CompileResult } from './compile.js';
import type { CompileRequest } from './compile-worker.js';

/** What `compile-worker.ts` posts once loaded (a type-only import keeps the worker out of this thread). */
const READY = 'ready';

export interface CompilePoolOptions {
  /** Worker threads at most; compiles beyond that wait for one. Default 2. */
  size?: number;
  /** Longest one compile may run before its worker is terminated. Default `COMPILE_TIMEOUT_MS`. */
  timeoutMs?: number;
  /** Old-generation heap of each worker, in MB. Default `COMPILE_HEAP_MB`. */
  maxHeapMb?: number;
  /** The worker script; default `compile-worker.js` beside this module. */
  workerUrl?: URL;
  /** How long a worker may wait for a compile before it is terminated. Default `COMPILE_IDLE_MS`. */
  idleMs?: number;
}

/** Default time bound of one compile (a valid 1 MiB file compiles in a few seconds on a busy machine). */
export const COMPILE_TIMEOUT_MS = 20_000;

/** Default heap of one compile worker: the compiler's own limits keep a plan under a few MB. */
export const COMPILE_HEAP_MB = 256;

/**
 * Default idle time of a worker before it is terminated. A worker is a V8 heap of its own
 * (~10-20 MB resident each, more after large files): an idle server should not hold two. A
 * new one loads in tens of ms, once per quiet spell; builds in a row keep theirs.
 */
export const COMPILE_IDLE_MS = 15_000;

interface Pending {
  resolve: (result: CompileResult) => void;
  input: CompileInput;
}

/** The compiler in worker threads; `compile` never rejects. */
export class CompilePool {
  private readonly size: number;
  private readonly timeoutMs: number;
  private readonly maxHeapMb: number;
  private readonly workerUrl: URL;
  private readonly idleMs: number;
  private readonly idle: Worker[] = [];
  /** The timer that ends each idle worker. */
  private readonly idleTimers = new Map<Worker, NodeJS.Timeout>();
  /** Workers that have loaded the compiler. */
  private readonly ready = new WeakSet<Worker>();
  private readonly waiting: Pending[] = [];
  private running = 0;
  private nextId = 1;
  private closed = false;

  constructor(options: CompilePoolOptions = {}) {
    this.size = Math.max(1, options.size ?? 2);
    this.timeoutMs = options.timeoutMs ?? COMPILE_TIMEOUT_MS;
    this.maxHeapMb = options.maxHeapMb ?? COMPILE_HEAP_MB;
    this.workerUrl = options.workerUrl ?? new URL('./compile-worker.js', import.meta.url);
    this.idleMs = options.idleMs ?? COMPILE_IDLE_MS;
  }

  /** Worker threads alive now, busy or idle. */
  get workers(): number {
    return this.running + this.idle.length;
  }

  /** The result of `compilePipeline(input)`, computed in a worker; a crossed bound is an error in it. */
  compile(input: CompileInput): Promise<CompileResult> {
    return new Promise((resolve) => {
      this.waiting.push({ resolve, input });
      this.drain();
    });
  }

  /** Terminates the workers; compiles still waiting fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.waiting.splice(0)) p.resolve(failure(p.input, 'the server is shutting down'));
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    this.idleTimers.clear();
    await Promise.all(this.idle.splice(0).map((w) => w.terminate()));
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.running < this.size) {
      const next = this.waiting.shift()!;
      if (this.closed) {
        next.resolve(failure(next.input, 'the server is shutting down'));
        continue;
      }
      this.running++;
      this.run(this.takeIdle() ?? this.spawn(), next);
    }
  }

  /** The most recently used idle worker (the others may then reach their idle time). */
  private takeIdle(): Worker | undefined {
    const worker = this.idle.pop();
    if (worker !== undefined) {
      clearTimeout(this.idleTimers.get(worker));
      this.idleTimers.delete(worker);
    }
    return worker;
  }

  private keepIdle(worker: Worker): void {
    this.idle.push(worker);
    const timer = setTimeout(() => {
      this.idleTimers.delete(worker);
      const at = this.idle.indexOf(worker);
      if (at >= 0) this.idle.splice(at, 1);
      void worker.terminate();
    }, this.idleMs);
    timer.unref();
    this.idleTimers.set(worker, timer);
  }

  private spawn(): Worker {
    const worker = new Worker(this.workerUrl, { resourceLimits: { maxOldGenerationSizeMb: this.maxHeapMb } });
    worker.once('message', (message) => {
      if (message === READY) this.ready.add(worker);
    });
    // An idle worker must not keep the server process alive.
    worker.unref();
    return worker;
  }

  private run(worker: Worker, { resolve, input }: Pending): void {
    const id = this.nextId++;
    let settled = false;
    const settle = (result: CompileResult, keep: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      this.running--;
      if (keep && !this.closed) this.keepIdle(worker);
      else void worker.terminate();
      resolve(result);
      this.drain();
    };
    const onMessage = (message: typeof READY | { id: number; result: CompileResult }): void => {
      if (message === READY) start();
      else if (message.id === id) settle(message.result, true);
    };
    const onError = (error: Error): void => {
      const code = (error as { code?: unknown }).code;
      const why =
        code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `compiling the file needed more than ${this.maxHeapMb} MB of memory and was stopped`
          : `the compiler failed (${error.message})`;
      settle(failure(input, why), false);
    };
    const onExit = (): void => settle(failure(input, 'the compiler stopped unexpectedly'), false);
    let timer: NodeJS.Timeout | undefined;
    // The bound starts once the worker has loaded the compiler: start-up is not the file's doing.
    const start = (): void => {
      timer = setTimeout(() => {
        const seconds = Math.round(this.timeoutMs / 100) / 10;
        const why = `compiling the file took longer than ${seconds} s and was stopped; the server bounds it so that one file cannot hold its compiler`;
        settle(failure(input, why), false);
      }, this.timeoutMs);
      const request: CompileRequest = { id, input };
      worker.postMessage(request);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    if (this.ready.has(worker)) start();
  }
}

/** A compile that did not come to a result: one error at the top of the file saying why. */
function failure(input: CompileInput, why: string): CompileResult {
  return {
    ok: false,
    errors: [{ code: 'limit_exceeded', file: input.file, line: 1, col: 1, path: '', message: why }],
  };
}

let shared: CompilePool | null | undefined;

/**
 * The server's compiler: the process-wide pool, created on first use. Where there is no built
 * worker script (the TypeScript sources run by the unit tests) it compiles in this thread.
 */
export function compileOffLoop(input: CompileInput): Promise<CompileResult> {
  if (shared === undefined) {
    const url = new URL('./compile-worker.js', import.meta.url);
    shared = existsSync(fileURLToPath(url)) ? new CompilePool({ workerUrl: url }) : null;
  }
  return shared ? shared.compile(input) : Promise.resolve(compilePipeline(input));
}
