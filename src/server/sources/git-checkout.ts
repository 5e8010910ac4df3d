import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';

/** A checkout that could not be made; `message` is safe to show in the build's log. */
export class CheckoutError extends Error {
  constructor(message: string) {
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

export interface CheckoutRequest {
  repoUrl: string;
  /** Branch or tag to build. */
  ref: string;
  /** Exact commit, if known; otherwise the ref's tip. */
  commit?: string;
  dir: string;
  signal?: AbortSignal;
  /** Progress and diagnostics for the build log. */
  log?: (line: string) => void;
}

/**
 * Fetches one ref (or commit) of a repository into `dir` with real git, shallow where the
 * server allows it, and returns the commit checked out. Never goes through a shell.
 */
export async function checkout(request: CheckoutRequest): Promise<{ commit: string }> {
  const { repoUrl, ref, commit, dir } = request;
  if (!isSafeRefName(ref)) throw new CheckoutError(`invalid ref "${ref}"`);
  if (commit !== undefined && !isCommitSha(commit)) throw new CheckoutError(`invalid commit "${commit}"`);
  await mkdir(dir, { recursive: true });
  const git = (args: string[]) => runGit(args, dir, request.signal);
  await git(['init', '--quiet']);
  await git(['remote', 'add', 'origin', '--', repoUrl]);
  request.log?.(`fetching ${ref}${commit ? ` at ${commit.slice(0, 12)}` : ''} from ${redactUrl(repoUrl)}`);
  if (commit !== undefined) {
    try {
      await git(['fetch', '--quiet', '--depth=1', '--no-tags', 'origin', commit]);
    } catch {
      // Servers that refuse fetching by SHA: fetch the ref's history and pick the commit.
      await fetchRef(git, ref);
    }
    await git(['checkout', '--quiet', '--detach', commit]);
  } else {
    await fetchRef(git, ref);
    await git(['checkout', '--quiet', '--detach', 'FETCH_HEAD']);
  }
  const head = (await git(['rev-parse', 'HEAD'])).trim();
  return { commit: head };
}

async function fetchRef(git: (args: string[]) => Promise<string>, ref: string): Promise<void> {
  try {
    await git(['fetch', '--quiet', '--no-tags', 'origin', `refs/heads/${ref}`]);
  } catch {
    await git(['fetch', '--quiet', '--no-tags', 'origin', `refs/tags/${ref}`]);
  }
}

function runGit(args: string[], cwd: string, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      ['-c', 'protocol.ext.allow=never', '-c', 'advice.detachedHead=false', ...args],
      {
        cwd,
        signal,
        timeout: 10 * 60_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true' },
      },
      (error, stdout, stderr) => {
        if (error)
          reject(new CheckoutError(`git ${args[0]} failed: ${redactUrl(stderr.trim() || error.message)}`));
        else resolve(stdout);
      },
    );
  });
}

/** Hides credentials embedded in URLs (`https://user:token@host`). */
export function redactUrl(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}
