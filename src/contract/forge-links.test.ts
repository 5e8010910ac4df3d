import { describe, expect, it } from 'vitest';
import { authorName, commitTitle, forgeLinks, forgeRepoOf } from './forge-links.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const push = { commit: SHA, branch: 'feature/a b', tag: null, event: 'push' };

describe('forge links from a repository URL', () => {
  it('knows GitHub, GitLab, Gitea and Forgejo in https, ssh and scp-like forms', () => {
    expect(forgeRepoOf('https://github.com/acme/web.git')).toEqual({
      forge: 'github',
      web: 'https://github.com/acme/web',
    });
    expect(forgeRepoOf('git@github.com:acme/web.git')).toEqual({
      forge: 'github',
      web: 'https://github.com/acme/web',
    });
    expect(forgeRepoOf('ssh://git@gitlab.com:2222/group/sub/web.git')).toEqual({
      forge: 'gitlab',
      web: 'https://gitlab.com/group/sub/web',
    });
    expect(forgeRepoOf('http://gitea.local:3000/acme/web/')).toEqual({
      forge: 'gitea',
      web: 'http://gitea.local:3000/acme/web',
    });
    expect(forgeRepoOf('https://x-token:***@codeberg.org/acme/web')).toEqual({
      forge: 'gitea',
      web: 'https://codeberg.org/acme/web',
    });
    expect(forgeRepoOf('git@forgejo.acme.dev:acme/web.git')?.forge).toBe('gitea');
    expect(forgeRepoOf('https://gitlab.acme.dev/acme/web')?.forge).toBe('gitlab');
  });

  it('makes the links of each forge, encoding branch names', () => {
    expect(forgeLinks('https://github.com/acme/web', push)).toEqual({
      commit: `https://github.com/acme/web/commit/${SHA}`,
      branch: 'https://github.com/acme/web/tree/feature/a%20b',
    });
    const pr = { ...push, event: 'pull_request', pullRequest: 12 };
    expect(forgeLinks('git@gitlab.com:g/web.git', pr)).toEqual({
      commit: `https://gitlab.com/g/web/-/commit/${SHA}`,
      branch: 'https://gitlab.com/g/web/-/tree/feature/a%20b',
      pullRequest: 'https://gitlab.com/g/web/-/merge_requests/12',
    });
    expect(forgeLinks('https://gitea.com/acme/web', pr)).toEqual({
      commit: `https://gitea.com/acme/web/commit/${SHA}`,
      branch: 'https://gitea.com/acme/web/src/branch/feature/a%20b',
      pullRequest: 'https://gitea.com/acme/web/pulls/12',
    });
    expect(forgeLinks('https://github.com/acme/web', { ...push, tag: 'v1.0', event: 'tag' })).toEqual({
      commit: `https://github.com/acme/web/commit/${SHA}`,
      tag: 'https://github.com/acme/web/releases/tag/v1.0',
    });
  });

  it('gives no link for an unknown forge, a local path, or anything that is not a plain http(s) address', () => {
    for (const url of [
      'https://git.example.com/acme/web.git',
      'file:///srv/git/web.git',
      '/srv/git/web.git',
      'javascript:alert(1)//github.com/a/b',
      'javascript://github.com/a/b',
      'github.com:acme/web"><script>',
      'https://github.com/acme/web/extra',
      'https://github.com/acme/../web',
      'https://github.com/acme/web?x=1',
      'data:text/html,github.com/a/b',
      'https://evil.com#github.com/a/b',
      '',
    ]) {
      expect(forgeRepoOf(url), url).toBeUndefined();
      expect(forgeLinks(url, push), url).toEqual({});
    }
    // A commit that is not a SHA and a pull request number that is not one are left out.
    expect(
      forgeLinks('https://github.com/a/b', {
        ...push,
        commit: 'HEAD',
        event: 'pull_request',
        pullRequest: -1,
      }),
    ).toEqual({
      branch: 'https://github.com/a/b/tree/feature/a%20b',
    });
  });

  it("a message's first line and an author's name", () => {
    expect(commitTitle('Fix it\n\nBecause.')).toBe('Fix it');
    expect(authorName('Ada Lovelace <ada@example.com>')).toBe('Ada Lovelace');
    expect(authorName('ada')).toBe('ada');
  });
});
