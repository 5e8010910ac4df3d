import { authorLine, MAX_MESSAGE_CHARS } from '../../sources/commit-info.js';
import { field, text } from './payload.js';

/** A commit's message and author as a push payload tells them. */
export interface PayloadCommit {
  commitMessage?: string;
  commitAuthor?: string;
}

/**
 * The message and author of the pushed `commit` from a push payload, where the forge sends
 * them: GitHub's and Gitea's `head_commit`, and the `commits` list GitHub, GitLab and Gitea
 * send (the entry whose `id` is the commit). Empty when the payload has neither, as for pull
 * requests, tag pushes and the generic hook: the checkout fills them then. The payload is
 * untrusted: only strings are taken, capped; pages show them as text.
 */
export function payloadCommit(payload: unknown, commit: string | undefined): PayloadCommit {
  const head = field(payload, 'head_commit');
  const listed = field(payload, 'commits');
  const candidates: unknown[] = [head, ...(Array.isArray(listed) ? (listed as unknown[]) : [])];
  const match = candidates.find(
    (c) => commit !== undefined && text(c, 'id')?.toLowerCase() === commit.toLowerCase(),
  );
  if (match === undefined) return {};
  const message = text(match, 'message')?.trim();
  const author = authorLine(text(match, 'author', 'name'), text(match, 'author', 'email'));
  return {
    ...(message && {
      commitMessage:
        message.length > MAX_MESSAGE_CHARS ? `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…` : message,
    }),
    ...(author && { commitAuthor: author }),
  };
}

/**
 * The number of the pull request a pull-request payload is about: GitHub's and Gitea's
 * `number` (or `pull_request.number`), GitLab's merge request `object_attributes.iid` (the
 * number its pages show, not the global `id`). Empty when there is none.
 */
export function payloadPullRequest(payload: unknown): { pullRequest?: number } {
  const found = [
    field(payload, 'number'),
    field(payload, 'pull_request', 'number'),
    field(payload, 'object_attributes', 'iid'),
  ].find((n): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n > 0);
  return found === undefined ? {} : { pullRequest: found };
}
