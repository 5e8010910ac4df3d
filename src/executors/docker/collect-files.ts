import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { WorkspaceEntry } from '../types.js';
import { artifactPathProblem, compileArtifactPatterns, resolveLinkTarget } from '../workspace-files.js';
import type { ArtifactPatterns } from '../workspace-files.js';
import type { DockerContainer } from './client.js';
import { readTar } from './tar-reader.js';

/** Symlink hops followed before a link is called a loop. */
const MAX_HOPS = 40;

type Kind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

interface Seen {
  kind: Kind;
  /** Workspace-relative target of a hard link; raw target of a symlink. */
  link?: string;
  /**
   * A top-level symlink the engine followed when asked for it (Podman does, within the
   * volume; Docker hands over the link): the kind of what it points to; the target is unknown.
   */
  followed?: Kind;
}

/**
 * `collectFiles` of the docker executor: reads the workspace volume through the engine's
 * archive endpoint of a never-started helper container that mounts it (`helper`), so no
 * command runs and no image needs a shell or tar. It fetches only the top-level entries the
 * patterns can reach (the whole volume when a pattern starts with a wildcard), streams the
 * tar and hands matching files over as they pass.
 *
 * Tar archives never follow symlinks, so every path component is seen as it is. Matched
 * symlinks are resolved afterwards through the links seen (fetching more top-level entries
 * if a link points into one not yet read) and, when the real path is a regular file inside
 * the workspace, fetched by that real path, whose components are then known to be plain
 * directories.
 */
export async function* collectVolumeFiles(
  helper: DockerContainer,
  mount: string,
  patterns: readonly string[],
  signal?: AbortSignal,
): AsyncGenerator<WorkspaceEntry> {
  const { set, problems } = compileArtifactPatterns(patterns);
  for (const problem of problems)
    yield { kind: 'rejected', path: problem.pattern, reason: `pattern refused: ${problem.reason}` };
  const root = mount.replace(/\/+$/, '');
  const seen = new Map<string, Seen>();
  const scanned = new Set<string>();
  const links: string[] = [];
  const refused = new Set<string>();

  /** Reads one top-level entry (or, for '', the whole volume); yields matching files when `collect`. */
  async function* scan(top: string, collect: boolean): AsyncGenerator<WorkspaceEntry> {
    if (scanned.has(top) || scanned.has('')) return;
    scanned.add(top);
    const archive = await fetchArchive(helper, top === '' ? root : `${root}/${top}`);
    if (archive === undefined) return;
    let base: string | undefined;
    for await (const entry of readTar(archive)) {
      signal?.throwIfAborted();
      const name = cleanName(entry.name);
      // The first entry is the fetched path itself: Docker names it by its basename, Podman
      // the volume root as "/". Everything else is below it.
      if (base === undefined) {
        base = name;
        if (top !== '' && posix.basename(name) !== posix.basename(top)) {
          // The engine followed a symlink at `top`: its entries are named after the target.
          seen.set(top, { kind: 'symlink', followed: entry.type });
          if (collect) yield* followedTopLevel(top, entry);
          return;
        }
      }
      const sub =
        base === ''
          ? name
          : name === base
            ? ''
            : name.startsWith(`${base}/`)
              ? name.slice(base.length + 1)
              : undefined;
      if (sub === undefined) continue;
      const path = top === '' ? sub : sub === '' ? top : `${top}/${sub}`;
      if (path === '') continue;
      const info: Seen = { kind: entry.type };
      if (entry.type === 'symlink') info.link = entry.linkName;
      if (entry.type === 'hardlink') info.link = hardLinkPath(entry.linkName, base, top);
      seen.set(path, info);
      if (!collect) continue;
      const matched = set.match(path) !== -1;
      if (entry.type === 'symlink' || entry.type === 'hardlink') {
        if (matched || set.through(path).length > 0) links.push(path);
        continue;
      }
      if (!matched || entry.type === 'directory') continue;
      const problem = artifactPathProblem(path);
      if (problem !== undefined) yield { kind: 'rejected', path, reason: problem };
      else if (entry.type !== 'file' || entry.body === undefined)
        yield { kind: 'rejected', path, reason: 'not a regular file' };
      else {
        const body = entry.body;
        yield { kind: 'file', path, size: entry.size, open: () => body };
      }
    }
  }

  /** A top-level symlink the engine resolved (inside the volume): a file is read, a directory refused. */
  function* followedTopLevel(
    top: string,
    entry: { type: Kind; size: number; body?: Readable },
  ): Generator<WorkspaceEntry> {
    if (set.match(top) !== -1) {
      if (entry.type === 'file' && entry.body !== undefined) {
        const body = entry.body;
        yield { kind: 'file', path: top, size: entry.size, open: () => body };
      } else {
        refused.add(top);
        yield {
          kind: 'rejected',
          path: top,
          reason: 'symlink to a directory; symlinked directories are not followed',
        };
      }
    } else if (set.through(top).length > 0) {
      refused.add(top);
      yield { kind: 'rejected', path: top, reason: 'symlink; patterns do not follow symlinked directories' };
    }
  }

  const tops = set.topLevel ?? [''];
  for (const top of tops) yield* scan(top, true);

  for (const path of links) {
    signal?.throwIfAborted();
    const resolved = await resolve(path);
    const matched = set.match(path) !== -1;
    if (!matched) {
      // A symlink on a pattern's literal prefix: the pattern cannot reach below it.
      if (refused.has(path)) continue;
      refused.add(path);
      const info = seen.get(path)!;
      yield {
        kind: 'rejected',
        path,
        reason:
          'outside' in resolved
            ? `symlink to ${info.link ?? '?'}, outside the workspace`
            : `symlink to ${info.link ?? '?'}; patterns do not follow symlinked directories`,
      };
      continue;
    }
    const problem = artifactPathProblem(path);
    if (problem !== undefined) {
      yield { kind: 'rejected', path, reason: problem };
      continue;
    }
    const info = seen.get(path)!;
    const what = info.kind === 'hardlink' ? 'hard link' : `symlink to ${info.link ?? '?'}`;
    if ('outside' in resolved) {
      yield { kind: 'rejected', path, reason: `${what}, outside the workspace` };
      continue;
    }
    if ('missing' in resolved) {
      yield { kind: 'rejected', path, reason: `${what}, which does not exist` };
      continue;
    }
    if ('loop' in resolved) {
      yield { kind: 'rejected', path, reason: `${what}: too many levels of symlinks` };
      continue;
    }
    if (resolved.kind === 'directory') {
      yield {
        kind: 'rejected',
        path,
        reason: `${what}, a directory; symlinked directories are not followed`,
      };
      continue;
    }
    if (resolved.kind !== 'file') {
      yield { kind: 'rejected', path, reason: `${what}, which is not a regular file` };
      continue;
    }
    const file = await fetchSingleFile(helper, `${root}/${resolved.path}`);
    if (file === undefined) {
      yield { kind: 'rejected', path, reason: `${what}, which is gone` };
      continue;
    }
    yield { kind: 'file', path, size: file.size, open: () => file.body };
    await file.done();
  }

  /** The real workspace path behind a link, resolving every component through the links seen. */
  async function resolve(
    path: string,
  ): Promise<{ path: string; kind: Kind } | { outside: true } | { missing: true } | { loop: true }> {
    let current = path;
    for (let hops = 0; hops <= MAX_HOPS; hops++) {
      const parts = current.split('/');
      let rewritten: string | undefined;
      for (let i = 1; i <= parts.length; i++) {
        const prefix = parts.slice(0, i).join('/');
        if (!scanned.has(parts[0]!) && !scanned.has('')) for await (const _ of scan(parts[0]!, false));
        const info = seen.get(prefix);
        if (info === undefined) return { missing: true };
        const rest = parts.slice(i).join('/');
        if (info.followed !== undefined) {
          // Resolved by the engine inside the volume: fetching the link's own path reads the target.
          return i === parts.length ? { path: prefix, kind: info.followed } : { missing: true };
        }
        if (info.kind === 'symlink' || info.kind === 'hardlink') {
          // A hard link to a file is that file; a symlink is resolved against where it sits.
          const target =
            info.kind === 'hardlink' ? info.link : resolveLinkTarget(prefix, info.link ?? '', root);
          if (target === undefined) return { outside: true };
          if (info.kind === 'hardlink' && i === parts.length)
            return { path: target, kind: seen.get(target)?.kind ?? 'file' };
          rewritten = rest === '' ? target : target === '' ? rest : `${target}/${rest}`;
          break;
        }
        if (i === parts.length) return { path: current, kind: info.kind };
        if (info.kind !== 'directory') return { missing: true };
      }
      if (rewritten === undefined) return { missing: true };
      if (rewritten === '') return { path: '', kind: 'directory' };
      current = rewritten;
    }
    return { loop: true };
  }
}

