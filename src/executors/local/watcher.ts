/**
 * The watcher of the local executor's steps: one small Node process per executor, started
 * detached (a session of its own), that starts every step's shell and outlives the server that
 * launched it.
 *
 * Why a separate watcher and not `/bin/sh -c '<script>; echo $? > exit'`: the step can kill
 * its own shell (`kill -KILL $$`) or its whole group (`kill 0`), and a wrapper inside the
 * group dies with it and records nothing. The watcher is outside every step's process group
 * and session, runs as the server's user (so a step running as the build user can neither
 * signal it nor forge its files), and ignores SIGTERM/SIGINT/SIGHUP.
 *
 * Why one for all steps and not one per step: a Node process costs some 50–100 ms of CPU to
 * start, many times what starting a shell costs; a long-lived one pays it once, and a step
 * then costs a line on a pipe and one fork of a small process.
 *
 * The server talks to it over its stdin and stdout, one JSON object a line, so that no secret
 * is ever on disk or in a command line, and the step's env (NODE_OPTIONS…) never reaches the
 * watcher itself. For each request `{id, dir, script, commands, cwd, env, uid, gid, record}` it:
 *
 *   1. creates the step directory (0700) unless it exists, and `<dir>/launch` in it exclusively
 *      (holding its own pid and start time): one launch per step attempt, whoever asks; a later
 *      process that finds `launch` but no record knows whether someone is still starting the
 *      step (step-files.ts, `launcherAlive`). The directory is made here, not by the server:
 *      one synchronous call instead of a round trip of the server's thread pool per step;
 *   2. writes the step's script (the build user's, 0600) and starts `/bin/sh -e <script>`
 *      detached (its own session and process group, as the build user when one is set) with
 *      stdout and stderr on files of the step directory, never pipes: a pipe breaks when the
 *      server dies, and the step would get SIGPIPE;
 *   3. writes `record.json` (pids and their start times, field 22 of /proc/<pid>/stat), then
 *      answers `{id, record}` (or `{id, exit}` when the step could not start, `{id, taken: true}`
 *      when another launch holds the directory). The record names the step's process group for
 *      a later process too (leftovers.ts): no pid file of its own;
 *   4. when the shell exits: SIGKILLs the rest of its group (background children die with the
 *      shell, as in a container), removes the script, writes `exit` (JSON, through a rename, so
 *      a reader sees all of it or nothing) and says `{done: dir, exit}`: the server that
 *      started the step wakes at once and needs no read of the file (a later one reads it).
 *
 * A request `{id, release: dir}` removes an ended step's directory (its known files, then the
 * directory) and answers `{id, released}`, false when the directory held something else: the
 * server's release of a step then costs it one line each way instead of six file calls.
 *
 * It ends once the server closed its stdin (it died, or has no build left) and no step of it
 * runs: a server that dies leaves its steps watched until they end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { listenToHelper, requestLoopSource, unrefStream } from '../helper-requests.js';
import type { StepExit } from '../types.js';
import { STEP_FILES, isStepRecord, parseExit, type StepRecord } from './step-files.js';

/** Runs in the watcher (`node -e`, CommonJS). */
const WATCHER_SOURCE = String.raw`'use strict';
const fs = require('fs');
const cp = require('child_process');
const os = require('os');
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => {});
process.stdout.on('error', () => {});
const statBuffer = Buffer.alloc(4096);
function startTime(pid) {
  // One read: the line is well under 4 KiB (the command name is at most 15 bytes).
  const fd = fs.openSync('/proc/' + pid + '/stat', 'r');
  let stat;
  try { stat = statBuffer.toString('latin1', 0, fs.readSync(fd, statBuffer, 0, statBuffer.length, 0)); } finally { fs.closeSync(fd); }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}
const self = JSON.stringify({ pid: process.pid, startTime: startTime(process.pid) });
const me = JSON.parse(self);
function say(message) {
  try { process.stdout.write(JSON.stringify(message) + '\n'); } catch {}
}
function atomic(dir, name, text) {
  fs.writeFileSync(dir + '/' + name + '.tmp', text, { mode: 0o600 });
  fs.renameSync(dir + '/' + name + '.tmp', dir + '/' + name);
}
function launch(req) {
  const dir = req.dir;
  const step = { recorded: false, finished: false };
  function finish(exit, cleanup) {
    if (step.finished) return;
    step.finished = true;
    if (cleanup) {
      try { fs.rmSync(req.script, { force: true }); } catch {}
    }
    let written = false;
    try { atomic(dir, 'exit', JSON.stringify(exit)); written = true; } catch {}
    // Only an exit that is on disk is told: the server trusts the message as it would the file.
    say(step.recorded ? (written ? { done: dir, exit } : { done: dir }) : { id: req.id, exit: true });
  }
  try {
    makeDir(dir);
    const lock = fs.openSync(dir + '/launch', 'wx', 0o600);
    try { fs.writeSync(lock, self); } finally { fs.closeSync(lock); }
  } catch (e) {
    return say(e.code === 'EEXIST' ? { id: req.id, taken: true } : { id: req.id, gone: true });
  }
  try {
    fs.writeFileSync(req.script, req.commands, { mode: 0o600 });
    if (req.uid !== undefined) fs.chownSync(req.script, req.uid, req.gid);
  } catch (e) {
    return finish({ kind: 'error', code: 'internal', message: 'could not write the step script: ' + e.message }, true);
  }
  let out, err, child;
  try {
    out = fs.openSync(dir + '/stdout', 'a', 0o600);
    err = fs.openSync(dir + '/stderr', 'a', 0o600);
    const options = { cwd: req.cwd, env: req.env, detached: true, stdio: ['ignore', out, err] };
    if (req.uid !== undefined) { options.uid = req.uid; options.gid = req.gid; }
    child = cp.spawn('/bin/sh', ['-e', req.script], options);
  } catch (e) {
    return finish({ kind: 'error', code: 'internal', message: 'could not start the step: ' + e.message }, true);
  } finally {
    if (out !== undefined) fs.closeSync(out);
    if (err !== undefined) fs.closeSync(err);
  }
  let started = false;
  child.once('spawn', () => { started = true; });
  child.on('error', (e) => {
    if (started) return;
    finish({ kind: 'error', code: 'workspace', message: 'could not start /bin/sh in ' + req.cwd + ': ' + e.message }, true);
  });
  child.once('exit', (code, signal) => {
    try { process.kill(-child.pid, 'SIGKILL'); } catch {}
    finish({ kind: 'exited', exitCode: code !== null ? code : 128 + (os.constants.signals[signal] || 0) }, true);
  });
  if (child.pid === undefined) return;
  const record = Object.assign({}, req.record, {
    startedAt: Date.now(), pid: child.pid, pgid: child.pid, startTime: startTime(child.pid), watcher: me,
  });
  try {
    atomic(dir, 'record.json', JSON.stringify(record));
  } catch (e) {
    // Unrecorded, the step could never be found again: it must not run.
    try { process.kill(-child.pid, 'SIGKILL'); } catch {}
    return;
  }
  step.recorded = true;
  say({ id: req.id, record });
}
function makeDir(dir) {
  try { fs.mkdirSync(dir, 0o700); return; } catch (e) { if (e.code === 'EEXIST') return; if (e.code !== 'ENOENT') throw e; }
  // A build root without its steps directory: made, never the root itself (gone: torn down).
  try { fs.mkdirSync(dir.slice(0, dir.lastIndexOf('/')), 0o700); } catch (e) { if (e.code !== 'EEXIST') throw e; }
  try { fs.mkdirSync(dir, 0o700); } catch (e) { if (e.code !== 'EEXIST') throw e; }
}
function release(req) {
  const dir = req.release;
  for (const name of ${JSON.stringify(STEP_FILES)}) {
    try { fs.unlinkSync(dir + '/' + name); } catch {}
  }
  let released = true;
  try { fs.rmdirSync(dir); } catch (e) { released = e.code === 'ENOENT'; }
  say({ id: req.id, released });
}
${requestLoopSource(
  'try { if (typeof req.release === "string") release(req); else launch(req); } catch (e) { say({ id: req.id, gone: true }); }',
)}
`;

