/**
 * Which files of a source directory seed a build's workspace, and copying them cheaply. Shared
 * by every executor so that the same directory gives the same workspace everywhere: the local
 * executor copies the list, the docker executor streams it as a tar.
 *
 * `slipway run` seeds with what git would commit (tracked files plus untracked files that are
 * not ignored), so a checkout's `node_modules`, build output and `.git` are not copied on every
 * run; the server seeds with the whole fresh clone, `.git` included.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { copyFile, chmod, lstat, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/** How a source directory seeds the workspace. */
export interface SourceSeed {
  /**
   * `git`: what git would commit — tracked files (those deleted in the work tree skipped) and
   * untracked files that are not ignored — when the directory is in a git work tree (or a
   * subdirectory of one), else everything. `all`: every file, ignored ones too.
   */
  select: 'git' | 'all';
  /** Also the directory's own `.git` (the history), copied like any other file. */
  withGit: boolean;
  /**
   * The caller gives the directory up once `prepare` returns (the server's fresh clone): an
   * executor whose workspace is on the same file system may move it there instead of copying.
   */
  movable?: boolean;
}

/** What `BuildSpec.sourceDir` meant before seeds had options, and what the server wants. */
export const WHOLE_DIRECTORY: SourceSeed = { select: 'all', withGit: true };

export interface SeedEntry {
  /** Relative to the source directory, `/`-separated; parents come before their children. */
  path: string;
  kind: 'dir' | 'file' | 'symlink';
  /** Permission bits (no set-id bits). */
  mode: number;
  /** Of files: kept, as make and friends compare them. */
  mtimeMs?: number;
}

export interface SeedList {
  entries: SeedEntry[];
  /** `git` when git chose the files; `all` when everything was taken. */
  selected: 'git' | 'all';
  /** Why everything was taken although `git` was asked for (not a work tree, no git). */
  note?: string;
}

/** A seed that cannot be read or written; the message names the path. */
export class SeedError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SeedError';
  }
}

const COPY_CONCURRENCY = 16;

/**
 * Lists what seeds the workspace from `dir`. Symlinks are entries of their own and never
 * followed, neither as entries nor as parent directories of other entries: a tracked path
 * below a directory that is now a symlink is left out, so nothing outside `dir` is read.
 * Sockets, FIFOs and devices are left out.
 */
export async function listSeed(dir: string, seed: SourceSeed, signal?: AbortSignal): Promise<SeedList> {
  const root = await lstatOrUndefined(dir);
  if (!root) throw new SeedError(`${dir} does not exist`);
  if (!root.isDirectory()) throw new SeedError(`${dir} is not a directory`);
  if (seed.select === 'git') {
    const listed = await gitListing(dir, signal);
    if ('paths' in listed) {
      const entries = await entriesOf(dir, listed.paths, seed.withGit, signal);
      if (seed.withGit && (await lstatOrUndefined(join(dir, '.git')))?.isDirectory()) {
        entries.push(...(await walk(dir, '.git', true, signal)));
      }
      return { entries, selected: 'git' };
    }
    return { entries: await walk(dir, '', seed.withGit, signal), selected: 'all', note: listed.note };
  }
  return { entries: await walk(dir, '', seed.withGit, signal), selected: 'all' };
}

/**
 * Copies the entries from `from` into the existing directory `to`: files copy-on-write where
 * the file system can (`COPYFILE_FICLONE`, else a plain in-kernel copy), with their mode and
 * times; symlinks as symlinks. Files that vanished since the listing are skipped.
 */
