import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, workdir } from './cli-helpers.js';

const COMMON = [
  'env: { FROM: common }',
  'stages:',
  '  - name: common',
  '    steps:',
  '      - name: hello',
  '        commands: ["echo common says $FROM"]',
  '',
].join('\n');

/** `include:` through the built command: files from the working tree, never from outside it. */
describe('slipway validate and run: include', () => {
  it('runs the included stage first, from the working tree', async () => {
    const dir = await workdir({
      '.slipway.yml':
        'include: [{ file: ci/common.yml }]\nsteps:\n  - name: own\n    commands: ["echo own sees $FROM"]\n',
    });
    await mkdir(join(dir, 'ci'));
    await workdirFile(dir, 'ci/common.yml', COMMON);
    const result = await runCli(
      ['run', '--executor', 'local', '--branch', 'main', '--commit', 'abc', '--project', 'acme/web'],
      { cwd: dir },
    );
    expect(result.stdout).toContain('[common/hello] common says common');
    expect(result.stdout).toContain('[default/own] own sees common');
    expect(result.stdout.indexOf('common says')).toBeLessThan(result.stdout.indexOf('own sees'));
    expect(result.code).toBe(0);
  });

  it('validate points into the included file, and refuses a symlink out of the repository and other projects', async () => {
    const dir = await workdir({
      '.slipway.yml': [
        'include:',
        '  - file: ci/bad.yml',
        '  - file: ci/out.yml',
        '  - { project: acme/ci, ref: v1, file: ci/node.yml }',
        'steps: [{ name: s, commands: [x] }]',
        '',
      ].join('\n'),
    });
    await mkdir(join(dir, 'ci'));
    await workdirFile(
      dir,
      'ci/bad.yml',
      'stages:\n  - name: b\n    steps:\n      - name: x\n        comands: [x]\n',
    );
    await symlink('/etc/passwd', join(dir, 'ci/out.yml'));
    const result = await runCli(['validate'], { cwd: dir });
    expect(result.stderr.split('\n').filter(Boolean)).toEqual([
      '.slipway.yml:3:5: cannot include ci/out.yml at include[1]: ci/out.yml is a symbolic link that leads out of the repository',
      expect.stringMatching(
        /^\.slipway\.yml:4:5: cannot include acme\/ci@v1:ci\/node\.yml at include\[2\]: files of another project \(acme\/ci\) are read by the server/,
      ),
      'ci/bad.yml:5:9: unknown key "comands" at stages[0].steps[0]; did you mean "commands"?',
    ]);
    expect(result.code).toBe(2);
  });
});

function workdirFile(dir: string, name: string, text: string): Promise<void> {
  return writeFile(join(dir, name), text);
}
