/**
 * Cache archives: gzip-compressed tar files whose entries are `w/<path>` (below the workspace)
 * and `h/<path>` (below the step's HOME). Packing reads the host directories of a step;
 * unpacking never trusts the archive (it comes from an earlier build, i.e. from code anyone
 * with a branch could write): it is extracted into a fresh private staging directory first,
 * and refused whole on the first entry that is not a plain file, directory or link inside its
 * root, on a link leaving its root, or past the size limits. Only then are its top-level
 * paths moved into place, never through a symlink the workspace holds.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { cp, lstat, mkdir, mkdtemp, readdir, rename, rm, stat, symlink } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Pack, Parser, Unpack, type ReadEntry } from 'tar';
import { execFile } from 'node:child_process';
import { chownTree } from '../../executors/local/chown-tree.js';
import { formatBytes } from '../../contract/bytes.js';

/** Where a step's cache paths are on this host. */
export interface CacheRoots {
  workspace: string;
  /** The step's HOME; undefined: `~/…` paths cannot be cached here. */
  home?: string;
  /** Who restored files must belong to (the build user), when not this process's user. */
  owner?: { uid: number; gid: number };
}

export interface UnpackLimits {
  /** Bytes of file content the archive may expand to. */
  maxBytes: number;
  /** Entries the archive may hold. */
  maxEntries: number;
}

/** An archive that was refused, with the reason for the log. */
export class ArchiveError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ArchiveError';
  }
}

/** `node_modules` → `w/node_modules`, `~/.npm` → `h/.npm`, `~` → `h`. */
export function archivePath(path: string): string {
  if (path === '~') return 'h';
  if (path.startsWith('~/')) return `h/${path.slice(2)}`;
  return `w/${path}`;
}

/**
 * Writes a gzip-compressed tar of those `paths` (cache paths, checked by the compiler) that
 * exist to `file`. Symlinks are stored as links, never followed. Resolves with the paths
 * packed; nothing is packed (and `file` not written) when none of them exists.
 */
