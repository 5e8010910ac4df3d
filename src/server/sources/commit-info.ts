import { execFile } from 'node:child_process';

/** What the build pages show of a commit. */
export interface CommitInfo {
  /** The whole message, trimmed; cut at {@link MAX_MESSAGE_CHARS}. */
  message: string;
  /** `Name <e-mail>`, or the name alone when the commit has no address; empty when git has neither. */
  author: string;
}

/** A message longer than this is cut (with `…`): a page shows its first line, nobody reads 1 MB. */
export const MAX_MESSAGE_CHARS = 16 * 1024;
/** A name and address longer than this are cut. */
export const MAX_AUTHOR_CHARS = 512;

/**
 * The message and author of `commit` in the checkout at `dir`, as git records them. Rejects
 * when git fails (the commit is not there); callers treat that as "unknown", never as a
 * failed build. The fields come from a repository anyone may push to: they are capped here,
 * and shown as text (never markup) by whoever displays them.
 */
export function readCommitInfo(dir: string, commit: string, signal?: AbortSignal): Promise<CommitInfo> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      // %x00 separates the fields: a NUL cannot occur in a name, an address or a message.
      ['log', '-1', '--no-show-signature', `--format=${COMMIT_INFO_FORMAT}`, '--end-of-options', commit],
      {
        cwd: dir,
        ...(signal !== undefined && { signal }),
        timeout: 60_000,
        killSignal: 'SIGKILL',
        maxBuffer: 8 * 1024 * 1024,
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
      },
      (error, stdout) => {
        if (error) return reject(new Error(`git log of ${commit} failed: ${error.message}`));
        resolve(parseCommitInfo(stdout));
      },
    );
  });
}

/** The format {@link parseCommitInfo} reads: fields separated by NUL, the message last. */
export const COMMIT_INFO_FORMAT = '%an%x00%ae%x00%B';

/** What git printed with {@link COMMIT_INFO_FORMAT}, capped. */
export function parseCommitInfo(stdout: string): CommitInfo {
  const [name = '', email = '', ...rest] = stdout.split('\0');
  return { message: cut(rest.join('\0').trim(), MAX_MESSAGE_CHARS), author: authorLine(name, email) };
}

/** `Name <e-mail>`, the name alone without an address, or the address alone without a name. */
export function authorLine(name: string | undefined, email: string | undefined): string {
  const n = oneLine(name ?? '');
  const e = oneLine(email ?? '');
  const line = n && e ? `${n} <${e}>` : n || e;
  return cut(line, MAX_AUTHOR_CHARS);
}

function oneLine(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it removes
  return text.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
