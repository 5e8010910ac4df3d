/**
 * Links to a commit, a branch and a pull request on the forge a repository URL points at:
 * GitHub, GitLab, Gitea and Forgejo, told apart by their host. Shared by the web UI (and
 * whatever else shows a build to a person). Pure; no I/O.
 *
 * The repository URL is user input: a link is only ever `https://` or `http://` to a plain
 * host name, with every path segment percent-encoded, so no `javascript:` or other scheme can
 * come out of it. A host that is not recognisably one of these forges gets no links at all,
 * rather than links that may lead nowhere.
 */

export type ForgeKind = 'github' | 'gitlab' | 'gitea';

export interface ForgeRepoWeb {
  forge: ForgeKind;
  /** The repository's web page: `https://host[:port]/owner/name`, no trailing `/`. */
  web: string;
}

/** Hosts known by name; others by their first label (`gitlab.acme.dev`, `gitea.local`). */
const KNOWN_HOSTS: Record<string, ForgeKind> = {
  'github.com': 'github',
  'gitlab.com': 'gitlab',
  'gitea.com': 'gitea',
  'codeberg.org': 'gitea',
};
const FIRST_LABEL: Record<string, ForgeKind> = {
  github: 'github',
  gitlab: 'gitlab',
  gitea: 'gitea',
  forgejo: 'gitea',
  codeberg: 'gitea',
};

const HOST = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const SEGMENT = /^[A-Za-z0-9._~-]+$/;

/**
 * The forge and web address of a repository URL: `https://host/owner/name(.git)`,
 * `http://…`, `ssh://git@host[:port]/owner/name.git` or scp-like `git@host:owner/name.git`
 * (credentials, `.git` and a trailing `/` dropped; an ssh port is not the web's, so it goes
 * too). Undefined for a local path, an unknown host or anything else.
 */
export function forgeRepoOf(repoUrl: string): ForgeRepoWeb | undefined {
  const text = repoUrl.trim();
  let scheme: 'https' | 'http';
  let host: string;
  let port = '';
  let path: string;
  const scp = /^(?:[^@/\s:]+@)?([^:/\s@]+):(?!\/\/)([^\s]+)$/.exec(text);
  if (scp !== null && !text.includes('://')) {
    scheme = 'https';
    host = scp[1]!;
    path = scp[2]!;
  } else {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return undefined;
    }
    if (url.protocol === 'https:' || url.protocol === 'http:') {
      scheme = url.protocol === 'https:' ? 'https' : 'http';
      if (url.port !== '') port = `:${url.port}`;
    } else if (url.protocol === 'ssh:' || url.protocol === 'git+ssh:' || url.protocol === 'git:') {
      scheme = 'https';
    } else {
      return undefined;
    }
    if (url.search !== '' || url.hash !== '') return undefined;
    host = url.hostname;
    try {
      path = decodeURIComponent(url.pathname);
    } catch {
      return undefined;
    }
  }
  host = host.toLowerCase();
  if (!HOST.test(host)) return undefined;
  const forge = KNOWN_HOSTS[host] ?? FIRST_LABEL[host.split('.')[0]!];
  if (forge === undefined) return undefined;
  const parts = path
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
    .split('/');
  // GitLab has groups and subgroups (group/sub/name); the others owner/name.
  if (parts.length < 2 || (forge !== 'gitlab' && parts.length !== 2)) return undefined;
  if (!parts.every((p) => SEGMENT.test(p) && p !== '.' && p !== '..')) return undefined;
  return { forge, web: `${scheme}://${host}${port}/${parts.join('/')}` };
}

/** What a build says of where it came from. */
export interface BuildRef {
  commit: string | null;
  branch: string;
  tag: string | null;
  event: string;
  pullRequest?: number | null;
}

export interface ForgeLinks {
  commit?: string;
  branch?: string;
  tag?: string;
  pullRequest?: string;
}

const SHA = /^[0-9a-f]{7,64}$/i;

/** The links a build's page and row show; empty for an unknown forge. */
export function forgeLinks(repoUrl: string, build: BuildRef): ForgeLinks {
  const repo = forgeRepoOf(repoUrl);
  if (repo === undefined) return {};
  const { forge, web } = repo;
  const ref = (name: string) => name.split('/').map(encodeURIComponent).join('/');
  const gl = forge === 'gitlab' ? '/-' : '';
  const links: ForgeLinks = {};
  if (build.commit !== null && SHA.test(build.commit)) links.commit = `${web}${gl}/commit/${build.commit}`;
  if (build.tag !== null && build.tag !== '') {
    links.tag =
      forge === 'github'
        ? `${web}/releases/tag/${ref(build.tag)}`
        : forge === 'gitlab'
          ? `${web}/-/tags/${ref(build.tag)}`
          : `${web}/src/tag/${ref(build.tag)}`;
  } else if (build.branch !== '') {
    links.branch =
      forge === 'gitea' ? `${web}/src/branch/${ref(build.branch)}` : `${web}${gl}/tree/${ref(build.branch)}`;
  }
  const pr = build.pullRequest;
  if (build.event === 'pull_request' && typeof pr === 'number' && Number.isSafeInteger(pr) && pr > 0) {
    links.pullRequest =
      forge === 'github'
        ? `${web}/pull/${pr}`
        : forge === 'gitlab'
          ? `${web}/-/merge_requests/${pr}`
          : `${web}/pulls/${pr}`;
  }
  return links;
}

/** The first line of a commit message, for lists and titles. */
export function commitTitle(message: string): string {
  return message.split('\n', 1)[0]!.trim();
}

/** `Name` of `Name <e-mail>` (the whole text when there is no address). */
export function authorName(author: string): string {
  const lt = author.indexOf(' <');
  return lt > 0 && author.endsWith('>') ? author.slice(0, lt) : author;
}
