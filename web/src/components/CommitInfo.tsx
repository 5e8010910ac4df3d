import type { ReactNode } from 'react';
import type { Build } from '../api/types';
import {
  authorName,
  commitTitle,
  forgeLinks,
  forgeRepoOf,
  type ForgeLinks,
} from '../../../src/contract/forge-links.js';
import './commit.css';

/** The forge links of a build, or none while the project (its repository URL) is not loaded. */
export function linksOf(build: Build, repoUrl: string | undefined): ForgeLinks {
  return repoUrl === undefined ? {} : forgeLinks(repoUrl, build);
}

/**
 * Which forge the links go to, for a `data-forge` attribute: `loading` until the project (its
 * repository URL) is there, `none` for a repository on no known forge.
 */
export function forgeState(repoUrl: string | undefined): string {
  return repoUrl === undefined ? 'loading' : (forgeRepoOf(repoUrl)?.forge ?? 'none');
}

/**
 * A link out to the forge. The address comes from `forgeLinks`, which only makes http(s)
 * addresses; React escapes the text. Opened apart, without telling the forge where from.
 */
export function ForgeLink({ href, children, label }: { href: string; children: ReactNode; label: string }) {
  return (
    <a href={href} className="forge-link" target="_blank" rel="noreferrer" aria-label={label} title={label}>
      {children}
    </a>
  );
}

/**
 * A builds-list line under the row: the commit's first line (the whole message on hover),
 * who wrote it, and its pull request.
 */
export function CommitLine({ build, links }: { build: Build; links: ForgeLinks }) {
  const message = build.commitMessage ?? null;
  const author = build.commitAuthor ?? null;
  if (message === null && author === null && links.pullRequest === undefined) return null;
  return (
    <span className="commit-line" data-testid="commit-line">
      {message !== null && (
        <span className="commit-title" title={message} data-testid="commit-title">
          {commitTitle(message)}
        </span>
      )}
      {author !== null && (
        <span className="commit-author muted" title={author} data-testid="commit-author">
          {authorName(author)}
        </span>
      )}
      {links.pullRequest !== undefined && (
        <ForgeLink href={links.pullRequest} label={`pull request #${build.pullRequest} on the forge`}>
          PR #{build.pullRequest}
        </ForgeLink>
      )}
    </span>
  );
}

/**
 * The whole commit message on the build page: its first line, and the rest behind a
 * disclosure when there is more. Kept as text (`white-space: pre-wrap`), never as markup.
 */
export function CommitMessage({ message }: { message: string }) {
  const title = commitTitle(message);
  const body = message.slice(message.indexOf('\n') + 1).trim();
  const hasBody = message.includes('\n') && body !== '';
  return hasBody ? (
    <details className="commit-message" data-testid="commit-message">
      <summary className="commit-title">{title}</summary>
      <p className="commit-body">{body}</p>
    </details>
  ) : (
    <p className="commit-message commit-title" data-testid="commit-message">
      {title}
    </p>
  );
}
