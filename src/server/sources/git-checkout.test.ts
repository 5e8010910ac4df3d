import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkout, isSafeRefName, redactUrl } from './git-checkout.js';

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

  it("a missing branch fails with git's words, without credentials", async () => {
    const { url } = await repo();
    const dir = await mkdtemp(join(tmpdir(), 'slipway-co-'));
    await expect(checkout({ repoUrl: url, ref: 'nope', dir })).rejects.toThrow(/git fetch failed/);
    expect(redactUrl('fatal: https://bob:tok3n@example.com/x.git not found')).toBe(
      'fatal: https://***@example.com/x.git not found',
    );
  });
});