export async function packCache(
  roots: CacheRoots,
  paths: readonly string[],
  file: string,
  scratch: string,
  signal?: AbortSignal,
  limits?: UnpackLimits,
): Promise<string[]> {
  // One tar over two roots: a directory with `w` and `h` as links to them; the paths below
  // are read through the link (only each path's last component is taken as it is).
  const stage = await mkdtemp(join(scratch, 'pack-'));
  try {
    await symlink(roots.workspace, join(stage, 'w'));
    if (roots.home !== undefined) await symlink(roots.home, join(stage, 'h'));
    const present: string[] = [];
    for (const path of paths) {
      const entry = archivePath(path);
      if (entry.startsWith('h') && roots.home === undefined) continue;
      if (await exists(join(stage, entry))) present.push(entry);
    }
    if (present.length === 0) return [];
    // What a restore would refuse is not packed: a step's sparse terabyte (a few blocks on its
    // disk) would otherwise be read whole by tar and gzip, and stored to be refused later.
    if (limits) await measureTree(stage, present, limits, signal);
    if (await systemTar()) {
      // GNU tar: a C loop over the files, where node-tar's thread-pool round trips cost seconds.
      await runTar(
        [
          '-c',
          '-f',
          file,
          '-I',
          'gzip -1',
          '-C',
          stage,
          '--format=posix',
          '--numeric-owner',
          '--owner=0',
          '--group=0',
          '--',
          ...present,
        ],
        signal,
      );
      return present;
    }
    const pack = new Pack({ cwd: stage, gzip: { level: 1 }, portable: true, follow: false });
    for (const p of present) pack.add(p);
    pack.end();
    await pipeline(pack, createWriteStream(file), { ...(signal ? { signal } : {}) });
    return present;
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

/**
 * Walks `paths` below `root` (links not followed, as tar stores them) and throws `ArchiveError`
 * once their files' sizes or their entries pass `limits`: the archive would be refused on restore.
 */
async function measureTree(
  root: string,
  paths: readonly string[],
  limits: UnpackLimits,
  signal?: AbortSignal,
): Promise<void> {
  const budget = new EntryBudget(limits);
  const pending = [...paths];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    signal?.throwIfAborted();
    // Through `w`/`h`, the stage's links to the roots: the first component is followed, no other.
    const info = await lstat(join(root, path));
    const type = info.isDirectory() ? 'Directory' : info.isSymbolicLink() ? 'SymbolicLink' : 'File';
    const over = budget.over(type === 'File' ? info.size : 0);
    if (over) throw new ArchiveError(over);
    if (type === 'Directory')
      for (const name of await readdir(join(root, path))) pending.push(`${path}/${name}`);
  }
}

/** Why an entry may not be unpacked, or undefined. */
export function entryProblem(path: string, type: string, linkpath: string | undefined): string | undefined {
  const name = path.replace(/\/+$/, '');
  if (name.startsWith('/')) return `${JSON.stringify(path)} is an absolute path`;
  const segments = name.split('/');
  if (segments.includes('..')) return `${JSON.stringify(path)} has a ".." segment`;
  if (segments[0] !== 'w' && segments[0] !== 'h')
    return `${JSON.stringify(path)} is outside the workspace and HOME`;
  if (segments.length < 2 && type !== 'Directory') return `${JSON.stringify(path)} is not below a root`;
  switch (type) {
    case 'File':
    case 'OldFile':
    case 'ContiguousFile':
    case 'Directory':
      return undefined;
    case 'SymbolicLink': {
      if (!linkpath || linkpath.startsWith('/')) return `${JSON.stringify(path)} links to an absolute path`;
      const target = posix.normalize(posix.join(posix.dirname(name), linkpath));
      if (target !== segments[0] && !target.startsWith(`${segments[0]}/`))
        return `${JSON.stringify(path)} links outside its root (${linkpath})`;
      return undefined;
    }
    case 'Link': {
      const target = posix.normalize(linkpath ?? '');
      if (
        !linkpath ||
        target.startsWith('/') ||
        target.split('/').includes('..') ||
        !target.startsWith(`${segments[0]}/`)
      )
        return `${JSON.stringify(path)} is a hard link outside its root`;
      return undefined;
    }
    default:
      return `${JSON.stringify(path)} is a ${type} entry (only files, directories and links are restored)`;
  }
}

/** Counts an archive's entries and content bytes as they are read, against the limits. */
class EntryBudget {
  private bytes = 0;
  private entries = 0;
  constructor(private readonly limits: UnpackLimits) {}

  /** Why the archive is refused at this entry, or undefined while it may go on. */
  refusal(path: string, entry: Pick<ReadEntry, 'type' | 'linkpath' | 'size'>): string | undefined {
    const content =
      entry.type === 'File' || entry.type === 'OldFile' || entry.type === 'ContiguousFile'
        ? (entry.size ?? 0)
        : 0;
    return entryProblem(path, entry.type, entry.linkpath) ?? this.over(content);
  }

  /** Counts one more entry of `content` bytes; why that is past the limits, if it is. */
  over(content: number): string | undefined {
    this.entries++;
    this.bytes += content;
    if (this.bytes > this.limits.maxBytes)
      return `it expands to more than ${formatBytes(this.limits.maxBytes)}`;
    if (this.entries > this.limits.maxEntries) return `it has more than ${this.limits.maxEntries} entries`;
    return undefined;
  }

  counted(): { bytes: number; entries: number } {
    return { bytes: this.bytes, entries: this.entries };
  }
}

/**
 * Extracts a cache archive into `stage` (a new, empty, private directory), refusing the whole
 * archive (`ArchiveError`) on the first bad entry, when it is corrupt or truncated, or when it
 * expands past `limits`. On refusal what was extracted stays in `stage` for the caller to remove.
 */
export async function unpackToStage(
  archive: NodeJS.ReadableStream | string,
  stage: string,
  limits: UnpackLimits,
  signal?: AbortSignal,
  /** `node-tar`: node-tar even where GNU tar runs (the fallback's own tests). */
  extractor: 'auto' | 'node-tar' = 'auto',
): Promise<{ bytes: number; entries: number }> {
  // Two passes over a file of our own: every header checked first (nothing written), then the
  // system's tar extracts what was checked: node-tar writes a file at a time through the
  // thread pool, 15x slower than GNU tar for 5,000 small files (bench/caches.mjs).
  if (extractor === 'auto' && (await systemTar())) {
    let file = archive;
    if (typeof archive !== 'string') {
      file = join(stage, '.archive.tgz');
      await pipeline(archive, createWriteStream(file, { mode: 0o600 }), { ...(signal ? { signal } : {}) });
    }
    const counted = await checkArchive(file as string, limits, signal);
    await extractWithSystemTar(file as string, stage, signal);
    if (file !== archive) await rm(file as string, { force: true });
    return counted;
  }
  return unpackWithNodeTar(archive, stage, limits, signal);
}

/** Reads every header of the archive (nothing written); throws `ArchiveError` on the first problem. */
async function checkArchive(
  file: string,
  limits: UnpackLimits,
  signal?: AbortSignal,
): Promise<{ bytes: number; entries: number }> {
  const budget = new EntryBudget(limits);
  let refused: string | undefined;
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry: ReadEntry) => {
      entry.resume();
      if (refused) return;
      refused = budget.refusal(entry.path, entry);
      if (refused) parser.abort(new ArchiveError(refused));
    },
  });
  parser.on('warn', (_code: string, message: string) => {
    refused ??= `it is corrupt or truncated (${message})`;
  });
  try {
    // The parser gunzips itself (it sees the gzip magic).
    await pipeline(createReadStream(file), parser, { ...(signal ? { signal } : {}) });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ArchiveError(refused ?? describe(error), { cause: error });
  }
  if (refused) throw new ArchiveError(refused);
  return budget.counted();
}

