/**
 * The watcher of one local step: a small Node process, started detached (a session of its
 * own), that starts the step's shell and outlives the server that launched it.
 *
 * Why a separate watcher and not `/bin/sh -c '<script>; echo $? > exit'`: the step can kill
 * its own shell (`kill -KILL $$`) or its whole group (`kill 0`), and a wrapper inside the
 * group dies with it and records nothing. The watcher is outside the step's process group and
 * session, runs as the server's user (so a step running as the build user can neither signal
 * it nor forge its files), ignores SIGTERM/SIGINT/SIGHUP, and ends only when its step ended:
 *
 *   1. reads the launch spec (script, cwd, env with secrets, uid/gid) from stdin, so that no
 *      secret is ever on disk or in a command line, and the step's env (NODE_OPTIONS…) never
 *      reaches the watcher itself;
 *   2. starts `/bin/sh -e <script>` detached (its own session and process group, as the build
 *      user when one is set) with stdout and stderr on files of the step directory, never
 *      pipes: a pipe breaks when the server dies, and the step would get SIGPIPE;
 *   3. writes `record.json` (pids and their start times, field 22 of /proc/<pid>/stat) and
 *      prints `ready` on stdout (a write that may fail once the server died: ignored);
 *   4. when the shell exits: SIGKILLs the rest of its group (background children die with the
 *      shell, as in a container), then writes `exit` (JSON, through a rename, so a reader sees
 *      all of it or nothing) and ends.
 *
 * It costs one Node process per running step (some tens of MB): the local executor runs few
 * steps at a time, and that buys a recorded exit code whatever the step does to itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** Runs in the watcher (`node -e`, CommonJS): argv[1] is the step directory. */
const WATCHER_SOURCE = String.raw`'use strict';
const fs = require('fs');
const cp = require('child_process');
const os = require('os');
const dir = process.argv[1];
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => {});
process.stdout.on('error', () => {});
function atomic(name, text) {
  fs.writeFileSync(dir + '/' + name + '.tmp', text, { mode: 0o600 });
  fs.renameSync(dir + '/' + name + '.tmp', dir + '/' + name);
}
let finished = false;
function finish(exit) {
  if (finished) return;
  finished = true;
  try { atomic('exit', JSON.stringify(exit)); } catch {}
  process.exitCode = 0;
  process.stdout.end();
}
function startTime(pid) {
  const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('error', () => {});
process.stdin.on('end', () => {
  let spec;
  try { spec = JSON.parse(input); } catch {
    return finish({ kind: 'error', code: 'internal', message: 'the step watcher got no launch spec: the server stopped while starting the step' });
  }
  let out, err, child;
  try {
    out = fs.openSync(dir + '/stdout', 'a', 0o600);
    err = fs.openSync(dir + '/stderr', 'a', 0o600);
    const options = { cwd: spec.cwd, env: spec.env, detached: true, stdio: ['ignore', out, err] };
    if (spec.uid !== undefined) { options.uid = spec.uid; options.gid = spec.gid; }
    child = cp.spawn('/bin/sh', ['-e', spec.script], options);
  } catch (e) {
    return finish({ kind: 'error', code: 'internal', message: 'could not start the step: ' + e.message });
  } finally {
    if (out !== undefined) fs.closeSync(out);
    if (err !== undefined) fs.closeSync(err);
  }
  let started = false;
  child.once('spawn', () => { started = true; });
  child.on('error', (e) => {
    if (started) return;
    finish({ kind: 'error', code: 'workspace', message: 'could not start /bin/sh in ' + spec.cwd + ': ' + e.message });
  });
  child.once('exit', (code, signal) => {
    try { process.kill(-child.pid, 'SIGKILL'); } catch {}
    finish({ kind: 'exited', exitCode: code !== null ? code : 128 + (os.constants.signals[signal] || 0) });
  });
  if (child.pid === undefined) return;
  try {
    atomic('record.json', JSON.stringify(Object.assign({}, spec.record, {
      startedAt: Date.now(), pid: child.pid, pgid: child.pid, startTime: startTime(child.pid),
      watcher: { pid: process.pid, startTime: startTime(process.pid) },
    })));
  } catch (e) {
    try { process.kill(-child.pid, 'SIGKILL'); } catch {}
    return;
  }
  process.stdout.write('ready\n');
});
`;

/** What the watcher needs to start a step; sent on its stdin, never written to disk. */
export interface LaunchSpec {
  script: string;
  cwd: string;
  env: Record<string, string>;
  uid?: number;
  gid?: number;
  /** Copied into `record.json`, with the pids and start times the watcher adds. */
  record: { buildId: string; key: string; attempt: number };
}

export interface Launch {
  /**
   * Resolves once the watcher said `ready` or ended. Then `record.json` on disk says whether
   * the step started; what the pipe said does not (a watcher whose step ended at once may be
   * seen ending before its `ready` is read, and its write may fail).
   */
  settled: Promise<void>;
  /** Resolves when the watcher process ended (its step ended and `exit` is written). */
  ended: Promise<void>;
}

/**
 * Starts the watcher of a step whose directory `dir` exists and is empty. Neither the watcher
 * nor its stdout pipe keeps this process alive: a server may exit with its steps running.
 */
export function launchWatcher(dir: string, spec: LaunchSpec): Launch {
  const child: ChildProcess = spawn(process.execPath, ['-e', WATCHER_SOURCE, dir], {
    detached: true,
    stdio: ['pipe', 'pipe', 'ignore'],
    // Nothing of the server's environment (NODE_OPTIONS, credentials) reaches the watcher.
    env: {},
  });
  // 'close', not 'exit': Node may emit 'exit' before the data still in the stdout pipe.
  const ended = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', () => resolve());
  });
  const settled = new Promise<void>((resolve) => {
    let text = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('ready\n')) resolve();
    });
    child.stdout?.once('close', () => resolve());
    child.stdout?.once('error', () => resolve());
    void ended.then(() => resolve());
  });
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(JSON.stringify(spec));
  child.unref();
  const unrefPipe = (stream: unknown): void => {
    (stream as { unref?: () => void } | null)?.unref?.();
  };
  void settled.then(() => unrefPipe(child.stdout));
  return { settled, ended };
}
