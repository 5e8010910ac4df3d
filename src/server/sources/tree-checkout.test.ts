import { execFileSync } from 'node:child_process';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeCommitReader, CommitReader, type ReadBudget } from './commit-reader.js';
import { makeCheckout } from './git-mirror.js';
import { checkoutTree, configAllows, NotHere, type ObjectSource } from './tree-checkout.js';
import { GIT_ENV } from '../testing/git-repo.js';

let root: string;
let n = 0;
const repos: string[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'slipway-tree-checkout-'));
});

afterAll(async () => {
  for (const repo of repos) closeCommitReader(join(repo, '.git'));
  await rm(root, { recursive: true, force: true });
});

const git = (dir: string, args: string[], input?: string | Buffer) =>
  execFileSync('git', args, {
    cwd: dir,
    env: GIT_ENV,
    encoding: 'utf8',
    ...(input !== undefined && { input }),
  }).trim();

/** A repository whose work tree is `files` (a string is a file, `{ link }` a symlink), committed. */
async function repoOf(files: Record<string, string | Buffer | { link: string } | { exec: string }>) {
  const dir = join(root, `repo-${++n}`);
  await mkdir(dir);
  git(dir, ['init', '--quiet', '-b', 'main']);
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    await mkdir(dirname(path), { recursive: true });
    if (typeof content === 'object' && 'link' in content) await symlink(content.link, path);
    else if (typeof content === 'object' && 'exec' in content) {
      await writeFile(path, content.exec);
      await chmod(path, 0o755);
    } else await writeFile(path, content);
  }
  git(dir, ['add', '-A']);
  git(dir, ['commit', '--quiet', '--allow-empty', '-m', 'files']);
  repos.push(dir);
  return { dir, gitDir: join(dir, '.git'), commit: git(dir, ['rev-parse', 'HEAD']) };
}

/** A source that cannot answer: makeCheckout then takes git's path (what it did before). */
const noSource: ObjectSource = { read: () => Promise.reject(new Error('git path wanted')) };

async function checkoutBoth(repo: { gitDir: string; commit: string }) {
  const fast = join(root, `fast-${++n}`);
  const slow = join(root, `slow-${n}`);
  const fastPath = await makeCheckout(repo.gitDir, fast, repo.commit, 'file:///repo', undefined);
  const slowPath = await makeCheckout(repo.gitDir, slow, repo.commit, 'file:///repo', undefined, noSource);
  expect(slowPath).toBe('git');
  return { fast, slow, fastPath };
}

/** Every path under `dir` but `.git`, with its kind, permission bits and content or target. */
async function filesOf(dir: string, under = ''): Promise<string[]> {
  const found: string[] = [];
  for (const name of (await readdir(join(dir, under))).sort()) {
    if (under === '' && name === '.git') continue;
    const path = join(under, name);
    const stat = await lstat(join(dir, path));
    const mode = (stat.mode & 0o777).toString(8);
    if (stat.isSymbolicLink()) found.push(`link ${path} -> ${await readlink(join(dir, path))}`);
    else if (stat.isDirectory()) found.push(`dir ${path} ${mode}`, ...(await filesOf(dir, path)));
    else found.push(`file ${path} ${mode} ${(await readFile(join(dir, path))).toString('base64')}`);
  }
  return found;
}

/** What a build's checkout must be: the commit, clean, whole. */
function expectWhole(dir: string, commit: string) {
  // First, before any git refreshes the index: its stat data is the files' (none stat-dirty).
  expect(git(dir, ['diff-files', '--name-only'])).toBe('');
  expect(git(dir, ['rev-parse', 'HEAD'])).toBe(commit);
  expect(git(dir, ['log', '-1', '--format=%H'])).toBe(commit);
  expect(git(dir, ['status', '--porcelain'])).toBe('');
  git(dir, ['diff', '--quiet']);
  git(dir, ['fsck', '--full', '--strict', '--no-dangling']);
}

