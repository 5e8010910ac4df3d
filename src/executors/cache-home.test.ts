import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheHomeScript, cacheStepDir } from './cache-home.js';

/** Runs a script with the host's POSIX sh (dash here; busybox ash and bash in step images). */
function sh(script: string, env: Record<string, string>, cwd: string) {
  return new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', script], { env: { PATH: process.env.PATH ?? '', ...env }, cwd });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

describe('cacheHomeScript', () => {
  let root: string;
  let home: string;
  let workspace: string;
  let stepDir: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'slipway-cache-home-'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  async function fresh(name: string) {
    home = join(root, name, 'home');
    workspace = join(root, name, 'workspace');
    stepDir = cacheStepDir(join(root, name, 'caches'), 'test/npm (node=20)');
    await mkdir(workspace, { recursive: true });
  }

  it('copies the staged HOME and workspace paths in, runs the commands, keeps the save paths after success', async () => {
    await fresh('ok');
    await mkdir(home, { mode: 0o700 });
    await mkdir(join(stepDir, 'h', '.npm'), { recursive: true });
    await chmod(join(stepDir, 'h'), 0o777);
    await writeFile(join(stepDir, 'h', '.npm', 'index'), 'restored home');
    await mkdir(join(stepDir, 'w', 'node_modules', 'a'), { recursive: true });
    await writeFile(join(stepDir, 'w', 'node_modules', 'a', 'x.js'), 'restored workspace');
    await symlink('a/x.js', join(stepDir, 'w', 'node_modules', 'link'));
    // Quotes, `$` and a here-document: the commands reach their shell as written.
    const commands = [
      `cat "$HOME/.npm/index" node_modules/link; echo " it's \\$HOME=$HOME"`,
      'mkdir -p "$HOME/.cache/deep" && echo new > "$HOME/.cache/deep/f"',
      'cat <<EOF\nheredoc\nEOF',
    ].join('\n');
    const run = await sh(
      cacheHomeScript(commands, { stepDir, save: ['~/.npm', '~/.cache/deep', '~/missing'], workspace }),
      { HOME: home },
      workspace,
    );
    expect(run).toMatchObject({ code: 0, err: '' });
    expect(run.out).toBe(`restored homerestored workspace it's $HOME=${home}\nheredoc\n`);
    // The staging directory's mode (writable by all) is not HOME's.
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    // The workspace's staged files are gone once in place (a retry finds the workspace as it
    // was left); HOME's stay for a retry's fresh HOME; the kept ones wait for the save.
    expect((await readdir(stepDir)).sort()).toEqual(['h', 'keep']);
    expect(await readFile(join(stepDir, 'keep', '.npm', 'index'), 'utf8')).toBe('restored home');
    expect(await readFile(join(stepDir, 'keep', '.cache', 'deep', 'f'), 'utf8')).toBe('new\n');
  });

  it('keeps nothing after a failure and exits with the commands’ status', async () => {
    await fresh('fail');
    await mkdir(join(home, '.npm'), { recursive: true });
    await mkdir(stepDir, { recursive: true });
    const run = await sh(
      cacheHomeScript('echo before\nfalse\necho never', { stepDir, save: ['~/.npm'] }),
      { HOME: home },
      workspace,
    );
    expect(run).toMatchObject({ code: 1, out: 'before\n' });
    expect(await readdir(stepDir)).toEqual([]);
    const exit = await sh(
      cacheHomeScript('exit 7', { stepDir, save: ['~/.npm'] }),
      { HOME: home },
      workspace,
    );
    expect(exit.code).toBe(7);
    // Under `sh -e` (the kubernetes step wrapper runs it so) a failed copy does not end it.
    await mkdir(join(stepDir, 'h'), { recursive: true });
    await writeFile(join(stepDir, 'h', 'f'), 'x');
    const script = cacheHomeScript('echo ran', { stepDir, save: [] });
    const underE = await sh(
      `/bin/sh -e -c "$SCRIPT"`,
      { HOME: join(stepDir, 'h', 'f'), SCRIPT: script },
      workspace,
    );
    expect(underE).toMatchObject({ code: 0, out: 'ran\n' });
  });

  it('passes SIGTERM on to the commands (their trap runs) and exits with their status', async () => {
    await fresh('term');
    await mkdir(stepDir, { recursive: true });
    const script = cacheHomeScript(
      "trap 'echo got TERM; exit 5' TERM\necho armed\nwhile :; do sleep 0.05; done",
      { stepDir, save: ['~/.npm'] },
    );
    // Its own process group: whatever is left of it goes at the end.
    const child = spawn('/bin/sh', ['-c', script], {
      env: { PATH: process.env.PATH ?? '', HOME: home },
      detached: true,
    });
    try {
      let out = '';
      const code = new Promise<number | null>((resolve) => child.on('exit', resolve));
      await new Promise<void>((resolve) =>
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('armed')) resolve();
        }),
      );
      child.kill('SIGTERM');
      expect(await code).toBe(5);
      expect(out).toBe('armed\ngot TERM\n');
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });

  it('says so and runs on when HOME cannot be written', async () => {
    await fresh('readonly');
    await mkdir(join(stepDir, 'h'), { recursive: true });
    await writeFile(join(stepDir, 'h', 'f'), 'x');
    const run = await sh(
      cacheHomeScript('echo ran', { stepDir, save: [] }),
      // A regular file where HOME should be: neither mkdir nor cp can make it a directory.
      { HOME: join(stepDir, 'h', 'f') },
      workspace,
    );
    expect(run.code).toBe(0);
    expect(run.out).toBe('ran\n');
    expect(run.err).toContain('slipway: cache: the restored ~/ paths could not be copied into');
  });
});
