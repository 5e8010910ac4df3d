import { closeSync, openSync, readSync } from 'node:fs';
import { mkdir, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { STEPS_DIR, readRecord } from './step-files.js';

/**
 * Process groups a build started are recorded, so that after the Slipway process died (steps
 * run detached and outlive it) a new one can still find and stop them: a step's in its
 * `record.json` (step-files.ts), a service's as a file under `<root>/pids/`. Linux only:
 * ownership is checked through /proc.
 */
export const PIDS_DIR = 'pids';

export async function recordGroup(root: string, pgid: number | undefined): Promise<void> {
  if (pgid === undefined) return;
  await mkdir(join(root, 'pids'), { recursive: true });
  await writeFile(join(root, 'pids', String(pgid)), '');
}

export async function forgetGroup(root: string, pgid: number | undefined): Promise<void> {
  if (pgid === undefined) return;
  await rm(join(root, 'pids', String(pgid)), { force: true });
}

/**
 * Process groups of a build root that still run: the recorded ones (a pid file of a service or
 * of a step an older watcher started, a step's `record.json`), plus any group with a process
 * that runs one of the build's scripts (a crash can come between spawn and record; a step's
 * `setsid` child leaves its group but may still run its script).
 *
 * Kept cheap, as every build's teardown runs it: a recorded group is looked for only when
 * `kill(-pgid, 0)` finds one; the one pass over /proc reads each process's cmdline (its stat
 * only when it matters) with plain synchronous open/read/close (procfs answers from memory),
 * not an async readFile's four thread-pool round trips, which cost the server's main thread
 * ~7x the CPU; in slices, yielding between them, so that a build that forks thousands of
 * processes cannot stall the event loop with it.
 */
export async function liveGroups(root: string, since?: PidMark): Promise<number[]> {
  const recorded = [...(await recordedGroups(root))].filter(groupExists);
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  // Read after the listing: every process it holds got its pid before this mark.
  const born = recorded.length === 0 && since !== undefined ? bornSince(since, pidMark()) : undefined;
  const script = Buffer.from(`${root}/scripts/`);
  const live = new Set<number>();
  let seen = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (born !== undefined && !born(pid)) continue;
    if (++seen % SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
    const cmdline = readProc(pid, 'cmdline');
    if (cmdline === undefined) continue;
    const runsScript = cmdline.includes(script);
    if (!runsScript && recorded.length === 0) continue;
    const pgid = groupOf(pid);
    if (pgid === undefined || pgid <= 1 || pgid === process.pid || live.has(pgid)) continue;
    // A pid can be reused: only a group with a member that still runs our script or works in
    // the build's directories is one we started.
    if (runsScript || (recorded.includes(pgid) && (await belongsTo(pid, root, cmdline)))) live.add(pgid);
  }
  return [...live];
}

/**
 * Where the kernel's pid counter stood: the last pid it gave out (in this pid namespace), the
 * processes and threads forked since boot (all namespaces: never fewer than this one's), and the
 * largest pid. Taken when a build is prepared, it bounds which processes can be the build's.
 */
export interface PidMark {
  last: number;
  forks: number;
  max: number;
}

/** The pid counter now; undefined where /proc does not tell (then every process is looked at). */
export function pidMark(): PidMark | undefined {
  const number = (file: string, pattern: RegExp): number => {
    const text = readProc(0, file)?.toString('latin1') ?? '';
    return Number(pattern.exec(text)?.[1]);
  };
  const mark = {
    last: number('sys/kernel/ns_last_pid', /(\d+)/),
    forks: number('stat', /^processes (\d+)$/m),
    max: number('sys/kernel/pid_max', /(\d+)/),
  };
  return Number.isSafeInteger(mark.last) && Number.isSafeInteger(mark.forks) && Number.isSafeInteger(mark.max)
    ? mark
    : undefined;
}

/**
 * Whether a pid was given out between two marks. Pids are handed out in a cycle (the next free
 * one above the last, wrapping at the largest), so while fewer processes were forked than the
 * cycle holds, everything born since `from` has a pid in (from.last, to.last], wrapped. Else
 * (or without marks) undefined: any pid may be new.
 */
function bornSince(from: PidMark, to: PidMark | undefined): ((pid: number) => boolean) | undefined {
  if (to === undefined || to.max !== from.max || to.forks - from.forks >= from.max - WRAP_MARGIN)
    return undefined;
  // Too few forks to go round the whole cycle: a counter at or above where it was did not wrap.
  return to.last >= from.last
    ? (pid) => pid > from.last && pid <= to.last
    : (pid) => pid > from.last || pid <= to.last;
}

/** More than the pids the kernel never hands out on wrapping (300), with room to spare. */
const WRAP_MARGIN = 1024;

/**
 * SIGKILLs the groups of a build root that still run (see {@link liveGroups}). `since`, the pid
 * counter when this process prepared the build, spares it reading the processes that were there
 * before: what the build started, or what started its scripts, was born after that. (A process
 * older than the build that later execs one of the build's script paths is the one thing this
 * does not look at; a build that only resumed passes none, and every process is read.)
 */
export async function killLeftoverGroups(root: string, since?: PidMark): Promise<number[]> {
  const groups = await liveGroups(root, since);
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Gone in the meantime.
    }
  }
  return groups;
}

/** Processes read from /proc between two turns of the event loop. */
const SLICE = 256;

/** Groups recorded under a build root: pid files (services, older steps) and step records. */
async function recordedGroups(root: string): Promise<Set<number>> {
  const groups = new Set<number>();
  const [pidFiles, steps] = await Promise.all([
    readdir(join(root, PIDS_DIR)).catch(() => [] as string[]),
    readdir(join(root, STEPS_DIR)).catch(() => [] as string[]),
  ]);
  for (const name of pidFiles) groups.add(Number(name));
  const records = await Promise.all(steps.map((name) => readRecord(join(root, STEPS_DIR, name))));
  for (const record of records) if (record) groups.add(record.pgid);
  return new Set([...groups].filter((g) => Number.isInteger(g) && g > 1));
}

/** Whether a process group exists (EPERM: it does, someone else's). */
function groupExists(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code === 'EPERM';
  }
}

const chunk = Buffer.allocUnsafe(16 * 1024);

/**
 * `/proc/<pid>/<file>` (pid 0: `/proc/<file>`), read synchronously (procfs answers from
 * memory); undefined if gone.
 */
function readProc(pid: number, file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(pid === 0 ? `/proc/${file}` : `/proc/${pid}/${file}`, 'r');
  } catch {
    return undefined;
  }
  try {
    const parts: Buffer[] = [];
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      parts.push(Buffer.from(chunk.subarray(0, n)));
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function groupOf(pid: number): number | undefined {
  const stat = readProc(pid, 'stat')?.toString('latin1');
  if (stat === undefined) return undefined;
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  return Number.isInteger(pgrp) ? pgrp : undefined;
}

async function belongsTo(pid: number, root: string, cmdline: Buffer): Promise<boolean> {
  if (cmdline.includes(root)) return true;
  try {
    const cwd = await readlink(`/proc/${pid}/cwd`);
    return cwd === root || cwd.startsWith(`${root}/`);
  } catch {
    return false;
  }
}