let hasSystemTar: Promise<boolean> | undefined;
/** Whether GNU tar runs here (else node-tar extracts, slower). */
function systemTar(): Promise<boolean> {
  hasSystemTar ??= new Promise((resolve) => {
    execFile('tar', ['--version'], (error, stdout) => resolve(!error && stdout.includes('GNU tar')));
  });
  return hasSystemTar;
}

/** GNU tar of a checked archive: never the archive's owners, modes through the umask, no setuid. */
async function extractWithSystemTar(file: string, stage: string, signal?: AbortSignal): Promise<void> {
  await runTar(
    [
      '-x',
      '-z',
      '-f',
      file,
      '-C',
      stage,
      '--no-same-owner',
      '--no-same-permissions',
      '--no-overwrite-dir',
      '--exclude=.archive.tgz',
    ],
    signal,
  );
}

function runTar(args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    execFile(
      'tar',
      args,
      { ...(signal ? { signal } : {}), maxBuffer: 1024 * 1024 },
      (error, _stdout, stderr) =>
        error
          ? reject(
              new ArchiveError(`tar: ${stderr.trim().split('\n').slice(-2).join('; ') || error.message}`),
            )
          : resolve(),
    );
  });
}

async function unpackWithNodeTar(
  archive: NodeJS.ReadableStream | string,
  stage: string,
  limits: UnpackLimits,
  signal?: AbortSignal,
): Promise<{ bytes: number; entries: number }> {
  const budget = new EntryBudget(limits);
  let refused: string | undefined;
  const unpack = new Unpack({
    cwd: stage,
    strict: true,
    preservePaths: false,
    preserveOwner: false,
    noMtime: false,
    processUmask: 0o022,
    filter: (path: string, entry: unknown) => {
      if (refused) return false;
      const e = entry as ReadEntry;
      const why = budget.refusal(path, e);
      if (why) {
        refused = why;
        unpack.abort(new ArchiveError(why));
        return false;
      }
      // Never a setuid, setgid or sticky bit from an archive: the server may extract as root.
      if (typeof e.mode === 'number') e.mode &= 0o777;
      return true;
    },
  });
  // `strict` makes the warnings tar would otherwise skip past (a bad checksum, a truncated
  // entry) errors; keep the first as the reason.
  unpack.on('warn', (_code: string, message: string) => {
    refused ??= message;
  });
  const source = typeof archive === 'string' ? createReadStream(archive) : archive;
  try {
    await pipeline(source, createGunzip(), unpack, { ...(signal ? { signal } : {}) });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ArchiveError(refused ?? describe(error), { cause: error });
  }
  if (refused) throw new ArchiveError(refused);
  return budget.counted();
}

/**
 * Moves what `stage` holds under `w/` and `h/` into the roots: each top-level path replaces
 * nothing the step wrote itself (files of the archive win over files already there, a
 * directory is merged). Refuses to write through a symlink or non-directory on the way.
 */
export async function placeStaged(stage: string, roots: CacheRoots): Promise<string[]> {
  const placed: string[] = [];
  for (const [prefix, root] of [
    ['w', roots.workspace],
    ['h', roots.home],
  ] as const) {
    const from = join(stage, prefix);
    if (!(await exists(from))) continue;
    // HOME paths where the step has none (the caller said so in the log): left out.
    if (root === undefined) continue;
    await mkdir(root, { recursive: true });
    if (roots.owner) await chownTree(from, roots.owner.uid, roots.owner.gid);
    for (const name of await readdir(from)) {
      await placeTree(join(from, name), root, name);
      placed.push(prefix === 'h' ? `~/${name}` : name);
    }
  }
  return placed;
}

async function placeTree(from: string, root: string, rel: string): Promise<void> {
  const to = join(root, rel);
  const there = await lstat(to).catch(() => undefined);
  if (there === undefined) {
    await rename(from, to).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EXDEV') throw error;
      await cp(from, to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
    });
    return;
  }
  const source = await lstat(from);
  if (there.isSymbolicLink() && source.isDirectory())
    throw new ArchiveError(`${rel} is a symlink in the target; nothing is restored through it`);
  if (source.isDirectory() && there.isDirectory()) {
    for (const name of await readdir(from)) await placeTree(join(from, name), root, join(rel, name));
    return;
  }
  await rm(to, { recursive: true, force: true });
  await mkdir(dirname(to), { recursive: true });
  await rename(from, to).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EXDEV') throw error;
    await cp(from, to, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
  });
}

async function exists(path: string): Promise<boolean> {
  return (await lstat(path).catch(() => undefined)) !== undefined;
}

/** Size of a file, for the row and the log. */
export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  if (/unexpected end of file/i.test(text)) return 'it is truncated';
  if (/incorrect header check|invalid|unknown compression|TAR_BAD_ARCHIVE|unrecognized archive/i.test(text))
    return `it is corrupt (${text})`;
  return text;
}
