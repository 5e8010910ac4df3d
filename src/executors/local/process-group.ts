import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { LineSplitter } from '../lines.js';
import type { OutputSink } from '../types.js';

/** How a shell script in its own process group ended. */
export type GroupEnd = { kind: 'exited'; exitCode: number } | { kind: 'error'; message: string };

export interface GroupOptions {
  /** Script file run by `/bin/sh -e`. */
  script: string;
  cwd: string;
  env: Record<string, string>;
  sink: OutputSink;
  /** How long to wait for the output pipes to close after the shell exited. */
  drainMs: number;
  /**
   * Run as this user and group (needs root). Node's spawn (libuv) then also drops the
   * supplementary groups (`setgroups(0)`), so none of root's groups stay with the step.
   */
  uid?: number;
  gid?: number;
}

/**
 * A `/bin/sh -e <script>` in a new session and process group (so one signal reaches everything
 * it started), with its stdout/stderr split into lines for a sink.
 */
export interface ProcessGroup {
  readonly pid: number | undefined;
  /**
   * Resolves once the shell exited, the rest of its group was killed and its output was
   * delivered. Never rejects.
   */
  readonly done: Promise<GroupEnd>;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves with {@link done}. */
  terminate(graceMs: number): Promise<GroupEnd>;
}

/** Starts `/bin/sh -e script` detached, as the leader of its own process group. */
export function spawnGroup(options: GroupOptions): ProcessGroup {
  const child = spawn('/bin/sh', ['-e', options.script], {
    cwd: options.cwd,
    env: options.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  const pid = child.pid;
  let exited = false;

  const outputs = [drain(child.stdout, 'stdout', options.sink), drain(child.stderr, 'stderr', options.sink)];

  const done = new Promise<GroupEnd>((resolve) => {
    let started = false;
    child.once('spawn', () => (started = true));
    child.on('error', (err) => {
      // After a successful spawn, 'error' only reports a failed kill(); the exit still comes.
      if (started) return;
      exited = true;
      for (const out of outputs) out.stop();
      resolve({ kind: 'error', message: `could not start /bin/sh in ${options.cwd}: ${err.message}` });
    });
    child.once('exit', (code, signal) => {
      exited = true;
      // Background children die with the shell, as they do when a container's init exits.
      if (pid !== undefined) killGroup(pid, 'SIGKILL');
      const exitCode = code ?? 128 + (signal ? constants.signals[signal] : 0);
      void settleOutputs(outputs, options.drainMs).then(() => resolve({ kind: 'exited', exitCode }));
    });
  });

  return {
    pid,
    done,
    terminate(graceMs: number): Promise<GroupEnd> {
      if (exited || pid === undefined) return done;
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      return done.finally(() => clearTimeout(timer));
    },
  };
}

/** Sends a signal to a whole process group; a group that is already gone is not an error. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left. EPERM: the id now belongs to someone else's group; leave it.
  }
}

interface Output {
  closed: Promise<void>;
  /** Stops reading and emits the partial last line. */
  stop(): void;
}

function drain(stream: Readable, name: 'stdout' | 'stderr', sink: OutputSink): Output {
  const splitter = new LineSplitter((text, continues) => sink.line(name, text, continues));
  let stopped = false;
  stream.on('data', (chunk: Buffer) => splitter.write(chunk));
  const closed = new Promise<void>((resolve) => {
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  return {
    closed,
    stop() {
      if (stopped) return;
      stopped = true;
      stream.removeAllListeners('data');
      stream.destroy();
      splitter.flush();
    },
  };
}

/**
 * Waits (bounded) for the pipes to close, then stops reading. A grandchild that left the
 * group (setsid, daemonize) can hold a pipe open forever; it must not hold the step too.
 */
async function settleOutputs(outputs: Output[], drainMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)));
  await Promise.race([Promise.all(outputs.map((o) => o.closed)), timeout]);
  clearTimeout(timer);
  for (const out of outputs) out.stop();
}