export async function copySeed(
  from: string,
  to: string,
  entries: readonly SeedEntry[],
  signal?: AbortSignal,
): Promise<void> {
  const dirs = entries.filter((e) => e.kind === 'dir');
  // Parents first: one level at a time, each level in parallel.
  const byDepth = new Map<number, SeedEntry[]>();
  for (const d of dirs) {
    const depth = d.path.split('/').length;
    byDepth.set(depth, [...(byDepth.get(depth) ?? []), d]);
  }
  for (const depth of [...byDepth.keys()].sort((a, b) => a - b)) {
    await pool(byDepth.get(depth)!, signal, async (d) => {
      await mkdir(join(to, d.path), { recursive: true, mode: 0o700 });
    });
  }
  await pool(
    entries.filter((e) => e.kind !== 'dir'),
    signal,
    async (entry) => {
      const source = join(from, entry.path);
      const target = join(to, entry.path);
      try {
        if (entry.kind === 'symlink') {
          await symlink(await readlink(source), target);
          return;
        }
        await copyFile(source, target, constants.COPYFILE_FICLONE);
        await chmod(target, entry.mode);
        if (entry.mtimeMs !== undefined) await utimes(target, entry.mtimeMs / 1000, entry.mtimeMs / 1000);
      } catch (error) {
        if (codeOf(error) === 'ENOENT' && !(await lstatOrUndefined(source))) return;
        throw new SeedError(`cannot copy ${entry.path}: ${messageOf(error)}`, { cause: error });
      }
    },
  );
  // Directory modes last, so that a read-only directory can still be filled.
  await pool(dirs, signal, (d) => chmod(join(to, d.path), d.mode | 0o700));
}

/**
 * Why `listSeed` would take every file of `dir` although `git` selection is asked for (not in
 * a git work tree, no git), or undefined when git will choose. For telling the user up front.
 */
export async function whyNotGit(dir: string, signal?: AbortSignal): Promise<string | undefined> {
  const inside = await workTreeCheck(dir, signal);
  return 'note' in inside ? inside.note : undefined;
}

/** Writes the entries as NUL-separated `./path` names, the `tar --null -T -` file list. */
export function tarFileList(entries: readonly SeedEntry[]): Buffer {
  // `./` first: a name starting with `-` must never be read by tar as an option.
  return Buffer.from(entries.map((e) => `./${e.path}\0`).join(''));
}

async function gitListing(
  dir: string,
  signal?: AbortSignal,
): Promise<{ paths: string[] } | { note: string }> {
  const inside = await workTreeCheck(dir, signal);
  if ('note' in inside) return inside;
  const listed = await git(dir, ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], signal);
  if ('missing' in listed || listed.code !== 0) {
    const why = 'missing' in listed ? 'git is missing' : listed.stderr.trim();
    throw new SeedError(`git ls-files failed in ${dir}: ${why}`);
  }
  const paths = listed.stdout
    .toString('utf8')
    .split('\0')
    .filter((p) => p !== '');
  return { paths: [...new Set(paths)] };
}

async function workTreeCheck(dir: string, signal?: AbortSignal): Promise<{ ok: true } | { note: string }> {
  const inside = await git(dir, ['rev-parse', '--is-inside-work-tree'], signal);
  if ('missing' in inside) return { note: 'git is not installed, so every file is copied' };
  if (inside.code !== 0 || inside.stdout.toString().trim() !== 'true') {
    // "not a git repository" is the plain case; anything else (say, a repository owned by
    // another user) the user should see, or they will wonder why everything was copied.
    const why = inside.stderr.trim().split('\n')[0] ?? '';
    const plain = inside.code === 0 || /not a git repository/i.test(why);
    return { note: `${plain ? 'not in a git work tree' : `git: ${why}`}, so every file is copied` };
  }
  return { ok: true };
}

/** Entries for git's paths: their parent directories, and each path that still exists. */
async function entriesOf(
  dir: string,
  paths: readonly string[],
  withGit: boolean,
  signal?: AbortSignal,
): Promise<SeedEntry[]> {
  const isRealDir = new Map<string, Promise<boolean>>();
  const realDir = (path: string): Promise<boolean> => {
    let known = isRealDir.get(path);
    if (!known) {
      known = lstatOrUndefined(join(dir, path)).then((s) => s?.isDirectory() === true);
      isRealDir.set(path, known);
    }
    return known;
  };
  const found: (SeedEntry[] | undefined)[] = new Array<SeedEntry[] | undefined>(paths.length);
  await pool(
    paths.map((path, index) => ({ path, index })),
    signal,
    async ({ path, index }) => {
      const parts = path.split('/');
      // Below a symlinked (or vanished) directory: not ours to read.
      for (let i = 1; i < parts.length; i++) if (!(await realDir(parts.slice(0, i).join('/')))) return;
      const stat = await lstatOrUndefined(join(dir, path));
      if (!stat) return; // tracked, but deleted in the work tree
      if (stat.isDirectory()) {
        // A submodule (or nested repository): its files, as they are, without its `.git`.
        found[index] = [
          { path, kind: 'dir', mode: stat.mode & 0o777 },
          ...(await walk(dir, path, withGit, signal)),
        ];
      } else {
        const kind = kindOf(stat);
        if (kind) found[index] = [entryOf(path, kind, stat)];
      }
    },
  );
  const entries: SeedEntry[] = [];
  const dirsSeen = new Set<string>();
  for (const group of found) {
    if (!group) continue;
    const parts = group[0]!.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (dirsSeen.has(parent)) continue;
      dirsSeen.add(parent);
      const stat = await lstatOrUndefined(join(dir, parent));
      entries.push({ path: parent, kind: 'dir', mode: (stat?.mode ?? 0o755) & 0o777 });
    }
    for (const entry of group) {
      if (entry.kind === 'dir') {
        if (dirsSeen.has(entry.path)) continue;
        dirsSeen.add(entry.path);
      }
      entries.push(entry);
    }
  }
  return entries;
}