/** The engine's tar of `path`, or undefined when there is nothing there (404). */
async function fetchArchive(
  helper: DockerContainer,
  path: string,
): Promise<NodeJS.ReadableStream | undefined> {
  try {
    return await helper.getArchive({ path });
  } catch (error) {
    const status = (error as { statusCode?: unknown } | null)?.statusCode;
    if (status === 404) return undefined;
    throw error;
  }
}

/** One regular file by its real path; `done` drains the rest of its archive. */
async function fetchSingleFile(
  helper: DockerContainer,
  path: string,
): Promise<{ size: number; body: Readable; done: () => Promise<void> } | undefined> {
  const archive = await fetchArchive(helper, path);
  if (archive === undefined) return undefined;
  const entries = readTar(archive);
  const first = await entries.next();
  if (first.done || first.value.type !== 'file' || first.value.body === undefined) {
    await entries.return(undefined);
    return undefined;
  }
  return {
    size: first.value.size,
    body: first.value.body,
    done: async () => void (await entries.return(undefined)),
  };
}

/** `./a/b/` → `a/b`, `/a` → `a`, `/` → ''. */
function cleanName(name: string): string {
  return posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
}

/** A hard link's target as a workspace path (tar names it as it names entries). */
function hardLinkPath(linkName: string, base: string, top: string): string | undefined {
  const name = cleanName(linkName);
  const sub =
    base === ''
      ? name
      : name === base
        ? ''
        : name.startsWith(`${base}/`)
          ? name.slice(base.length + 1)
          : undefined;
  if (sub === undefined) return undefined;
  return top === '' ? sub : sub === '' ? top : `${top}/${sub}`;
}

export type { ArtifactPatterns };
