import { execFileSync } from 'node:child_process';
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  rm,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { copySeed, listSeed, tarFileList, type SeedEntry } from './workspace-seed.js';
import { GIT_ENV } from '../server/testing/git-repo.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-seed-'));
  dirs.push(dir);
  return dir;
}

async function files(dir: string, content: Record<string, string>): Promise<void> {
  for (const [name, text] of Object.entries(content)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
  }
}

function git(dir: string, ...args: string[]): void {
  execFileSync('git', args, { cwd: dir, env: GIT_ENV, stdio: 'ignore' });
}

/** A checkout: tracked files (one executable, one symlink, one deleted since), an untracked
 * file, and ignored node_modules and build output. */
async function checkout(): Promise<string> {
  const dir = await tempDir();
  await files(dir, {
    '.gitignore': 'node_modules/\n/dist\n',
    'src/app.js': 'app\n',
    'run.sh': '#!/bin/sh\necho hi\n',
    'gone.txt': 'deleted later\n',
    'node_modules/pkg/index.js': 'ignored\n',
    'dist/out.js': 'ignored too\n',
  });
  await chmod(join(dir, 'run.sh'), 0o755);
  await symlink('src/app.js', join(dir, 'link.js'));
  git(dir, 'init', '--quiet', '-b', 'main');
  git(dir, 'add', '-A');
  git(dir, 'commit', '--quiet', '-m', 'init');
  await rm(join(dir, 'gone.txt'));
  await files(dir, { 'notes/untracked.md': 'not ignored\n' });
  return dir;
}

const paths = (entries: readonly SeedEntry[]) => entries.map((e) => `${e.kind}:${e.path}`).sort();

describe('listSeed', () => {
  it('in a git work tree takes tracked and untracked-not-ignored files, not ignored ones nor .git', async () => {
    const dir = await checkout();
    const list = await listSeed(dir, { select: 'git', withGit: false });
    expect(list.selected).toBe('git');
    expect(paths(list.entries)).toEqual([
      'dir:notes',
      'dir:src',
      'file:.gitignore',
      'file:notes/untracked.md',
      'file:run.sh',
      'file:src/app.js',
      'symlink:link.js',
    ]);
    expect(list.entries.find((e) => e.path === 'run.sh')!.mode).toBe(0o755);
  });

  it('in a subdirectory of a work tree takes that subdirectory only, relative to it', async () => {
    const dir = await checkout();
    const list = await listSeed(join(dir, 'src'), { select: 'git', withGit: true });
    expect(paths(list.entries)).toEqual(['file:app.js']);
  });

  it('withGit adds .git, select all adds the ignored files', async () => {
    const dir = await checkout();
    const withGit = await listSeed(dir, { select: 'git', withGit: true });
    expect(paths(withGit.entries)).toContain('file:.git/HEAD');
    expect(paths(withGit.entries)).not.toContain('file:node_modules/pkg/index.js');
    const all = await listSeed(dir, { select: 'all', withGit: false });
    expect(all.selected).toBe('all');
    expect(paths(all.entries)).toContain('file:node_modules/pkg/index.js');
    expect(paths(all.entries)).toContain('file:dist/out.js');
    expect(paths(all.entries).some((p) => p.includes('.git/'))).toBe(false);
  });

  it('outside git takes everything and says why', async () => {
    const dir = await tempDir();
    await files(dir, { 'a.txt': 'a', 'node_modules/x.js': 'x' });
    await mkdir(join(dir, 'empty'));
    const list = await listSeed(dir, { select: 'git', withGit: false });
    expect(list.selected).toBe('all');
    expect(list.note).toBe('not in a git work tree, so every file is copied');
    expect(paths(list.entries)).toEqual([
      'dir:empty',
      'dir:node_modules',
      'file:a.txt',
      'file:node_modules/x.js',
    ]);
  });

  it('never reads below a tracked directory that became a symlink out of the tree', async () => {
    const dir = await tempDir();
    const outside = await tempDir();
    await files(outside, { 'secret.txt': 'outside\n' });
    await files(dir, { 'conf/secret.txt': 'inside\n' });
    git(dir, 'init', '--quiet', '-b', 'main');
    git(dir, 'add', '-A');
    git(dir, 'commit', '--quiet', '-m', 'init');
    await rm(join(dir, 'conf'), { recursive: true });
    await symlink(outside, join(dir, 'conf'));
    const list = await listSeed(dir, { select: 'git', withGit: false });
    // git lists the tracked conf/secret.txt (and the untracked symlink conf); only the link is taken.
    expect(paths(list.entries)).toEqual(['symlink:conf']);
  });

  it('a missing directory is an error naming it', async () => {
    const dir = await tempDir();
    await expect(listSeed(join(dir, 'nope'), { select: 'git', withGit: false })).rejects.toThrow(
      `${join(dir, 'nope')} does not exist`,
    );
  });
});

describe('copySeed', () => {
  it('copies files with modes and times, symlinks as symlinks, skips files gone since the listing', async () => {
    const dir = await checkout();
    await files(dir, { '-rf': 'a name that looks like an option\n' });
    await utimes(join(dir, 'src/app.js'), 1_000_000, 1_000_000);
    const list = await listSeed(dir, { select: 'git', withGit: false });
    await rm(join(dir, 'notes/untracked.md'));
    const to = await tempDir();
    await copySeed(dir, to, list.entries);
    expect(await readFile(join(to, 'src/app.js'), 'utf8')).toBe('app\n');
    expect(await readFile(join(to, '-rf'), 'utf8')).toBe('a name that looks like an option\n');
    expect((await lstat(join(to, 'run.sh'))).mode & 0o777).toBe(0o755);
    expect((await lstat(join(to, 'src/app.js'))).mtimeMs).toBe(1_000_000_000);
    expect((await lstat(join(to, 'link.js'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(to, 'link.js'))).toBe('src/app.js');
    await expect(lstat(join(to, 'node_modules'))).rejects.toThrow(/ENOENT/);
    await expect(lstat(join(to, 'notes/untracked.md'))).rejects.toThrow(/ENOENT/);
  });

  it('tarFileList prefixes every name with ./ so that tar never reads one as an option', () => {
    const list = tarFileList([
      { path: '--checkpoint-action=exec=id', kind: 'file', mode: 0o644 },
      { path: 'a b', kind: 'dir', mode: 0o755 },
    ]);
    expect(list.toString()).toBe('./--checkpoint-action=exec=id\0./a b\0');
  });
});
