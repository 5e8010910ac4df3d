import { resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeRepoUrl } from './repo-url.js';

/** A name part as forges allow it: letters, digits, `-`, `_`, `.` (not only dots). */
const part = fc
  .stringMatching(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}$/)
  .filter((s) => !/\.git$/i.test(s) && !s.endsWith('.'));
const host = fc
  .array(fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/), { minLength: 1, maxLength: 3 })
  .map((labels) => [...labels, 'example'].join('.'));
const randomCase = (text: string, flips: boolean[]) =>
  [...text].map((c, i) => (flips[i % Math.max(1, flips.length)] ? c.toUpperCase() : c)).join('');

describe('normalizeRepoUrl', () => {
  it('maps the spellings of one repository on a server to one form', () => {
    const same = [
      'https://github.com/Acme/Web.git',
      'https://github.com/acme/web',
      'http://github.com/acme/web/',
      'HTTPS://GitHub.COM/acme/web.git/',
      'https://bob:s3cret@github.com/acme/web.git',
      'ssh://git@github.com:22/acme/web.git',
      'git://github.com/acme/web',
      'git@github.com:acme/web.git',
      'github.com:acme/web',
      '  https://github.com//acme//web  ',
    ];
    for (const url of same) expect(normalizeRepoUrl(url), url).toBe('https://github.com/acme/web');
  });

  it('maps a path and a file:// URL of one repository on this machine to one form, keeping case', () => {
    const same = [
      '/tmp/x/Repo.git',
      '/tmp/x/Repo',
      '/tmp/x/Repo/',
      '/tmp/x/Repo/.git',
      '/tmp//x/./Repo.git/',
      'file:///tmp/x/Repo.git',
      'file://localhost/tmp/x/Repo',
      'FILE:///tmp/x/Repo/',
    ];
    for (const url of same) expect(normalizeRepoUrl(url), url).toBe('file:///tmp/x/Repo');
    expect(normalizeRepoUrl('/tmp/x/repo')).not.toBe(normalizeRepoUrl('/tmp/x/Repo'));
    expect(normalizeRepoUrl('./repo.git')).toBe(`file://${resolve('repo')}`);
    expect(normalizeRepoUrl('/tmp/with space/r#1')).toBe('file:///tmp/with%20space/r%231');
  });

  it('refuses what is not a repository URL, or could be taken for an option', () => {
    for (const url of [
      '',
      '   ',
      '-uhttps://x/y',
      '--upload-pack=touch /tmp/x',
      'not a url',
      'https://host',
      '/',
      'file://other-host/x',
    ])
      expect(normalizeRepoUrl(url), url).toBeUndefined();
  });

  it('is idempotent (property)', () => {
    const anyUrl = fc.oneof(
      fc.string(),
      fc.webUrl(),
      fc.tuple(host, part, part).map(([h, o, n]) => `git@${h}:${o}/${n}.git`),
      fc.array(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 4 }).map((p) => `/${p.join('/')}`),
      fc
        .array(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 4 })
        .map((p) => `file:///${p.join('/')}`),
    );
    fc.assert(
      fc.property(anyUrl, (url) => {
        const once = normalizeRepoUrl(url);
        if (once !== undefined) expect(normalizeRepoUrl(once)).toBe(once);
      }),
      { numRuns: 2000 },
    );
  });

  it('gives equal forms of a server repository the same result, and different repositories different ones (property)', () => {
    const spelling = fc.record({
      scheme: fc.constantFrom('https', 'http', 'ssh', 'git', 'scp'),
      user: fc.option(fc.constantFrom('git', 'bob:tok3n', 'x-access-token:abc'), { nil: undefined }),
      port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
      dotGit: fc.boolean(),
      slash: fc.boolean(),
      flips: fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
    });
    fc.assert(
      fc.property(host, part, part, spelling, spelling, (h, owner, name, a, b) => {
        const write = (s: typeof a, repo = name) => {
          const path =
            randomCase(`${owner}/${repo}`, s.flips) + (s.dotGit ? '.git' : '') + (s.slash ? '/' : '');
          const hostCased = randomCase(h, s.flips);
          if (s.scheme === 'scp') return `${s.user === undefined ? '' : 'git@'}${hostCased}:${path}`;
          const user = s.user === undefined ? '' : `${s.user}@`;
          const port = s.port === undefined ? '' : `:${s.port}`;
          return `${s.scheme}://${user}${hostCased}${port}/${path}`;
        };
        const first = normalizeRepoUrl(write(a));
        expect(first).toBe(`https://${h}/${owner.toLowerCase()}/${name.toLowerCase()}`);
        expect(normalizeRepoUrl(write(b))).toBe(first);
        expect(normalizeRepoUrl(write(b, `${name}-other`))).not.toBe(first);
      }),
      { numRuns: 1000 },
    );
  });

  it('gives a path and its file:// URL the same result (property)', () => {
    fc.assert(
      fc.property(
        fc.array(part, { minLength: 1, maxLength: 4 }),
        fc.constantFrom('', '/', '.git', '.git/', '/.git'),
        fc.constantFrom('', '/', '.git', '/.git/'),
        (parts, suffixA, suffixB) => {
          const path = `/${parts.join('/')}`;
          const plain = normalizeRepoUrl(path + suffixA);
          expect(plain).toBe(`file://${path}`);
          expect(normalizeRepoUrl(`file://${path}${suffixB}`)).toBe(plain);
        },
      ),
      { numRuns: 500 },
    );
  });
});
