import { constants, createReadStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { WorkspaceEntry } from '../types.js';
import { artifactPathProblem, compileArtifactPatterns } from '../workspace-files.js';
import type { ArtifactPatterns } from '../workspace-files.js';

/**
 * `collectFiles` of the local executor: walks the workspace directory on this host from the
 * patterns' literal prefixes, without following symlinked directories; a matched symlink is
 * judged by its real path (`realpath`), so one into `/etc` or `~/.ssh` is refused however it
 * is spelled. Files open with `O_NOFOLLOW`, and exactly their size at the walk is read.
 */
export async function* collectLocalFiles(
  workspace: string,
  patterns: readonly string[],
  signal?: AbortSignal,
): AsyncGenerator<WorkspaceEntry> {
  const { set, problems } = compileArtifactPatterns(patterns);
  for (const problem of problems)
    yield { kind: 'rejected', path: problem.pattern, reason: `pattern refused: ${problem.reason}` };
  const root = await realpath(workspace);
  const refused = new Set<string>();
  const starts: string[] = [];
  const dead = new Set<number>();

  for (const { index, prefix, dirs } of set.literalPrefixes) {
    if (dead.has(index)) continue;
    // Directories on a pattern's literal way that are symlinks would take the walk elsewhere: judge them here.
    const parts = dirs === '' ? [] : dirs.split('/');
    let reachable = true;
    for (let i = 0; i < parts.length; i++) {
      const path = parts.slice(0, i + 1).join('/');
      const info = await lstatOrUndefined(join(root, path));
      if (info === undefined || (!info.isDirectory() && !info.isSymbolicLink())) {
        reachable = false;
        break;
      }
      if (info.isSymbolicLink()) {
        reachable = false;
        dead.add(index);
        if (!refused.has(path)) {
          refused.add(path);
          yield { kind: 'rejected', path, reason: await symlinkDirReason(root, path) };
        }
        break;
      }
    }
    if (reachable) starts.push(prefix);
  }

  const visited = new Set<string>();
  for (const start of minimalStarts(starts)) {
    yield* walk(root, start, set, refused, visited, signal);
  }
}

async function* walk(
  root: string,
  path: string,
  set: ArtifactPatterns,
  refused: Set<string>,
  visited: Set<string>,
  signal: AbortSignal | undefined,
): AsyncGenerator<WorkspaceEntry> {
  signal?.throwIfAborted();
  if (visited.has(path)) return;
  visited.add(path);
  const absolute = path === '' ? root : join(root, path);
  const info = await lstatOrUndefined(absolute);
  if (info === undefined) return;
  if (info.isDirectory()) {
    let names: string[];
    try {
      names = (await readdir(absolute)).sort();
    } catch {
      return;
    }
    for (const name of names)
      yield* walk(root, path === '' ? name : `${path}/${name}`, set, refused, visited, signal);
    return;
  }
  if (set.match(path) === -1) return;
  const problem = artifactPathProblem(path);
  if (problem !== undefined) {
    yield { kind: 'rejected', path, reason: problem };
    return;
  }
  if (info.isSymbolicLink()) {
    if (refused.has(path)) return;
    yield await linkedFile(root, path);
    return;
  }
  if (!info.isFile()) {
    yield { kind: 'rejected', path, reason: 'not a regular file' };
    return;
  }
  yield fileEntry(path, absolute, info.size, true);
}

/** A matched symlink: the target's bytes when its real path is a regular file in the workspace. */
async function linkedFile(root: string, path: string): Promise<WorkspaceEntry> {
  const absolute = join(root, path);
  const target = await readlink(absolute).catch(() => '?');
  let real: string;
  try {
    real = await realpath(absolute);
  } catch {
    return { kind: 'rejected', path, reason: `symlink to ${target}, which does not exist` };
  }
  if (!isInside(root, real))
    return { kind: 'rejected', path, reason: `symlink to ${target}, outside the workspace` };
  const info = await stat(real);
  if (info.isDirectory())
    return {
      kind: 'rejected',
      path,
      reason: `symlink to the directory ${target}; symlinked directories are not followed`,
    };
  if (!info.isFile())
    return { kind: 'rejected', path, reason: `symlink to ${target}, which is not a regular file` };
  return fileEntry(path, real, info.size, false);
}

async function symlinkDirReason(root: string, path: string): Promise<string> {
  const target = await readlink(join(root, path)).catch(() => '?');
  let real: string | undefined;
  try {
    real = await realpath(join(root, path));
  } catch {
    real = undefined;
  }
  if (real === undefined || !isInside(root, real)) return `symlink to ${target}, outside the workspace`;
  return `symlink to ${target}; patterns do not follow symlinked directories`;
}

function fileEntry(path: string, file: string, size: number, noFollow: boolean): WorkspaceEntry {
  return {
    kind: 'file',
    path,
    size,
    open: () =>
      size === 0
        ? Readable.from([])
        : createReadStream(file, {
            // Numeric open flags work (fs.open takes them); the stream's typings only list strings.
            flags: (constants.O_RDONLY | (noFollow ? constants.O_NOFOLLOW : 0)) as unknown as string,
            start: 0,
            end: size - 1,
          }),
  };
}

function isInside(root: string, real: string): boolean {
  const rel = relative(root, real);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep);
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch {
    return undefined;
  }
}

/** Drops starts that lie below another start: the walk from the parent covers them. */
function minimalStarts(starts: string[]): string[] {
  const unique = [...new Set(starts)].sort();
  return unique.filter(
    (s) => !unique.some((other) => other !== s && (other === '' || s.startsWith(`${other}/`))),
  );
}
