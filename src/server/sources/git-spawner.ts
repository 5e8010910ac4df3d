/**
 * Starts git processes from a small long-lived helper (`node -e`, CommonJS) instead of the
 * server process. `spawn()` is synchronous: the parent waits for fork+exec, and fork copies
 * the parent's page tables, so the cost grows with the server's memory (about 2 ms per spawn
 * in a 50 MB process, 5 ms in a 300 MB one), all of it on the server's event loop. From the
 * helper the same fork costs a small process's page tables, on another thread of execution;
 * the server writes a line on a pipe and reads one back.
 *
 * The helper is spoken to over its stdin and stdout, one JSON object a line: git's environment
 * (credentials among it) travels on the pipe, never on a command line or on disk. It runs in a
 * process group of its own with its git processes: when it dies, the server kills that group
 * (no git left running unwatched) and fails the requests it had; the next request starts a new
 * helper. When no helper can be started, git is run from this process, as before.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { listenToHelper, requestLoopSource, unrefStream } from '../../executors/helper-requests.js';

/** What git is asked to do; the same as `execFile`'s arguments of {@link runGit}. */
export interface GitJob {
  args: string[];
  cwd?: string;
  /** git's whole environment. */
  env: Record<string, string>;
  timeout: number;
  maxBuffer: number;
  input?: string;
  signal?: AbortSignal;
}

/** How git ended: as `execFile` reports it (only what runGit reads of it). */
export interface GitOutcome {
  stdout: string;
  stderr: string;
  /**
   * Set when git failed, was killed (timeout, abort, maxBuffer) or could not start; `code` is
   * Node's (`ERR_CHILD_PROCESS_STDIO_MAXBUFFER`, `ENOENT`…) or git's exit status.
   */
  error?: { message: string; killed: boolean; code?: string | number };
}

/** stderr kept of a failed git: its reason is in the first lines. */
const STDERR_KEPT = 64 * 1024;

/** Runs in the helper (`node -e`, CommonJS). */
const HELPER_SOURCE = String.raw`'use strict';
const cp = require('child_process');
process.stdout.on('error', () => {});
for (const s of ['SIGINT', 'SIGHUP']) process.on(s, () => {});
const running = new Map();
function say(message) {
  try { process.stdout.write(JSON.stringify(message) + '\n'); } catch {}
}
function run(req) {
  let child;
  const done = (error, stdout, stderr) => {
    running.delete(req.id);
    if (!error) return say({ id: req.id, stdout: String(stdout) });
    say({
      id: req.id,
      stderr: String(stderr).slice(0, ${STDERR_KEPT}),
      error: { message: String(error.message), killed: error.killed === true, code: error.code },
    });
  };
  try {
    child = cp.execFile('git', req.args, {
      cwd: req.cwd, env: req.env, timeout: req.timeout, killSignal: 'SIGKILL', maxBuffer: req.maxBuffer,
    }, done);
  } catch (e) {
    return done(e, '', '');
  }
  running.set(req.id, child);
  if (child.stdin) {
    child.stdin.on('error', () => {});
    child.stdin.end(req.input);
  }
}
${requestLoopSource(`if (req.kill !== undefined) {
      const child = running.get(req.kill);
      if (child) child.kill('SIGKILL');
    } else run(req);`)}
// The server is gone (or done with it): no git of it goes on.
process.stdin.on('end', () => {
  for (const child of running.values()) child.kill('SIGKILL');
  process.exit(0);
});
`;

/** A helper gone this many times in a row without answering anything: use this process for a while. */
const MAX_FAILED_STARTS = 3;
const DISABLED_MS = 60_000;
/** An answer line longer than this is no answer of the helper's: it is killed. */
const MAX_LINE = 160 * 1024 * 1024;

interface Pending {
  resolve: (outcome: GitOutcome | 'unavailable') => void;
  /** The timer that gives up on a helper that never answers. */
  timer: NodeJS.Timeout;
  cleanup: () => void;
}

class HelperProcess {
  readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  /** Whether the helper ran (its 'spawn' came): requests it fails then are failed, not re-run. */
  started = false;
  answered = false;
  closed = false;

