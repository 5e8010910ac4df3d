/**
 * Reading included files: from a directory (the build's checkout, the working tree) and from
 * another project's mirror at a pinned ref. Real git repositories and files; no engine.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRepoFile } from '../../executors/repo-files.js';
import { TestRepo } from '../testing/git-repo.js';
import { CheckoutError } from './git-checkout.js';
import { readMirrorFile } from './git-mirror.js';

let root: string;
let repo: TestRepo;
let first: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'slipway-includes-'));
  repo = await TestRepo.create({ 'ci/node.yml': 'first\n', 'big.yml': 'x'.repeat(2000) });
  repo.git('tag', 'v1');
  first = repo.git('rev-parse', 'HEAD');
  await symlink('node.yml', join(repo.dir, 'ci/link.yml'));
  await repo.commit({ 'ci/node.yml': 'second\n' });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(repo.dir, { recursive: true, force: true });
});

describe('readRepoFile', () => {
  it('reads files and symlinks inside; refuses links out, FIFOs, directories and files over the bound unread', async () => {
    const dir = join(root, 'tree');
    await mkdir(join(dir, 'ci'), { recursive: true });
    await writeFile(join(dir, 'ci/a.yml'), 'a: 1\n');
    await symlink('a.yml', join(dir, 'ci/in.yml'));
    await symlink('/etc/hostname', join(dir, 'ci/out.yml'));
    await mkdir(join(dir, '.git'));
    await writeFile(join(dir, '.git/config'), '[core]\n');
    await symlink('../.git/config', join(dir, 'ci/git.yml'));
    await writeFile(join(dir, 'big.yml'), 'x'.repeat(100));
    execFileSync('mkfifo', [join(dir, 'fifo.yml')]);
    expect(await readRepoFile(dir, 'ci/a.yml', 1000)).toEqual({ ok: true, text: 'a: 1\n' });
    expect(await readRepoFile(dir, 'ci/in.yml', 1000)).toEqual({ ok: true, text: 'a: 1\n' });
    expect(await readRepoFile(dir, 'ci/out.yml', 1000)).toEqual({
      ok: false,
      message: 'ci/out.yml is a symbolic link that leads out of the repository',
    });
    expect(await readRepoFile(dir, 'ci/git.yml', 1000)).toEqual({
      ok: false,
      message: 'ci/git.yml leads into .git; include files of the repository',
    });
    expect(await readRepoFile(dir, 'fifo.yml', 1000)).toEqual({
      ok: false,
      message: 'fifo.yml is not a file',
    });
    expect(await readRepoFile(dir, 'ci', 1000)).toEqual({ ok: false, message: 'ci is not a file' });
    expect(await readRepoFile(dir, 'big.yml', 99)).toEqual({ ok: false, tooBig: 100 });
    expect(await readRepoFile(dir, 'none.yml', 99)).toEqual({
      ok: false,
      message: 'no file none.yml in the repository',
    });
  });
});

describe('readMirrorFile', () => {
  const read = (ref: string, file = 'ci/node.yml', maxBytes = 1000) =>
    readMirrorFile({ repoUrl: repo.url, mirror: join(root, 'mirror.git'), ref, file, maxBytes });

  it('reads a file at a tag or a commit, not at the branch tip', async () => {
    expect(await read('v1')).toEqual({ text: 'first\n' });
    expect(await read(first)).toEqual({ text: 'first\n' });
    expect(await read(repo.git('rev-parse', 'HEAD'))).toEqual({ text: 'second\n' });
  });

  it('refuses a branch, an unknown tag, a symlink, a directory, a missing file and a blob over the bound', async () => {
    await expect(read('main')).rejects.toThrow(CheckoutError);
    await expect(read('main')).rejects.toThrow(/"main" is a branch of .*a branch moves/);
    await expect(read('v9')).rejects.toThrow(/no tag "v9"/);
    await expect(read('0'.repeat(40))).rejects.toThrow(/commit 0{40} not found/);
    const head = repo.git('rev-parse', 'HEAD');
    expect(await read(head, 'ci/link.yml')).toEqual({
      missing: 'ci/link.yml is a symbolic link; include the file it points to',
    });
    expect(await read(head, 'ci')).toEqual({ missing: 'ci is not a file' });
    expect(await read(head, 'ci/none.yml')).toEqual({ missing: 'no file ci/none.yml' });
    expect(await read('v1', 'big.yml', 1999)).toEqual({ tooBig: 2000 });
  });
});
