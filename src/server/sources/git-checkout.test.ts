import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkout, CheckoutError, findRef, isSafeRefName, redactUrl } from './git-checkout.js';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  }).trim();
}

async function repo(): Promise<{ url: string; first: string; second: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-repo-'));
  git(dir, 'init', '--quiet', '-b', 'main');
  await writeFile(join(dir, 'file.txt'), 'one\n');
  git(dir, 'add', '.');
  git(dir, 'commit', '--quiet', '-m', 'one');
  const first = git(dir, 'rev-parse', 'HEAD');
  await writeFile(join(dir, 'file.txt'), 'two\n');
  git(dir, 'commit', '--quiet', '-am', 'two');
  git(dir, 'tag', 'v1');
  return { url: `file://${dir}`, first, second: git(dir, 'rev-parse', 'HEAD') };
}

describe('checkout (real git, file URLs)', () => {
  it('checks out a branch tip, a tag, and an exact older commit', async () => {
    const { url, first, second } = await repo();
    const tip = await mkdtemp(join(tmpdir(), 'slipway-co-'));
    expect(await checkout({ repoUrl: url, ref: 'main', dir: tip })).toEqual({ commit: second });
    expect(await readFile(join(tip, 'file.txt'), 'utf8')).toBe('two\n');

    const tag = await mkdtemp(join(tmpdir(), 'slipway-co-'));
    expect(await checkout({ repoUrl: url, ref: 'v1', dir: tag })).toEqual({ commit: second });

    const old = await mkdtemp(join(tmpdir(), 'slipway-co-'));
    expect(await checkout({ repoUrl: url, ref: 'main', commit: first, dir: old })).toEqual({ commit: first });
    expect(await readFile(join(old, 'file.txt'), 'utf8')).toBe('one\n');
  });

  it('rejects refs with shell metacharacters or option-like names before running git', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slipway-co-'));
    for (const ref of [
      'main;rm -rf /',
      '--upload-pack=touch /tmp/x',
      'a..b',
      'x y',
      '$(id)',
      '`id`',
      'a|b',
    ]) {
      expect(isSafeRefName(ref)).toBe(false);
      await expect(checkout({ repoUrl: 'file:///nonexistent', ref, dir })).rejects.toThrow(/invalid ref/);
    }
    expect(isSafeRefName('release/1.2')).toBe(true);
    expect(isSafeRefName('feature/JIRA-12_x')).toBe(true);
  });

  it('says plainly which branch, tag or commit is missing, in one line', async () => {
    const { url, first } = await repo();
    const dir = () => mkdtemp(join(tmpdir(), 'slipway-co-'));
    await expect(checkout({ repoUrl: url, ref: 'nope', kind: 'branch', dir: await dir() })).rejects.toThrow(
      new CheckoutError(`branch "nope" not found in ${url}`),
    );
    await expect(checkout({ repoUrl: url, ref: 'v9', kind: 'tag', dir: await dir() })).rejects.toThrow(
      new CheckoutError(`tag "v9" not found in ${url}`),
    );
    // A tag is not a branch, and a branch is not a tag.
    await expect(checkout({ repoUrl: url, ref: 'v1', kind: 'branch', dir: await dir() })).rejects.toThrow(
      `branch "v1" not found in ${url}`,
    );
    await expect(checkout({ repoUrl: url, ref: 'main', kind: 'tag', dir: await dir() })).rejects.toThrow(
      `tag "main" not found in ${url}`,
    );
    await expect(checkout({ repoUrl: url, ref: 'nope', dir: await dir() })).rejects.toThrow(
      `branch or tag "nope" not found in ${url}`,
    );
    for (const commit of ['abc123', 'deadbeef'.repeat(5)]) {
      await expect(
        checkout({ repoUrl: url, ref: 'main', kind: 'branch', commit, dir: await dir() }),
      ).rejects.toThrow(new CheckoutError(`commit ${commit} not found on branch main of ${url}`));
    }
    // An abbreviated commit that exists is found.
    expect(
      await checkout({
        repoUrl: url,
        ref: 'main',
        kind: 'branch',
        commit: first.slice(0, 7),
        dir: await dir(),
      }),
    ).toEqual({ commit: first });
  });

  it('never lets a commit or a repository URL become a git option', async () => {
    const { url } = await repo();
    const dir = await mkdtemp(join(tmpdir(), 'slipway-co-'));
    for (const commit of [
      '--upload-pack=touch /tmp/pwned',
      '-h',
      'abc',
      'xyz1234',
      'a'.repeat(65),
      'HEAD~1',
    ]) {
      await expect(checkout({ repoUrl: url, ref: 'main', commit, dir })).rejects.toThrow(
        new CheckoutError(`invalid commit "${commit}": expected 4 to 64 hexadecimal digits`),
      );
    }
    await expect(checkout({ repoUrl: '--upload-pack=touch /tmp/pwned', ref: 'main', dir })).rejects.toThrow(
      'invalid repository URL "--upload-pack=touch /tmp/pwned"',
    );
  });

  it("a missing repository is one line: where, and git's reason, once; credentials hidden", async () => {
    const missing = join(tmpdir(), `slipway-no-such-repo-${process.pid}`);
    const error = await checkout({
      repoUrl: missing,
      ref: 'main',
      dir: await mkdtemp(join(tmpdir(), 'slipway-co-')),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(CheckoutError);
    const message = (error as CheckoutError).message;
    expect(message).toBe(
      `repository ${missing} not found or not readable: '${missing}' does not appear to be a git repository`,
    );
    expect(message).not.toContain('\n');
    expect(redactUrl('fatal: https://bob:tok3n@example.com/x.git not found')).toBe(
      'fatal: https://***@example.com/x.git not found',
    );
    const secretUrl = await findRef({
      repoUrl: 'https://bob:tok3n@127.0.0.1:1/x.git',
      ref: 'main',
      timeoutMs: 60_000,
    });
    expect(secretUrl).toMatchObject({ found: false, why: 'repository' });
    expect(JSON.stringify(secretUrl)).not.toContain('tok3n');
  });
});

describe('findRef (git ls-remote)', () => {
  it('finds a branch or a tag with its commit, or says which is missing', async () => {
    const { url, second } = await repo();
    expect(await findRef({ repoUrl: url, ref: 'main' })).toEqual({
      found: true,
      kind: 'branch',
      ref: 'refs/heads/main',
      commit: second,
    });
    expect(await findRef({ repoUrl: url, ref: 'v1', kind: 'tag' })).toMatchObject({
      found: true,
      kind: 'tag',
    });
    expect(await findRef({ repoUrl: url, ref: 'feature', kind: 'branch' })).toEqual({
      found: false,
      why: 'ref',
      message: `branch "feature" not found in ${url}`,
    });
  });
});