describe('a checkout of a small tree without starting git (real git)', () => {
  it('writes the same files, modes, links and index as read-tree, for names that sort trickily', async () => {
    const binary = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const repo = await repoOf({
      'top.txt': 'top\n',
      empty: '',
      'bin.dat': binary,
      'run.sh': { exec: '#!/bin/sh\necho hi\n' },
      link: { link: 'top.txt' },
      dangling: { link: '../outside/nowhere' },
      'a/b/c/deep.txt': 'deep\n',
      'a/x': 'in a\n',
      'a.b': 'dot\n',
      'a-b': 'dash\n',
      a0: 'zero\n',
      'with space/naïve ü.txt': 'unicode\n',
      Ünïcödé: 'ü\n',
      '.github/workflows/ci.yml': 'on: push\n',
      '.gitignore': 'ignored.txt\n',
    });
    const { fast, slow, fastPath } = await checkoutBoth(repo);
    expect(fastPath).toBe('tree');
    expect(await filesOf(fast)).toEqual(await filesOf(slow));
    expect(git(fast, ['ls-files', '-s'])).toBe(git(slow, ['ls-files', '-s']));
    expect(git(fast, ['ls-files', '-s'])).toContain('100755');
    expect(git(fast, ['ls-files', '-s'])).toContain('120000');
    expectWhole(fast, repo.commit);
    // One pack of the commit, its trees and its blobs, each once; nothing loose.
    const objects = git(slow, ['rev-list', '--objects', 'HEAD']).split('\n').length;
    expect(objects).toBe(23);
    const counted = git(fast, ['count-objects', '-v']);
    expect(counted).toMatch(new RegExp(`^in-pack: ${objects}$`, 'm'));
    expect(counted).toMatch(/^count: 0$/m);
    expect(counted).toMatch(/^packs: 1$/m);
    git(fast, [
      'verify-pack',
      ...(await readdir(join(fast, '.git/objects/pack')))
        .filter((name) => name.endsWith('.idx'))
        .map((name) => join(fast, '.git/objects/pack', name)),
    ]);
    // git reads the index as written: it keeps it, nothing staged or changed after a refresh.
    git(fast, ['update-index', '--refresh']);
    expect(git(fast, ['diff-index', '--cached', 'HEAD'])).toBe('');
  });

  it('takes git’s path for .gitattributes, a submodule and a configuration that converts, as before', async () => {
    const attributes = await repoOf({ '.gitattributes': '*.txt text eol=crlf\n', 'a.txt': 'line\n' });
    const withAttributes = await checkoutBoth(attributes);
    expect(withAttributes.fastPath).toBe('git');
    expect(await readFile(join(withAttributes.fast, 'a.txt'), 'utf8')).toBe('line\r\n');
    expectWhole(withAttributes.fast, attributes.commit);

    const deep = await repoOf({ 'sub/dir/.gitattributes': '* -text\n', f: 'x\n' });
    expect((await checkoutBoth(deep)).fastPath).toBe('git');

    const submodule = await repoOf({ 'f.txt': 'x\n' });
    git(submodule.dir, ['update-index', '--add', '--cacheinfo', `160000,${submodule.commit},lib`]);
    git(submodule.dir, ['commit', '--quiet', '-m', 'submodule']);
    submodule.commit = git(submodule.dir, ['rev-parse', 'HEAD']);
    const withSubmodule = await checkoutBoth(submodule);
    expect(withSubmodule.fastPath).toBe('git');
    expect(git(withSubmodule.fast, ['ls-files', '-s'])).toBe(git(withSubmodule.slow, ['ls-files', '-s']));

    expect(await configAllows(submodule.gitDir, 'core.bare\nfalse\0')).toBe(true);
    expect(await configAllows(submodule.gitDir, 'core.autocrlf\ntrue\0')).toBe(false);
    expect(await configAllows(submodule.gitDir, 'core.autocrlf\0')).toBe(false);
    expect(await configAllows(submodule.gitDir, 'core.autocrlf\ninput\0core.symlinks\ntrue\0')).toBe(true);
    expect(await configAllows(submodule.gitDir, 'core.symlinks\nfalse\0')).toBe(false);
    expect(await configAllows(submodule.gitDir, 'core.attributesFile\n/x\0')).toBe(false);
  });

  it('stops at the entry and byte limits without holding more, and git’s path checks the rest out', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 1001; i++) files[`d${i % 10}/f${i}`] = `${i}\n`;
    const many = await repoOf(files);
    const both = await checkoutBoth(many);
    expect(both.fastPath).toBe('git');
    expect(git(both.fast, ['ls-files', '-s'])).toBe(git(both.slow, ['ls-files', '-s']));

    const small = await repoOf({ a: 'a\n', b: 'b\n', big: 'x'.repeat(10_000) });
    const reader = new CommitReader(small.gitDir);
    try {
      const limited = (limits: { entries: number; bytes: number }) =>
        checkoutTree(reader, join(root, `limited-${++n}`), small.commit, limits);
      await expect(limited({ entries: 2, bytes: 1 << 20 })).rejects.toThrow('more than 2 entries');
      await expect(limited({ entries: 100, bytes: 5_000 })).rejects.toThrow('more than 5000 bytes');
      // What is past the budget is skipped as it streams, and the reader answers the next question.
      const budget: ReadBudget = { left: 100 };
      const big = git(small.dir, ['rev-parse', 'HEAD:big']);
      expect(await reader.read(big, budget)).toBe('too big');
      expect(budget.left).toBe(100);
      expect(await reader.read(git(small.dir, ['rev-parse', 'HEAD:a']), budget)).toEqual({
        type: 'blob',
        body: Buffer.from('a\n'),
      });
      expect(budget.left).toBe(98);
    } finally {
      reader.close();
    }
  });

  it('never writes an entry git refuses (.., .git): git’s path refuses it as before', async () => {
    const repo = await repoOf({ 'f.txt': 'x\n' });
    const blob = git(repo.dir, ['rev-parse', 'HEAD:f.txt']);
    const inner = git(repo.dir, ['mktree'], `100644 blob ${blob}\tescaped.txt\n`);
    for (const name of ['..', '.git', '.GIT', '.git.']) {
      // Written as is: git mktree and hash-object check names no more than a hostile push would.
      const tree = Buffer.concat([
        Buffer.from(`40000 ${name}\0`),
        Buffer.from(inner, 'hex'),
        Buffer.from(`100644 f.txt\0`),
        Buffer.from(blob, 'hex'),
      ]);
      const treeSha = git(repo.dir, ['hash-object', '-t', 'tree', '-w', '--literally', '--stdin'], tree);
      const commit = git(repo.dir, ['commit-tree', treeSha, '-m', `hostile ${name}`]);
      const dir = join(root, `hostile-${++n}`, 'co');
      await expect(makeCheckout(repo.gitDir, dir, commit, 'file:///repo', undefined)).rejects.toMatchObject({
        name: 'MirrorBroken',
      });
      await expect(
        checkoutTree(new CommitReader(repo.gitDir), join(root, `direct-${n}`), commit),
      ).rejects.toThrow(NotHere);
      expect(await readdir(dirname(dir))).toEqual(['co']);
      expect(await readdir(join(dir, '.git'))).not.toContain('escaped.txt');
      closeCommitReader(repo.gitDir);
    }
  });

  it('falls back to git’s path when cat-file dies half way or answers with the wrong object', async () => {
    const repo = await repoOf({ 'a/one.txt': 'one\n', 'two.txt': 'two\n', 'three.txt': 'three\n' });
    const reader = new CommitReader(repo.gitDir);
    try {
      let asked = 0;
      const killing: ObjectSource = {
        read: async (sha, budget) => {
          const answer = reader.read(sha, budget);
          // Killed once asked for the first tree, after it gave the commit: that question fails.
          if (++asked === 2) process.kill(reader.pid!, 'SIGKILL');
          return answer;
        },
      };
      const killed = join(root, `killed-${++n}`);
      expect(await makeCheckout(repo.gitDir, killed, repo.commit, 'file:///repo', undefined, killing)).toBe(
        'git',
      );
      expect(asked).toBeGreaterThan(1);
      expectWhole(killed, repo.commit);

      const lying: ObjectSource = {
        read: async (sha, budget) => {
          const answer = await reader.read(sha, budget);
          return typeof answer === 'object' && answer.type === 'blob'
            ? { type: 'blob', body: Buffer.from('not what was asked\n') }
            : answer;
        },
      };
      const lied = join(root, `lied-${++n}`);
      expect(await makeCheckout(repo.gitDir, lied, repo.commit, 'file:///repo', undefined, lying)).toBe(
        'git',
      );
      expectWhole(lied, repo.commit);
      expect(await readFile(join(lied, 'two.txt'), 'utf8')).toBe('two\n');
    } finally {
      reader.close();
    }
  });
});
