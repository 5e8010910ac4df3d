/**
 * The on-disk life of one local step, under its build root:
 *
 *   steps/                          0700, the server's: the build user cannot read or write it
 *     <key>-<attempt>-<hash>/       one directory per step attempt (`StepRef.id` = its record)
 *       launch                      created exclusively by the watcher that starts the step
 *       record.json                 written by the watcher once the shell runs (see below)
 *       stdout, stderr              the step's output, appended by the step itself
 *       exit                        JSON StepExit, written by the watcher when the shell ended
 *
 * A later process trusts a record only for the step it names (build id, key, attempt) and a
 * process only while its pid still has the start time the record holds: a pid the kernel gave
 * to another process since is never signalled nor waited for.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { STEP_ERROR_CODES, type StepErrorCode } from '../../contract/reasons.js';
import type { StepExit } from '../types.js';

export const STEPS_DIR = 'steps';
export const RECORD_FILE = 'record.json';
export const EXIT_FILE = 'exit';
export const LAUNCH_FILE = 'launch';
/** The files a step directory holds once its step ended. */
export const STEP_FILES: readonly string[] = [LAUNCH_FILE, RECORD_FILE, 'stdout', 'stderr', EXIT_FILE];

/** What the watcher records about a running step. */
export interface StepRecord {
  buildId: string;
  key: string;
  attempt: number;
  /** Epoch ms when the shell was started. */
  startedAt: number;
  /** The step's shell, leader of its own process group (`pgid` = `pid`). */
  pid: number;
  pgid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks since boot): tells a recycled pid apart. */
  startTime: string;
  watcher: { pid: number; startTime: string };
}

/** Directory name of a step attempt: readable, unique per (key, attempt), never contains `/`. */
export function stepDirName(key: string, attempt: number): string {
  const safe = key.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  const hash = createHash('sha256').update(`${key}\0${attempt}`).digest('hex').slice(0, 10);
  return `${safe}-${attempt}-${hash}`;
}

export async function readRecord(dir: string): Promise<StepRecord | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(join(dir, RECORD_FILE), 'utf8'));
    return isStepRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The recorded exit, if the step ended; a file that is not a valid exit is an `internal` error. */
export async function readExit(dir: string): Promise<StepExit | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, EXIT_FILE), 'utf8');
  } catch {
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  return parseExit(value, text);
}

/**
 * A recorded exit (the `exit` file's JSON, or the watcher's `{done, exit}` message); anything
 * else is an `internal` error that quotes it.
 */
export function parseExit(value: unknown, text: string = JSON.stringify(value) ?? ''): StepExit {
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>;
    if (v.kind === 'exited' && Number.isInteger(v.exitCode))
      return { kind: 'exited', exitCode: v.exitCode as number };
    if (v.kind === 'error' && typeof v.message === 'string' && isStepErrorCode(v.code)) {
      return { kind: 'error', code: v.code, message: v.message };
    }
  }
  return {
    kind: 'error',
    code: 'internal',
    message: `the recorded exit of the step is unreadable: ${text.slice(0, 200)}`,
  };
}

/**
 * Whether `pid` is a live process (not a zombie) that started at `startTime`: the same process
 * the record names, not a later one that got its pid.
 */
export async function isSameProcess(pid: number, startTime: string): Promise<boolean> {
  const stat = await procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.startTime === startTime;
}

/** Whether the step's watcher or its shell still runs: someone will yet record an exit, or could. */
export async function stepAlive(record: StepRecord): Promise<{ watcher: boolean; shell: boolean }> {
  const [watcher, shell] = await Promise.all([
    isSameProcess(record.watcher.pid, record.watcher.startTime),
    isSameProcess(record.pid, record.startTime),
  ]);
  return { watcher, shell };
}

/**
 * Whether the watcher that took `dir` (its `launch` file) still runs: one that has not written
 * the record or exit yet will. No `launch` file: no watcher got the step's request (its
 * server died first); a dead one: the watcher died while starting the step.
 */
export async function launcherAlive(dir: string): Promise<boolean> {
  try {
    const v = JSON.parse(await readFile(join(dir, LAUNCH_FILE), 'utf8')) as Record<string, unknown>;
    return (
      Number.isInteger(v.pid) &&
      typeof v.startTime === 'string' &&
      (await isSameProcess(v.pid as number, v.startTime))
    );
  } catch {
    return false;
  }
}

async function procStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces and parentheses) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const startTime = fields[19];
    return state === undefined || startTime === undefined ? undefined : { state, startTime };
  } catch {
    return undefined;
  }
}

export function isStepRecord(value: unknown): value is StepRecord {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  const w = v.watcher as Record<string, unknown> | undefined;
  return (
    typeof v.buildId === 'string' &&
    typeof v.key === 'string' &&
    Number.isInteger(v.attempt) &&
    typeof v.startedAt === 'number' &&
    Number.isInteger(v.pid) &&
    Number.isInteger(v.pgid) &&
    typeof v.startTime === 'string' &&
    typeof w === 'object' &&
    w !== null &&
    Number.isInteger(w.pid) &&
    typeof w.startTime === 'string'
  );
}

function isStepErrorCode(value: unknown): value is StepErrorCode {
  return (STEP_ERROR_CODES as readonly unknown[]).includes(value);
}
