import { posix, resolve } from 'node:path';
import type { Kysely } from 'kysely';
import { listProjects, type Database, type Project } from '../../store/index.js';

/**
 * The canonical form of a repository URL, so that two spellings of one repository compare
 * equal: `https://host/path` for a repository on a server and `file:///abs/path` for one on
 * this machine. Over the network the scheme (https, http, ssh, git), port, credentials,
 * trailing `/` and `.git` do not matter and case is ignored (GitHub, GitLab and Gitea names
 * are case-insensitive); scp-like `git@host:owner/name` is `https://host/owner/name`. On
 * this machine a plain path and a `file://` URL are equal, relative paths are taken from
 * the server's working directory (as `git clone` takes them), `repo`, `repo.git` and
 * `repo/.git` are one repository (git finds either), and case is kept: paths are
 * case-sensitive. Idempotent. Undefined for text that is not a repository URL (or that git
 * could take for an option).
 */
export function normalizeRepoUrl(url: string): string | undefined {
  const text = url.trim();
  if (text === '' || text.startsWith('-')) return undefined;
  if (text.startsWith('/') || text.startsWith('./') || text.startsWith('../') || text === '.' || text === '..')
    return localKey(resolve(text));
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(\S+)$/.exec(text);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text) && !/^file:/i.test(text)) {
    return remoteKey(scp[1]!, scp[2]!);
  }
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return undefined;
  }
  const path = decoded(parsed.pathname);
  if (parsed.protocol === 'file:') {
    if (parsed.hostname !== '' && parsed.hostname.toLowerCase() !== 'localhost') return undefined;
    return path.startsWith('/') ? localKey(path) : undefined;
  }
  if (parsed.hostname === '') return undefined;
  return remoteKey(parsed.hostname, path);
}

/** {@link normalizeRepoUrl} under the name the hooks use for matching. */
export const repoKey = normalizeRepoUrl;

function localKey(path: string): string | undefined {
  const clean = withoutSuffixes(path, false);
  if (clean === '/') return undefined;
  return `file://${clean.split('/').map(encodePathPart).join('/')}`;
}

function remoteKey(rawHost: string, rawPath: string): string | undefined {
  let host: string;
  try {
    // Through the URL parser, so that scp-like hosts get the same spelling as URL hosts.
    host = new URL(`https://${rawHost}`).hostname;
  } catch {
    return undefined;
  }
  const path = withoutSuffixes(`/${rawPath}`, true).toLowerCase();
  if (host === '' || path === '/') return undefined;
  return `https://${host}${path.split('/').map(encodePathPart).join('/')}`;
}

/** An absolute path normalised, without trailing `/`, `.git` or `/.git` (as often as they repeat). */
function withoutSuffixes(path: string, ignoreCase: boolean): string {
  const suffix = ignoreCase ? /(?:\/|\.git)$/i : /(?:\/|\.git)$/;
  let current = posix.normalize(path);
  for (;;) {
    const next = posix.normalize(current.replace(suffix, '') || '/');
    if (next === current || next === '/') return next;
    current = next;
  }
}

/** A path segment as a URL spells it, so that the canonical form parses back to itself. */
function encodePathPart(part: string): string {
  return encodeURIComponent(part).replace(/%40/g, '@').replace(/%2B/gi, '+');
}

function decoded(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname;
  }
}

/** Projects whose repository URL names the same repository as one of `urls`. */
export async function projectsForRepo(db: Kysely<Database>, urls: readonly string[]): Promise<Project[]> {
  const wanted = new Set(urls.map(repoKey).filter((k): k is string => k !== undefined));
  if (wanted.size === 0) return [];
  const found: Project[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await listProjects(db, { limit: 1000, ...(after !== undefined && { after }) });
    for (const project of page) {
      const key = repoKey(project.repoUrl);
      if (key !== undefined && wanted.has(key)) found.push(project);
    }
    if (page.length < 1000) return found;
    after = page.at(-1)!.slug;
  }
}
