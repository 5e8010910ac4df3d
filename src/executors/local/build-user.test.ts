import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingSink, SHELL_COMMANDS, executorConformance } from '../executor.case.js';
import { WHOLE_DIRECTORY } from '../workspace-seed.js';
import { DEFAULT_BUILD_USER, ensureOwnDirectory, resolveBuildUser, type BuildUser } from './build-user.js';
import { runStep } from '../lifecycle.js';
import { LocalExecutor } from './local-executor.js';

const isRoot = process.getuid?.() === 0;
const all = (sink: RecordingSink): string => sink.lines.map((l) => `${l.text}\n`).join('');
const roots: string[] = [];

/** A workspace root as the server makes it: ours, 0711, so the build user can pass through. */
async function workspaceRoot(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-build-user-'));
  roots.push(dir);
  await chmod(dir, 0o711);
  return dir;
}
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

if (!isRoot) {
  describe('local executor as the build user', () => {
    it('needs root, as the server and CI run', () => {
      throw new Error('run this test as root: only root can start steps as another user');
    });
  });
}

describe.runIf(isRoot)('local executor as the build user', () => {
  let user: BuildUser;
  beforeAll(async () => {
    const resolved = await resolveBuildUser(DEFAULT_BUILD_USER);
    if (resolved.kind !== 'user') throw new Error('expected a build user');
    user = resolved.user;
  });

  executorConformance('local as the build user', SHELL_COMMANDS, async () => {
    const resolved = await resolveBuildUser(DEFAULT_BUILD_USER);
    if (resolved.kind !== 'user') throw new Error('expected a build user');
    const runAs = resolved.user;
    const tmpRoot = await workspaceRoot();
    const make = (): LocalExecutor => new LocalExecutor({ tmpRoot, killGraceMs: 300, runAs });
    return { create: make, reopen: make, hostProcesses: true };
  });

  it("runs steps as the user, without root's groups, with a HOME of its own and nothing of the server's", async () => {
    const root = await workspaceRoot();
    const secret = join(root, 'server-only.txt');
    await writeFile(secret, 'server data\n', { mode: 0o600 });
    const ex = new LocalExecutor({ tmpRoot: root, runAs: user });
    const handle = await ex.prepare({
      buildId: 'as-user-1',
      project: 'acme/web',
      branch: 'main',
      services: [],
    });
    try {
      const sink = new RecordingSink();
      const exit = await runStep(
        ex,
        handle,
        {
          key: 'test/who',
          stage: 'test',
          step: 'who',
          attempt: 1,
          env: {},
          secrets: {},
          commands: [
            'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"',
            'echo "home=$HOME user=$USER logname=$LOGNAME"',
            `cat ${secret} 2>&1 || true`,
            'ls "$(dirname "$PWD")" 2>&1 || true',
            'touch "$HOME/.cache-file" && echo home-writable',
          ],
        },
        sink,
        new AbortController().signal,
      );
      expect(exit, all(sink)).toEqual({ kind: 'exited', exitCode: 0 });
      const out = all(sink);
      expect(out).toContain(`uid=${user.uid} gid=${user.gid} groups=${user.gid}\n`);
      const home = join(handle.workspace, '..', 'home');
      expect(out).toContain(`home=${home} user=${user.name} logname=${user.name}\n`);
      expect(out).toMatch(/server-only\.txt: Permission denied/);
      expect(out).not.toContain('server data');
      // The build root (marker, process records, scripts) cannot be listed by the step.
      expect(out).toMatch(/ls: cannot open directory .*: Permission denied/);
      expect(out).toContain('home-writable');
      expect(((await stat(handle.workspace)).mode & 0o777).toString(8)).toBe('700');
      expect((await stat(handle.workspace)).uid).toBe(user.uid);
      expect((await stat(home)).uid).toBe(user.uid);
    } finally {
      await ex.destroy(handle);
    }
  });

  it("hands the server's clone, moved into the workspace, to the user: every file and link", async () => {
    const root = await workspaceRoot();
    const clone = join(root, 'checkouts', 'b1', 'source');
    await mkdir(join(clone, '.git', 'objects'), { recursive: true });
    await writeFile(join(clone, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    await writeFile(join(clone, 'app.txt'), 'app\n', { mode: 0o644 });
    execFileSync('ln', ['-s', '/etc/shadow', join(clone, 'link')]);
    const ex = new LocalExecutor({ tmpRoot: root, runAs: user });
    const handle = await ex.prepare({
      buildId: 'as-user-2',
      project: 'acme/web',
      branch: 'main',
      services: [],
      sourceDir: clone,
      sourceSeed: { ...WHOLE_DIRECTORY, movable: true },
    });
    try {
      const owners = new Map<string, number>();
      const walk = async (dir: string): Promise<void> => {
        for (const entry of await readdir(dir, { withFileTypes: true })) {
          const path = join(dir, entry.name);
          owners.set(path.slice(handle.workspace.length + 1), (await lstat(path)).uid);
          if (entry.isDirectory()) await walk(path);
        }
      };
      await walk(handle.workspace);
      expect([...owners.keys()].sort()).toEqual(['.git', '.git/HEAD', '.git/objects', 'app.txt', 'link']);
      for (const [path, uid] of owners) expect(uid, path).toBe(user.uid);
      // The link itself changed hands, not what it points to.
      expect((await stat('/etc/shadow')).uid).toBe(0);
    } finally {
      await ex.destroy(handle);
    }
  });
});

describe('resolveBuildUser', () => {
  it.runIf(isRoot)('refuses root as the build user', async () => {
    await expect(resolveBuildUser('root')).rejects.toThrow(
      '--build-user root is root (uid 0, gid 0): builds would own the host',
    );
  });

  it('refuses a name that is no user name', async () => {
    await expect(resolveBuildUser('a b;rm')).rejects.toThrow(
      '--build-user "a b;rm" is not a valid user name',
    );
  });

  it('self is the server user', async () => {
    expect(await resolveBuildUser('self')).toMatchObject({ kind: 'self', uid: process.getuid?.() });
  });
});

describe('ensureOwnDirectory', () => {
  it('refuses a symlink planted where the workspace root goes, and tightens a loose one', async () => {
    const base = await workspaceRoot();
    await mkdir(join(base, 'elsewhere'));
    execFileSync('ln', ['-s', join(base, 'elsewhere'), join(base, 'planted')]);
    await expect(ensureOwnDirectory(join(base, 'planted'), 0o711)).rejects.toThrow(
      `${join(base, 'planted')} is a symbolic link, not a directory of the server's user`,
    );
    await mkdir(join(base, 'loose'), { mode: 0o777 });
    await chmod(join(base, 'loose'), 0o777);
    expect(await ensureOwnDirectory(join(base, 'loose'), 0o711)).toBe(0o777);
    expect(((await stat(join(base, 'loose'))).mode & 0o777).toString(8)).toBe('711');
  });
});