/** What the watcher needs to start a step; sent on its stdin, never written to disk by the server. */
export interface LaunchRequest {
  /** The step directory, under the build root's steps directory: made by the watcher if missing. */
  dir: string;
  /** Where the watcher writes `commands` (the build user's when uid is set); removed when the step ends. */
  script: string;
  commands: string;
  cwd: string;
  env: Record<string, string>;
  uid?: number;
  gid?: number;
  /** Copied into `record.json`, with the pids and start times the watcher adds. */
  record: { buildId: string; key: string; attempt: number };
}

/** How the watcher answered a launch. */
export type LaunchAnswer =
  /** The step runs; this is its `record.json`. */
  | { kind: 'started'; record: StepRecord }
  /** It did not start: its `exit` file says why. */
  | { kind: 'failed' }
  /** Another launch of this attempt holds the directory (`launch` exists). */
  | { kind: 'taken' }
  /** No answer: the directory vanished, or the watcher ended first. What is on disk tells. */
  | { kind: 'unknown' };

type Reply = {
  id?: unknown;
  done?: unknown;
  record?: unknown;
  exit?: unknown;
  taken?: unknown;
  released?: unknown;
};

/**
 * How a step this process started ended, as its watcher told: the exit it wrote to the step's
 * `exit` file, or undefined when the watcher ended without telling one (then the files tell).
 */
export type StepEnd = StepExit | undefined;

/** One watcher process and what this process waits for from it. */
class WatcherProcess {
  private readonly child: ChildProcess;
  /** Requests sent, by id: resolved with the watcher's reply, or undefined when it ended first. */
  private readonly answers = new Map<number, (reply: Reply | undefined) => void>();
  private readonly ends = new Map<string, (end: StepEnd) => void>();
  private seq = 0;
  closed = false;
  /** True once this process stopped sending to it (it ends when its steps did). */
  retired = false;