  constructor(private readonly onEnd: (helper: HelperProcess) => void) {
    this.child = spawn(process.execPath, ['-e', HELPER_SOURCE], {
      // A process group of its own, with its git processes: killed together if it dies.
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
      // Nothing of the server's NODE_OPTIONS or credentials reaches the helper itself; git's
      // environment comes with each request.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      cwd: '/',
    });
    this.child.once('spawn', () => (this.started = true));
    listenToHelper(this.child, {
      hear: (line) => this.hear(line),
      end: () => this.end(),
      maxLine: MAX_LINE,
      overflow: () => this.kill(),
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  /** Resolves with git's outcome, or `unavailable` when the helper could not be started. */
  run(job: GitJob): Promise<GitOutcome | 'unavailable'> {
    if (this.closed) return Promise.resolve('unavailable');
    const id = ++this.seq;
    return new Promise((resolve) => {
      const onAbort = () => this.send({ kill: id });
      // A helper that never answers (stopped, wedged) is killed: the request fails, it never hangs.
      const timer = setTimeout(() => this.kill(), job.timeout + 30_000);
      timer.unref();
      this.pending.set(id, {
        resolve,
        timer,
        cleanup: () => job.signal?.removeEventListener('abort', onAbort),
      });
      job.signal?.addEventListener('abort', onAbort, { once: true });
      // While an answer is due, the pipe keeps this process alive; idle, it does not.
      ref(this.child.stdout);
      const { signal: _signal, ...request } = job;
      this.send({ id, ...request });
    });
  }

  /** Ends the helper: it kills what git it runs; the requests it had fail. */
  close(): void {
    this.child.stdin?.end();
  }

  kill(): void {
    try {
      if (this.child.pid !== undefined) process.kill(-this.child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  private send(message: object): void {
    this.child.stdin?.write(JSON.stringify(message) + '\n');
  }

  private hear(line: string): void {
    let reply: {
      id?: unknown;
      stdout?: unknown;
      stderr?: unknown;
      error?: { message?: unknown; killed?: unknown; code?: unknown };
    };
    try {
      reply = JSON.parse(line) as typeof reply;
    } catch {
      return;
    }
    if (typeof reply.id !== 'number') return;
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.answered = true;
    this.settle(reply.id, pending, {
      stdout: typeof reply.stdout === 'string' ? reply.stdout : '',
      stderr: typeof reply.stderr === 'string' ? reply.stderr : '',
      ...(reply.error !== undefined && {
        error: {
          message: String(reply.error.message),
          killed: reply.error.killed === true,
          ...((typeof reply.error.code === 'string' || typeof reply.error.code === 'number') && {
            code: reply.error.code,
          }),
        },
      }),
    });
  }

  private settle(id: number, pending: Pending, outcome: GitOutcome | 'unavailable'): void {
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.cleanup();
    if (this.pending.size === 0) unrefStream(this.child.stdout);
    pending.resolve(outcome);
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    // Its git processes, if it died under them.
    this.kill();
    const outcome: GitOutcome | 'unavailable' = this.started
      ? { stdout: '', stderr: '', error: { message: 'the git helper process ended', killed: false } }
      : 'unavailable';
    for (const [id, pending] of [...this.pending]) this.settle(id, pending, outcome);
    this.onEnd(this);
  }
}

/**
 * The helper of this process: started on first use, ended after `idleMs` without a request
 * (a stream of builds keeps one), started again when needed.
 */
export class GitSpawner {
  private current: HelperProcess | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private failedStarts = 0;
  private disabledUntil = 0;

  constructor(private readonly idleMs = 60_000) {}

  /** The helper's pid, if one runs (for tests). */
  get pid(): number | undefined {
    return this.current?.closed === false ? this.current.pid : undefined;
  }

  async run(job: GitJob): Promise<GitOutcome> {
    if (job.signal?.aborted) return aborted();
    clearTimeout(this.idleTimer);
    const helper = Date.now() < this.disabledUntil ? undefined : this.helper();
    const outcome = helper ? await helper.run(job) : 'unavailable';
    this.idleSoon();
    return outcome === 'unavailable' ? runDirect(job) : outcome;
  }

  /** Ends the helper now (a later request starts another). */
  close(): void {
    clearTimeout(this.idleTimer);
    this.current?.close();
    this.current = undefined;
  }

  private helper(): HelperProcess {
    if (this.current && !this.current.closed) return this.current;
    this.current = new HelperProcess((ended) => {
      if (this.current === ended) this.current = undefined;
      if (ended.answered) this.failedStarts = 0;
      else if (++this.failedStarts >= MAX_FAILED_STARTS) {
        this.failedStarts = 0;
        this.disabledUntil = Date.now() + DISABLED_MS;
      }
    });
    return this.current;
  }

  private idleSoon(): void {
    clearTimeout(this.idleTimer);
    if (this.current?.busy) return;
    this.idleTimer = setTimeout(() => {
      if (!this.current?.busy) this.close();
    }, this.idleMs);
    this.idleTimer.unref();
  }
}

/** git run from this process: the way without a helper. */
export function runDirect(job: GitJob): Promise<GitOutcome> {
  return new Promise((resolve) => {
    const child = execFile(
      'git',
      job.args,
      {
        ...(job.cwd !== undefined && { cwd: job.cwd }),
        ...(job.signal !== undefined && { signal: job.signal }),
        timeout: job.timeout,
        killSignal: 'SIGKILL',
        maxBuffer: job.maxBuffer,
        env: job.env,
      },
      (error, stdout, stderr) =>
        resolve(
          error
            ? {
                stdout: '',
                stderr: stderr.slice(0, STDERR_KEPT),
                error: {
                  message: error.message,
                  killed: error.killed === true,
                  ...(error.code !== undefined && error.code !== null && { code: error.code }),
                },
              }
            : { stdout, stderr: '' },
        ),
    );
    // A git that exits before reading all of it is reported by the callback, not by a pipe error.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(job.input);
  });
}

function aborted(): GitOutcome {
  return { stdout: '', stderr: '', error: { message: 'The operation was aborted', killed: true } };
}

function ref(stream: unknown): void {
  (stream as { ref?: () => void } | null)?.ref?.();
}

/** The spawner of this process; `SLIPWAY_GIT_HELPER=0` runs git from this process instead. */
let shared: GitSpawner | undefined;

export function gitSpawner(): GitSpawner | undefined {
  if (process.env.SLIPWAY_GIT_HELPER === '0') return undefined;
  shared ??= new GitSpawner();
  return shared;
}
