import type { ContextMode, ForgeKind } from '../../store/commit-status.js';

/**
 * What differs between forges for a commit status: where the repository is, the request
 * (path, auth header, body) and the state names. Pure functions, no I/O.
 *
 * - GitHub: `POST /repos/{owner}/{repo}/statuses/{sha}`, `Authorization: Bearer`, states
 *   pending/success/failure/error (no "running": pending with description "running"),
 *   description at most 140 characters.
 *   https://docs.github.com/en/rest/commits/statuses#create-a-commit-status
 * - GitLab: `POST /projects/:id/statuses/:sha` with the project's URL-encoded path as id,
 *   `PRIVATE-TOKEN`, states pending/running/success/failed/canceled/skipped.
 *   https://docs.gitlab.com/api/commits/#set-the-pipeline-status-of-a-commit
 * - Gitea and Forgejo: `POST /repos/{owner}/{repo}/statuses/{sha}`, `Authorization: token`,
 *   states pending/success/error/failure/warning.
 *   https://gitea.com/api/swagger#/repository/repoCreateStatus
 */

export const FORGE_KINDS: readonly ForgeKind[] = ['github', 'gitlab', 'gitea'];
export const CONTEXT_MODES: readonly ContextMode[] = ['build', 'stage'];

/** Hosts whose forge is known without being told. */
const KNOWN_HOSTS: Record<string, { forge: ForgeKind; apiUrl: string }> = {
  'github.com': { forge: 'github', apiUrl: 'https://api.github.com' },
  'gitlab.com': { forge: 'gitlab', apiUrl: 'https://gitlab.com/api/v4' },
  'codeberg.org': { forge: 'gitea', apiUrl: 'https://codeberg.org/api/v1' },
  'gitea.com': { forge: 'gitea', apiUrl: 'https://gitea.com/api/v1' },
};

/** A repository on a forge, as the status API addresses it. */
export interface ForgeRepo {
  forge: ForgeKind;
  /** API base without a trailing `/`. */
  apiUrl: string;
  /** `owner/name` (GitLab: the full path, groups and subgroups included). */
  path: string;
}

/**
 * The forge, API and repository path of a project's repository URL, with what the project
 * set overriding the guess. An error (as data) says what to set when it cannot be told.
 */
export function resolveForgeRepo(
  repoUrl: string,
  settings: { forge: ForgeKind | null; apiUrl: string | null; repository?: string | null },
): ForgeRepo | { error: string } {
  const location = parseRepoLocation(repoUrl);
  const repository = settings.repository ?? null;
  if (location === undefined) {
    // A mirror or a local path: the settings say all of it.
    if (repository !== null && settings.forge !== null && settings.apiUrl !== null) {
      return checkedPath({
        forge: settings.forge,
        apiUrl: settings.apiUrl.replace(/\/+$/, ''),
        path: repository,
      });
    }
    return {
      error: `the repository URL names no forge: set "forge", "apiUrl" and "repository" (owner/name)`,
    };
  }
  const known = KNOWN_HOSTS[location.host];
  const forge = settings.forge ?? known?.forge;
  if (forge === undefined) {
    return {
      error: `cannot tell which forge ${location.host} is: set "forge" to github, gitlab or gitea`,
    };
  }
  const apiUrl =
    settings.apiUrl ?? (known?.forge === forge ? known.apiUrl : defaultApiUrl(forge, location.origin));
  return checkedPath({ forge, apiUrl: apiUrl.replace(/\/+$/, ''), path: repository ?? location.path });
}

function checkedPath(repo: ForgeRepo): ForgeRepo | { error: string } {
  const parts = repo.path.split('/');
  if (parts.some((part) => part === '' || part === '.' || part === '..' || /\s/.test(part))) {
    return { error: `${repo.path} is not a repository path` };
  }
  if (repo.forge !== 'gitlab' && parts.length !== 2) {
    return { error: `${repo.path} is not an owner/name repository path` };
  }
  return repo;
}

/** GitHub Enterprise Server, self-hosted GitLab, Gitea and Forgejo at their usual places. */
function defaultApiUrl(forge: ForgeKind, origin: string): string {
  if (forge === 'github') return `${origin}/api/v3`;
  if (forge === 'gitlab') return `${origin}/api/v4`;
  return `${origin}/api/v1`;
}

/**
 * Host and path (case kept, no `.git`, no credentials) of an http(s), ssh or scp-like
 * (`git@host:owner/name.git`) URL; undefined for a local path or something else.
 */