/**
 * Everything below `dir/sub` (or `sub` itself when it is given), depth first, parents before
 * children; `.git` directories below the top are kept only `withGit`.
 */
async function walk(dir: string, sub: string, withGit: boolean, signal?: AbortSignal): Promise<SeedEntry[]> {
  const out: SeedEntry[] = [];
  if (sub !== '') {
    const stat = await lstatOrUndefined(join(dir, sub));
    if (!stat?.isDirectory()) return out;
    if (sub === '.git') out.push({ path: sub, kind: 'dir', mode: stat.mode & 0o777 });
  }
  const visit = async (rel: string): Promise<void> => {
    signal?.throwIfAborted();
    let names: string[];
    try {
      names = (await readdir(join(dir, rel))).sort();
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return;
      throw new SeedError(`cannot read ${rel || dir}: ${messageOf(error)}`, { cause: error });
    }
    const stats = await Promise.all(
      names.map(async (name) => {
        const path = rel === '' ? name : `${rel}/${name}`;
        return { name, path, stat: await lstatOrUndefined(join(dir, path)) };
      }),
    );
    for (const { name, path, stat } of stats) {
      if (!stat) continue;
      if (stat.isDirectory()) {
        if (name === '.git' && !withGit) continue;
        out.push({ path, kind: 'dir', mode: stat.mode & 0o777 });
        await visit(path);
      } else {
        if (name === '.git' && !withGit) continue; // a submodule's `gitdir:` file
        const kind = kindOf(stat);
        if (kind) out.push(entryOf(path, kind, stat));
      }
    }
  };
  await visit(sub);
  return out;
}

function entryOf(path: string, kind: 'file' | 'symlink', stat: { mode: number; mtimeMs: number }): SeedEntry {
  return kind === 'file'
    ? { path, kind, mode: stat.mode & 0o777, mtimeMs: stat.mtimeMs }
    : { path, kind, mode: stat.mode & 0o777 };
}

function kindOf(stat: { isFile(): boolean; isSymbolicLink(): boolean }): 'file' | 'symlink' | undefined {
  if (stat.isSymbolicLink()) return 'symlink';
  if (stat.isFile()) return 'file';
  return undefined;
}

async function pool<T>(
  items: readonly T[],
  signal: AbortSignal | undefined,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      signal?.throwIfAborted();
      await fn(items[next++]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, items.length) }, worker));
}

function git(
  cwd: string,
  args: string[],
  signal?: AbortSignal,
): Promise<{ code: number; stdout: Buffer; stderr: string } | { missing: true }> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      {
        cwd,
        encoding: 'buffer',
        maxBuffer: 512 * 1024 * 1024,
        ...(signal ? { signal } : {}),
        // Listing must not rewrite the user's index (a stat refresh) behind their back.
        env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' },
      },
      (error, stdout, stderr) => {
        if (error && codeOf(error) === 'ENOENT') return resolve({ missing: true });
        if (error && signal?.aborted) return reject(signal.reason as Error);
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr: stderr.toString('utf8') });
      },
    );
  });
}

async function lstatOrUndefined(path: string) {
  try {
    return await lstat(path);
  } catch (error) {
    if (codeOf(error) === 'ENOENT' || codeOf(error) === 'ENOTDIR') return undefined;
    throw new SeedError(`cannot read ${path}: ${messageOf(error)}`, { cause: error });
  }
}

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
