// `slipway run` seeds the workspace with what git would commit: not the ignored node_modules,
// not .git (unless asked), with symlinks and executable bits as they are. Real git, real
// processes, real Podman (localhost/busybox:latest).
import { execFileSync } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.js';

const IGNORED_FILES = 3000;
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Test',
  GIT_AUTHOR_EMAIL: 'test@example.com',
  GIT_COMMITTER_NAME: 'Test',
  GIT_COMMITTER_EMAIL: 'test@example.com',
};

const COMMANDS = [
  'echo "files $(find . -type f | wc -l)"',
  'if test -f notes.txt; then echo untracked-present; fi',
  'if test -L link.js; then echo "link $(readlink link.js)"; fi',
  'if test -x run.sh; then ./run.sh; fi',
  'if test -d node_modules; then echo "node_modules $(find node_modules -type f | wc -l)"; else echo no-node_modules; fi',
  'if test -f .git/HEAD; then echo has-git; else echo no-git; fi',
];

function pipeline(image?: string): string {
  return [
    ...(image ? [`image: ${image}`] : []),
    'steps:',
    '  - name: look',
    '    commands:',
    ...COMMANDS.map((c) => `      - ${JSON.stringify(c)}`),
    '',
  ].join('\n');
}

let dir: string;
let head: string;
/** Regular files git would commit: what `find . -type f` must count in the workspace. */
let committable: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slipway-e2e-seed-'));
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: dir, env: GIT_ENV, encoding: 'utf8' }).trim();
  await writeFile(join(dir, '.slipway.yml'), pipeline());
  await writeFile(join(dir, 'docker.yml'), pipeline('localhost/busybox:latest'));
  await writeFile(join(dir, '.gitignore'), 'node_modules/\n');
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'app.js'), 'console.log("app")\n');
  await writeFile(join(dir, 'run.sh'), '#!/bin/sh\necho executable-ran\n');
  await chmod(join(dir, 'run.sh'), 0o755);
  await symlink('src/app.js', join(dir, 'link.js'));
  await writeFile(join(dir, 'deleted.txt'), 'tracked, then deleted\n');
  git('init', '--quiet', '-b', 'main');
  git('add', '-A');
  git('commit', '--quiet', '-m', 'initial');
  head = git('rev-parse', 'HEAD');
  await rm(join(dir, 'deleted.txt'));
  await writeFile(join(dir, 'notes.txt'), 'untracked, not ignored\n');
  for (let p = 0; p < IGNORED_FILES / 100; p++) {
    const pkg = join(dir, 'node_modules', `pkg-${p}`);
    await mkdir(pkg, { recursive: true });
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => writeFile(join(pkg, `f${i}.js`), `module.exports = ${i};\n`)),
    );
  }
  const listed = git('ls-files', '-z', '--cached', '--others', '--exclude-standard').split('\0');
  const regular = await Promise.all(
    listed
      .filter(Boolean)
      .map(async (p) => (await lstat(join(dir, p)).catch(() => undefined))?.isFile() === true),
  );
  committable = regular.filter(Boolean).length;
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FACTS = ['--branch', 'main', '--commit', 'abc123', '--project', 'acme/web', '--no-color'];

describe.each([
  ['local', ['--executor', 'local']],
  ['docker', ['--executor', 'docker', '--pull', 'never', '-f', 'docker.yml']],
])('slipway run --executor %s seeds the workspace from a git checkout', (_name, executorArgs) => {
  it('with what git would commit: no ignored node_modules, no .git; symlinks and exec bits kept', async () => {
    expect(committable).toBe(6); // .slipway.yml docker.yml .gitignore src/app.js run.sh notes.txt
    const result = await runCli(['run', ...executorArgs, ...FACTS], { cwd: dir });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`[default/look] files ${committable}\n`);
    expect(result.stdout).toContain('[default/look] untracked-present\n');
    expect(result.stdout).toContain('[default/look] link src/app.js\n');
    expect(result.stdout).toContain('[default/look] executable-ran\n');
    expect(result.stdout).toContain('[default/look] no-node_modules\n');
    expect(result.stdout).toContain('[default/look] no-git\n');
    expect(result.stderr).not.toContain('every file');
  }, 120_000);

  it('--include-ignored copies the ignored files too, --with-git the history', async () => {
    const result = await runCli(['run', ...executorArgs, ...FACTS, '--include-ignored', '--with-git'], {
      cwd: dir,
    });
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain(`[default/look] node_modules ${IGNORED_FILES}\n`);
    expect(result.stdout).toContain('[default/look] has-git\n');
    expect(result.stdout).toContain('[default/look] link src/app.js\n');
    expect(result.stdout).toContain('[default/look] executable-ran\n');
  }, 120_000);
});

describe('slipway run seeding, local executor', () => {
  it('--with-git gives a .git that git can read (git log works in the workspace)', async () => {
    const gitLog = await mkdtemp(join(tmpdir(), 'slipway-e2e-seed-git-'));
    try {
      await writeFile(
        join(gitLog, '.slipway.yml'),
        'steps:\n  - name: log\n    commands: ["echo \\"head $(git rev-parse HEAD)\\""]\n',
      );
      execFileSync('git', ['init', '--quiet', '-b', 'main'], { cwd: gitLog, env: GIT_ENV });
      execFileSync('git', ['add', '-A'], { cwd: gitLog, env: GIT_ENV });
      execFileSync('git', ['commit', '--quiet', '-m', 'one'], { cwd: gitLog, env: GIT_ENV });
      const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: gitLog, encoding: 'utf8' }).trim();
      const result = await runCli(['run', '--executor', 'local', ...FACTS, '--with-git'], { cwd: gitLog });
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toContain(`[default/log] head ${sha}\n`);
    } finally {
      await rm(gitLog, { recursive: true, force: true });
    }
  }, 120_000);

  it('outside a git work tree copies everything and says so', async () => {
    const plain = await mkdtemp(join(tmpdir(), 'slipway-e2e-seed-plain-'));
    try {
      await writeFile(join(plain, '.slipway.yml'), pipeline());
      await mkdir(join(plain, 'node_modules'));
      await writeFile(join(plain, 'node_modules', 'x.js'), 'x\n');
      const result = await runCli(['run', '--executor', 'local', ...FACTS], { cwd: plain });
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stderr).toBe(
        `slipway: ${plain}: not in a git work tree, so every file is copied into the workspace\n`,
      );
      expect(result.stdout).toContain('[default/look] node_modules 1\n');
    } finally {
      await rm(plain, { recursive: true, force: true });
    }
  }, 120_000);

  it('the checkout itself is left as it was (never moved or changed by seeding)', () => {
    expect(execFileSync('git', ['status', '--porcelain'], { cwd: dir, encoding: 'utf8' })).toBe(
      ' D deleted.txt\n?? notes.txt\n',
    );
    expect(execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim()).toBe(head);
  });
});
