import type { Kysely } from 'kysely';
import { listProjects, type Database, type Project } from '../../store/index.js';

/**
 * A repository URL reduced to `host/path` for comparison: the same repository over HTTPS,
 * SSH (`ssh://` or scp-like `git@host:path`) or `git://`, with or without `.git`, port,
 * credentials or trailing slash, gives the same key. Case is ignored (GitHub and Gitea names
 * are case-insensitive). Undefined for text that is not a repository URL.
 */
export function repoKey(url: string): string | undefined {
  const text = url.trim();
  if (text === '' || text.startsWith('-')) return undefined;
  let host: string;
  let path: string;
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(\S+)$/.exec(text);
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    host = scp[1]!;
    path = scp[2]!;
  } else {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      return undefined;
    }
    host = parsed.protocol === 'file:' ? '' : parsed.hostname;
    try {
      path = decodeURIComponent(parsed.pathname);
    } catch {
      path = parsed.pathname;
    }
  }
  path = path
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/i, '')
    .replace(/\/+$/, '');
  if (path === '') return undefined;
  return `${host.toLowerCase()}/${path.toLowerCase()}`;
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
