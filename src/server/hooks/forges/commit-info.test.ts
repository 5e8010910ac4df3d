import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { payloadCommit, payloadPullRequest } from './commit-info.js';

const fixture = async (name: string): Promise<unknown> =>
  JSON.parse(await readFile(new URL(`../fixtures/${name}.json`, import.meta.url), 'utf8'));

describe('commit message, author and pull request from webhook payloads', () => {
  it("reads the pushed commit from GitLab's and Gitea's commits list (their documented samples)", async () => {
    expect(payloadCommit(await fixture('gitlab-push'), 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7')).toEqual({
      commitMessage: 'fixed readme',
      commitAuthor: 'GitLab dev user <gitlabdev@dv6700.(none)>',
    });
    expect(payloadCommit(await fixture('gitea-push'), 'bffeb74224043ba2feb48d137756c8a9331c449a')).toEqual({
      commitMessage: 'Webhooks Yay!',
      commitAuthor: 'Gitea <someone@gitea.io>',
    });
    expect(payloadPullRequest(await fixture('gitea-pull-request'))).toEqual({ pullRequest: 2 });
    expect(payloadPullRequest(await fixture('gitlab-merge-request'))).toEqual({ pullRequest: 1 });
  });

  it("takes GitHub's head_commit only for the commit built, and only strings", () => {
    const payload = {
      head_commit: {
        id: 'ABC1234',
        message: 'Add it\n\nWhy.\n',
        author: { name: 'Ada\nLovelace', email: 7 },
      },
      commits: [{ id: 'def5678', message: 'older', author: { name: 'Bob' } }],
    };
    expect(payloadCommit(payload, 'abc1234')).toEqual({
      commitMessage: 'Add it\n\nWhy.',
      commitAuthor: 'Ada Lovelace',
    });
    expect(payloadCommit(payload, 'def5678')).toEqual({ commitMessage: 'older', commitAuthor: 'Bob' });
    expect(payloadCommit(payload, '9999999')).toEqual({});
    expect(payloadCommit(payload, undefined)).toEqual({});
    expect(
      payloadCommit({ head_commit: { id: 'abc1234', message: 'x'.repeat(20_000) } }, 'abc1234').commitMessage,
    ).toHaveLength(16 * 1024);
    expect(payloadPullRequest({ number: '7' })).toEqual({});
    expect(payloadPullRequest({ pull_request: { number: 3.5 } })).toEqual({});
  });
});