export function parseRepoLocation(url: string): { host: string; origin: string; path: string } | undefined {
  const text = url.trim();
  const scp = /^(?:[^@/\s]+@)?([^:/\s]+):(?!\/\/)(\S+)$/.exec(text);
  let host: string;
  let origin: string;
  let rawPath: string;
  if (scp && !/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    host = scp[1]!.toLowerCase();
    origin = `https://${host}`;
    rawPath = scp[2]!;
  } else {
    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      return undefined;
    }
    if (!['http:', 'https:', 'ssh:', 'git:'].includes(parsed.protocol) || parsed.hostname === '')
      return undefined;
    host = parsed.hostname.toLowerCase();
    // ssh and git URLs name the git port, not the web's: the API is on https.
    origin = parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.origin : `https://${host}`;
    rawPath = safeDecode(parsed.pathname);
  }
  const path = rawPath
    .replace(/^\/+|\/+$/g, '')
    .replace(/\.git$/i, '')
    .replace(/\/+$/, '');
  if (path === '' || path.split('/').some((part) => part === '' || part === '.' || part === '..'))
    return undefined;
  return { host, origin, path };
}

function safeDecode(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/** Slipway's own view of a context's moment, before a forge names it. */
export type StatusMoment =
  'queued' | 'running' | 'waiting' | 'success' | 'failure' | 'error' | 'cancelled' | 'lost' | 'skipped';

/** The state a forge is told for a moment. */
export function forgeState(forge: ForgeKind, moment: StatusMoment): string {
  switch (forge) {
    case 'gitlab':
      // A build waiting for approval stays running: GitLab refuses running -> pending.
      return {
        queued: 'pending',
        waiting: 'running',
        running: 'running',
        success: 'success',
        skipped: 'skipped',
        failure: 'failed',
        error: 'failed',
        lost: 'failed',
        cancelled: 'canceled',
      }[moment];
    case 'github':
    case 'gitea':
      // Neither has running, cancelled or skipped: pending says "running" in its description,
      // a cancelled or lost build is an error (it did not fail, it did not finish), skipped
      // is success (nothing to block a merge on).
      return {
        queued: 'pending',
        waiting: 'pending',
        running: 'pending',
        success: 'success',
        skipped: 'success',
        failure: 'failure',
        error: 'error',
        lost: 'error',
        cancelled: 'error',
      }[moment];
  }
}

/** Whether posting the same state again (with a new description) is accepted: GitLab answers 400. */
export function acceptsSameState(forge: ForgeKind): boolean {
  return forge !== 'gitlab';
}

/** GitHub's limit, the shortest of the three; the others take it too. */
export const MAX_DESCRIPTION = 140;

export function shortDescription(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= MAX_DESCRIPTION ? line : `${line.slice(0, MAX_DESCRIPTION - 1)}…`;
}

export interface StatusPost {
  context: string;
  moment: StatusMoment;
  description: string;
  /** The build's page; null when the server has no public URL. */
  targetUrl: string | null;
  /** Branch or tag (GitLab's `ref`). */
  ref: string | null;
}

/** The HTTP request for one status on one commit. The token goes only in `headers`. */
export function statusRequest(
  repo: ForgeRepo,
  sha: string,
  token: string,
  post: StatusPost,
): { url: string; headers: Record<string, string>; body: Record<string, unknown> } {
  const state = forgeState(repo.forge, post.moment);
  const common = { 'content-type': 'application/json', 'user-agent': 'Slipway' };
  if (repo.forge === 'gitlab') {
    return {
      url: `${repo.apiUrl}/projects/${encodeURIComponent(repo.path)}/statuses/${sha}`,
      headers: { ...common, accept: 'application/json', 'private-token': token },
      body: {
        state,
        name: post.context,
        description: post.description,
        ...(post.targetUrl !== null && { target_url: post.targetUrl }),
        ...(post.ref !== null && { ref: post.ref }),
      },
    };
  }
  const [owner, name] = repo.path.split('/') as [string, string];
  const path = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/statuses/${sha}`;
  const body = {
    state,
    context: post.context,
    description: post.description,
    ...(post.targetUrl !== null && { target_url: post.targetUrl }),
  };
  if (repo.forge === 'github') return { url: `${repo.apiUrl}${path}`, headers: githubHeaders(token), body };
  return {
    url: `${repo.apiUrl}${path}`,
    headers: { ...common, accept: 'application/json', authorization: `token ${token}` },
    body,
  };
}

/** GitHub's REST headers (statuses and check runs alike); the token goes nowhere else. */
export function githubHeaders(token: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'Slipway',
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
    authorization: `Bearer ${token}`,
  };
}
