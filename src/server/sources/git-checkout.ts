import { mkdir } from 'node:fs/promises';
import { gitSpawner, runDirect, type GitJob } from './git-spawner.js';

/** A checkout that could not be made; `message` is safe to show in the build's log. */
export class CheckoutError extends Error {
  constructor(
    message: string,
    /** git's reason alone, in one line, when git failed. */
    readonly gitLine: string = message,
  ) {
    super(message);
    this.name = 'CheckoutError';
  }
}

const SHA = /^[0-9a-f]{7,64}$/i;

/** True for a branch or tag name git would accept and that cannot be taken for an option. */
export function isSafeRefName(ref: string): boolean {
  if (ref.length === 0 || ref.length > 255 || ref.startsWith('-')) return false;
  // git check-ref-format rules, plus no shell or control characters at all.
  // eslint-disable-next-line no-control-regex -- control characters are exactly what it rejects
  if (/[\s~^:?*[\\\x00-\x1f\x7f;&|$`'"<>()!{}]/.test(ref)) return false;
  if (ref.includes('..') || ref.includes('@{') || ref.includes('//')) return false;
  if (ref.endsWith('/') || ref.endsWith('.') || ref.endsWith('.lock') || ref.startsWith('/')) return false;
  return ref.split('/').every((part) => part.length > 0 && !part.startsWith('.'));
}

export function isCommitSha(value: string): boolean {
  return SHA.test(value);
}

/** Whether a ref names a branch or a tag; unknown: either, a branch first. */
export type RefKind = 'branch' | 'tag';

export interface CheckoutRequest {
  repoUrl: string;
  /** Branch or tag to build. */
  ref: string;
  /** What `ref` is; without it a branch of that name is taken, else a tag. */
  kind?: RefKind;
  /** Exact commit (4 to 64 hex digits), if known; otherwise the ref's tip. */
  commit?: string;
  dir: string;
  signal?: AbortSignal;
  /** Progress and diagnostics for the build log. */
  log?: (line: string) => void;
}

/** A commit as a person may give it: 4 (git's shortest abbreviation) to 64 (SHA-256) hex digits. */
const COMMIT = /^[0-9a-f]{4,64}$/i;

/**
 * Fetches one ref (or commit) of a repository into `dir` with real git, shallow where the
 * server allows it, and returns the commit checked out. Never goes through a shell, and no
 * input can become a git option: refs and commits are checked first, URLs follow `--`.
 * Failures are one {@link CheckoutError} each, in words: `repository … not found or not
 * readable: <git's reason>`, `branch "x" not found in …`, `tag "v9" not found in …`,
 * `commit abc123 not found on branch main of …`.
 */
export async function checkout(request: CheckoutRequest): Promise<{ commit: string }> {
  const { ref, commit, dir } = request;
  // Credentials travel in git's environment, never in .git/config where a step could read them.
  const { url: repoUrl, auth } = gitAuth(request.repoUrl);
  if (!isSafeRefName(ref)) throw new CheckoutError(`invalid ref "${ref}"`);
  if (commit !== undefined && !COMMIT.test(commit))
    throw new CheckoutError(`invalid commit "${commit}": expected 4 to 64 hexadecimal digits`);
  const found = await findRef({
    repoUrl: request.repoUrl,
    ref,
    ...(request.kind && { kind: request.kind }),
    ...(request.signal && { signal: request.signal }),
  });
  if (!found.found) throw new CheckoutError(found.message);
  const where = `${found.kind} ${ref}`;
  await mkdir(dir, { recursive: true });
  const git = (args: string[]) => runGit(args, dir, request.signal, undefined, auth);
  await git(['init', '--quiet']);
  await git(['remote', 'add', 'origin', '--', repoUrl]);
  request.log?.(`fetching ${where}${commit ? ` at ${commit.slice(0, 12)}` : ''} from ${redactUrl(repoUrl)}`);
  if (commit !== undefined) {
    let fetched = false;
    if (commit.length >= 40) {
      // Servers that allow fetching by SHA save the history; others refuse, and the ref's does.
      fetched = await git(['fetch', '--quiet', '--depth=1', '--no-tags', 'origin', commit]).then(
        () => true,
        () => false,
      );
    }
    if (!fetched) await git(['fetch', '--quiet', '--no-tags', 'origin', found.ref]);
    const full = await git([
      'rev-parse',
      '--verify',
      '--quiet',
      '--end-of-options',
      `${commit}^{commit}`,
    ]).then(
      (out) => out.trim(),
      () => undefined,
    );
    if (full === undefined)
      throw new CheckoutError(`commit ${commit} not found on ${found.kind} ${ref} of ${redactUrl(repoUrl)}`);
    await git(['checkout', '--quiet', '--detach', full]);
  } else {
    await git(['fetch', '--quiet', '--no-tags', 'origin', found.ref]);
    await git(['checkout', '--quiet', '--detach', 'FETCH_HEAD']);
  }
  const head = (await git(['rev-parse', 'HEAD'])).trim();
  return { commit: head };
}

export interface FindRefRequest {
  repoUrl: string;
  ref: string;
  kind?: RefKind;
  signal?: AbortSignal;
  /** Gives up after this long; default 30 s. */
  timeoutMs?: number;
}

/** What {@link findRef} learnt: the full ref name and its commit, or why there is none. */
export type FoundRef =
  | { found: true; kind: RefKind; ref: string; commit: string }
  | {
      found: false;
      /** `ref`: the repository answered without it; `repository`: it could not be read at all. */
      why: 'ref' | 'repository';
      message: string;
    };

/**
 * Asks the repository (`git ls-remote`, no clone) whether a branch or tag exists. Bounded
 * in time; the URL cannot be taken for an option (a leading `-` is refused, and it follows
 * `--`). Never prompts for credentials.
 */
export async function findRef(request: FindRefRequest): Promise<FoundRef> {
  const { ref, kind } = request;
  const { url: repoUrl, auth } = gitAuth(request.repoUrl);
  const shown = redactUrl(repoUrl);
  if (repoUrl.trim() === '' || repoUrl.startsWith('-'))
    return { found: false, why: 'repository', message: `invalid repository URL "${shown}"` };
  if (!isSafeRefName(ref)) return { found: false, why: 'ref', message: `invalid ref "${ref}"` };
  const wanted: Array<[RefKind, string]> = [];
  if (kind !== 'tag') wanted.push(['branch', `refs/heads/${ref}`]);
  if (kind !== 'branch') wanted.push(['tag', `refs/tags/${ref}`]);
  let out: string;
  try {
    out = await runGit(
      ['ls-remote', '--', repoUrl, ...wanted.map(([, name]) => name)],
      undefined,
      request.signal,
      request.timeoutMs ?? 30_000,
      auth,
    );
  } catch (error) {
    const why = error instanceof CheckoutError ? error.gitLine : String(error);
    return {
      found: false,
      why: 'repository',
      message: `repository ${shown} not found or not readable: ${why}`,
    };
  }
  const refs = new Map(
    out
      .split('\n')
      .map((line) => line.split('\t'))
      .filter((parts): parts is [string, string] => parts.length === 2)
      .map(([sha, name]) => [name, sha]),
  );
  for (const [k, name] of wanted) {
    const sha = refs.get(name);
    if (sha !== undefined) return { found: true, kind: k, ref: name, commit: sha };
  }
  const what = kind === undefined ? `branch or tag "${ref}"` : `${kind} "${ref}"`;
  return { found: false, why: 'ref', message: `${what} not found in ${shown}` };
}

/**
 * An http(s) URL's `user:password@` as git's `http.extraHeader` (Basic), and the URL without
 * it: given through the environment, the credentials reach neither `ps` nor `.git/config`.
 */
export function gitAuth(url: string): { url: string; auth: Record<string, string> } {
  const match = /^(https?:\/\/)([^/?#]*)@/i.exec(url);
  if (!match) return { url, auth: {} };
  const [user = '', ...rest] = match[2]!.split(':');
  const plain = (part: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  const basic = Buffer.from(`${plain(user)}:${plain(rest.join(':'))}`).toString('base64');
  return {
    url: `${match[1]}${url.slice(match[0].length)}`,
    auth: {
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.extraHeader',
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
    },
  };
}

/**
 * Runs git without a shell and never prompting; rejects with a {@link CheckoutError} holding
 * git's reason in one line. `env` is added to git's environment (credentials, an index file);
 * `input`, if any, is written to its standard input. git is killed after `timeout`, when
 * `signal` aborts, or when its output passes {@link GIT_MAX_BUFFER}. It is started by the
 * helper of git-spawner.ts (this process is not forked), or from here when there is none.
 */
export async function runGit(
  args: string[],
  cwd: string | undefined,
  signal?: AbortSignal,
  timeout = 10 * 60_000,
  env: Record<string, string> = {},
  input?: string,
): Promise<string> {
  const job: GitJob = {
    args: ['-c', 'protocol.ext.allow=never', '-c', 'advice.detachedHead=false', ...args],
    ...(cwd !== undefined && { cwd }),
    ...(signal !== undefined && { signal }),
    timeout,
    maxBuffer: GIT_MAX_BUFFER,
    ...(input !== undefined && { input }),
    env: {
      ...(process.env as Record<string, string>),
      GIT_TERMINAL_PROMPT: '0',
      GIT_ASKPASS: 'true',
      // ssh must not wait for a host-key or password answer nobody can give.
      GIT_SSH_COMMAND: process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes',
      ...env,
    },
  };
  // From the helper process when there is one: no fork of this (large) process.
  const spawner = gitSpawner();
  const { stdout, stderr, error } = spawner ? await spawner.run(job) : await runDirect(job);
  if (!error) return stdout;
  const line =
    error.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER'
      ? `its output is larger than ${GIT_MAX_BUFFER} bytes (maxBuffer)`
      : error.killed && !signal?.aborted
        ? `no answer within ${Math.round(timeout / 1000)}s`
        : gitReason(stderr, error.message);
  throw new CheckoutError(`git ${args[0]} failed: ${line}`, line);
}

/** What is read of a git's output at most. */
export const GIT_MAX_BUFFER = 16 * 1024 * 1024;

/** git's own reason in one line: its first `fatal:`/`error:` line, without the prefix, credentials hidden. */
function gitReason(stderr: string, fallback: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const line =
    lines.find((l) => /^(fatal|error):/i.test(l)) ?? lines[0] ?? fallback.split('\n')[0] ?? fallback;
  return redactUrl(line.replace(/^(fatal|error):\s*/i, ''));
}

/** Hides credentials embedded in URLs (`https://user:token@host`). */
export function redactUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}