  constructor() {
    this.child = spawn(process.execPath, ['-e', WATCHER_SOURCE], {
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
      // Nothing of the server's environment (NODE_OPTIONS, credentials) reaches the watcher,
      // and it holds no build directory as its working directory.
      env: {},
      cwd: '/',
    });
    listenToHelper(this.child, { hear: (line) => this.hear(line), end: () => this.end() });
  }

  /** Sends one launch; resolves with the watcher's answer. Never rejects. */
  async launch(request: LaunchRequest): Promise<LaunchAnswer> {
    const reply = await this.request(request);
    if (reply === undefined) return { kind: 'unknown' };
    if (reply.record !== undefined) {
      return isStepRecord(reply.record) ? { kind: 'started', record: reply.record } : { kind: 'unknown' };
    }
    if (reply.exit !== undefined) return { kind: 'failed' };
    if (reply.taken === true) return { kind: 'taken' };
    return { kind: 'unknown' };
  }

  /** Removes an ended step's directory; false when it was not (then the caller removes it). */
  async release(dir: string): Promise<boolean> {
    return (await this.request({ release: dir }))?.released === true;
  }

  /** Sends one request; resolves with its reply, undefined when the watcher ended first. */
  private request(message: object): Promise<Reply | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    const id = ++this.seq;
    const reply = new Promise<Reply | undefined>((resolve) => this.answers.set(id, resolve));
    // While an answer is due, the pipe keeps this process alive; idle, it does not.
    ref(this.child.stdout);
    this.child.stdin?.write(JSON.stringify({ id, ...message }) + '\n');
    return reply;
  }

  /** Resolves when the step in `dir` ended (with the exit it wrote) or the watcher did (undefined). */
  ended(dir: string): Promise<StepEnd> {
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const before = this.ends.get(dir);
      this.ends.set(dir, (end) => {
        before?.(end);
        resolve(end);
      });
    });
  }

  /** Sends no more: the watcher ends once its steps did. */
  retire(): void {
    this.retired = true;
    this.child.stdin?.end();
  }

  private hear(line: string): void {
    let reply: Reply;
    try {
      reply = JSON.parse(line) as Reply;
    } catch {
      return;
    }
    if (typeof reply.done === 'string') {
      this.ends.get(reply.done)?.(reply.exit === undefined ? undefined : parseExit(reply.exit));
      this.ends.delete(reply.done);
      return;
    }
    if (typeof reply.id !== 'number') return;
    const resolve = this.answers.get(reply.id);
    if (!resolve) return;
    this.answers.delete(reply.id);
    if (this.answers.size === 0) unrefStream(this.child.stdout);
    resolve(reply);
  }

  private end(): void {
    if (this.closed) return;
    this.closed = true;
    for (const resolve of this.answers.values()) resolve(undefined);
    this.answers.clear();
    for (const wake of this.ends.values()) wake(undefined);
    this.ends.clear();
    unrefStream(this.child.stdout);
  }
}

/**
 * The watcher of one executor: started on first use, retired `idleMs` after the executor said
 * it has no build left (a stream of builds keeps one watcher), started again when needed.
 * Neither the watcher nor its pipes keep this process alive: a server may exit with its steps
 * running.
 */
export class StepWatcher {
  private current: WatcherProcess | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly idleMs: number) {}

  /** Starts the watcher now, so that the first step does not wait for it to boot. */
  warm(): void {
    this.busy();
    this.process();
  }

  /**
   * Starts a step; `ended` resolves with its exit when it ended, or undefined when the watcher
   * ended first (then what is on disk tells how it ended).
   */
  async launch(request: LaunchRequest): Promise<{ answer: LaunchAnswer; ended: Promise<StepEnd> }> {
    this.busy();
    const watcher = this.process();
    const ended = watcher.ended(request.dir);
    const answer = await watcher.launch(request);
    return { answer, ended };
  }

  /**
   * Removes the directory of a step this watcher told the end of; false when it could not (no
   * watcher runs any more, or the directory held more than a step's files): then the caller
   * removes it.
   */
  async release(dir: string): Promise<boolean> {
    const watcher = this.current;
    if (!watcher || watcher.closed || watcher.retired) return false;
    return watcher.release(dir);
  }

  /** The executor has builds: keep the watcher. */
  busy(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** The executor has no build left: retire the watcher unless one comes within `idleMs`. */
  idle(): void {
    clearTimeout(this.idleTimer);
    const retire = (): void => {
      this.idleTimer = undefined;
      this.current?.retire();
      this.current = undefined;
    };
    if (this.idleMs <= 0) return retire();
    this.idleTimer = setTimeout(retire, this.idleMs);
    this.idleTimer.unref();
  }

  private process(): WatcherProcess {
    if (!this.current || this.current.closed || this.current.retired) this.current = new WatcherProcess();
    return this.current;
  }
}

function ref(stream: unknown): void {
  (stream as { ref?: () => void } | null)?.ref?.();
}
