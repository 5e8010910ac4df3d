import { mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Process groups a build started are recorded as files under `<root>/pids/`, so that after
 * the Slipway process died (steps run detached and outlive it) a new one can still find and
 * stop them. Linux only: ownership is checked through /proc.
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
 * Process groups of a build root that still run: the recorded ones, plus any group whose
 * shell runs one of the build's scripts (a crash can come between spawn and record).
 */
export async function liveGroups(root: string): Promise<number[]> {
  let names: string[] = [];
  try {
    names = await readdir(join(root, 'pids'));
  } catch {
    // None recorded.
  }
  const recorded = new Set(names.map(Number).filter((n) => Number.isInteger(n) && n > 1));
  const members = await processesByGroup();
  const live: number[] = [];
  for (const [pgid, pids] of members) {
    if (pgid <= 1 || pgid === process.pid) continue;
    for (const pid of pids) {
      // A pid can be reused: only a group with a member that still runs our script or works
      // in the build's directories is one we started.
      if ((recorded.has(pgid) && (await belongsTo(pid, root))) || (await runsScriptOf(pid, root))) {
        live.push(pgid);
        break;
      }
    }
  }
  return live;
}

/** SIGKILLs the recorded groups of a build root that still run. */
export async function killLeftoverGroups(root: string): Promise<number[]> {
  const groups = await liveGroups(root);
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Gone in the meantime.
    }
  }
  return groups;
}

async function processesByGroup(): Promise<Map<number, number[]>> {
  const out = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return out;
  }
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        try {
          const stat = await readFile(`/proc/${e}/stat`, 'utf8');
          // Fields after the command name (which may contain spaces) start after the last ')'.
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          const pgrp = Number(fields[2]);
          out.set(pgrp, [...(out.get(pgrp) ?? []), Number(e)]);
        } catch {
          // Exited while we looked.
        }
      }),
  );
  return out;
}

async function runsScriptOf(pid: number, root: string): Promise<boolean> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).includes(`${root}/scripts/`);
  } catch {
    return false;
  }
}

async function belongsTo(pid: number, root: string): Promise<boolean> {
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
    if (cmdline.includes(root)) return true;
    const cwd = await readlink(`/proc/${pid}/cwd`);
    return cwd === root || cwd.startsWith(`${root}/`);
  } catch {
    return false;
  }
}
