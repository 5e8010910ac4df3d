import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect, eventually, processAlive, runCli, startCli, workdir } from './cli-helpers.js';

const LOCAL = [
  'run',
  '--executor',
  'local',
  '--branch',
  'main',
  '--commit',
  'abc123',
  '--project',
  'acme/web',
];

describe('slipway run (local executor, real processes)', () => {
  it('streams prefixed logs, prints a summary and writes the report', async () => {
    const dir = await workdir({
      '.slipway.yml': [
        'env: { GREETING: hello }',
        'stages:',
        '  - name: test',
        '    steps:',
        '      - name: unit',
        '        commands:',
        '          - echo "${GREETING} from build ${SLIPWAY_BUILD_NUMBER} on $SLIPWAY_BRANCH"',
        '          - echo to-stderr >&2',
        '      - name: lint',
        '        commands: ["exit 4"]',
        '        allow_failure: true',
        '  - name: package',
        '    steps:',
        '      - name: compile',
        '        commands: ["echo built > out.txt"]',
        '      - name: archive',
        '        needs: [compile]',
        '        commands: ["cat out.txt"]',
        '',
      ].join('\n'),
    });
    const result = await runCli([...LOCAL, '--number', '7', '--report', 'report.json'], { cwd: dir });
    // The only notice: a directory outside git is copied whole (e2e/cli-seed.test.ts).
    expect(result.stderr).toBe(
      `slipway: ${dir}: not in a git work tree, so every file is copied into the workspace\n`,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('[test/unit] hello from build 7 on main\n');
    expect(result.stdout).toContain('[test/unit] to-stderr\n');
    expect(result.stdout).toContain('[package/archive] built\n');
    expect(result.stdout).toMatch(/test\s+lint\s+failure\s+\S+\s+4\s+allowed to fail; exited with code 4/);
    expect(result.stdout).toMatch(/Build success in /);
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as Record<string, unknown>;
    expect(report).toMatchObject({
      status: 'success',
      stages: [
        {
          name: 'test',
          status: 'success',
          steps: [
            { name: 'unit', status: 'success', exitCode: 0, attempts: 1 },
            { name: 'lint', status: 'failure', exitCode: 4, attempts: 1, reason: { code: 'exit_code' } },
          ],
        },
        { name: 'package', status: 'success' },
      ],
    });
    expect(typeof report.durationMs).toBe('number');
  });

  it('exits 1 when the build fails, and 2 for an invalid file with file:line:col', async () => {
    const failing = await workdir({ '.slipway.yml': 'steps:\n  - name: x\n    commands: ["exit 3"]\n' });
    const failed = await runCli(LOCAL, { cwd: failing });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/Build failure in/);

    const invalid = await workdir({ '.slipway.yml': 'steps:\n  - name: x\n    comands: ["true"]\n' });
    const bad = await runCli(LOCAL, { cwd: invalid });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(
      '.slipway.yml:3:5: unknown key "comands" at steps[0]; did you mean "commands"?',
    );
    expect(bad.stdout).toBe('');

    const missing = await runCli([...LOCAL, '-f', 'nope.yml'], { cwd: invalid });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yml: no such file');
    expect(missing.stderr).not.toMatch(/\n\s+at /);

    const usage = await runCli(['run', '--executor', 'nomad'], { cwd: invalid });
    expect(usage.code).toBe(2);

    const noCluster = await runCli(['run', '--executor', 'kubernetes', '--kubeconfig', 'missing.yaml'], {
      cwd: failing,
    });
    expect(noCluster.code).toBe(2);
    expect(noCluster.stderr).toBe('slipway: kubeconfig missing.yaml: no such file\n');
  });

  it('--env overrides the file, --secret values are masked', async () => {
    const dir = await workdir({
      '.slipway.yml': [
        'env: { TARGET: file }',
        'steps:',
        '  - name: x',
        '    env:',
        '      TOKEN: { from_secret: api_token }',
        '    commands:',
        '      - echo "target=${TARGET}"',
        '      - echo "token=$TOKEN"',
        '',
      ].join('\n'),
    });
    const result = await runCli([...LOCAL, '--env', 'TARGET=cli', '--secret', 'api_token=hunter2-secret'], {
      cwd: dir,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('[default/x] target=cli');
    expect(result.stdout).toContain('[default/x] token=********');
    expect(result.stdout).not.toContain('hunter2');
  });

  it('approval stages: skipped with "approval required" unless --approve', async () => {
    const dir = await workdir({
      '.slipway.yml':
        'stages:\n  - name: build\n    steps: [{ name: b, commands: ["echo built"] }]\n  - name: deploy\n    approval: true\n    steps: [{ name: ship, commands: ["echo shipped"] }]\n',
    });
    const skipped = await runCli(LOCAL, { cwd: dir });
    expect(skipped.code).toBe(0);
    expect(skipped.stdout).toMatch(/deploy\s+ship\s+skipped\s+-\s+-\s+approval required/);
    expect(skipped.stdout).not.toContain('shipped');
    const approved = await runCli([...LOCAL, '--approve'], { cwd: dir });
    expect(approved.stdout).toContain('[deploy/ship] shipped');
  });

  it('a timeout kills the step and the background child it spawned', async () => {
    const dir = await workdir({
      '.slipway.yml':
        'steps:\n  - name: slow\n    timeout: 1s\n    commands:\n      - sleep 300 & echo $! > bg.pid\n      - sleep 300\n',
    });
    const result = await runCli([...LOCAL, '--workdir', dir], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('timed out after 1s');
    const pid = Number(await readFile(join(dir, 'bg.pid'), 'utf8'));
    await eventually(() => !processAlive(pid), 10_000);
  });

  it('Ctrl-C cancels: running steps are killed, the result is cancelled, exit 130', async () => {
    const dir = await workdir({
      '.slipway.yml':
        'steps:\n  - name: wait\n    commands:\n      - echo $$ > step.pid\n      - sleep 300 & echo $! > bg.pid\n      - echo started\n      - sleep 300\n',
    });
    const child = startCli([...LOCAL, '--workdir', dir, '--report', 'report.json'], { cwd: dir });
    const done = collect(child);
    let seen = '';
    child.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await eventually(() => seen.includes('[default/wait] started'));
    child.kill('SIGINT');
    const result = await done;
    expect(result.code).toBe(130);
    expect(result.stdout).toMatch(/Build cancelled in/);
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { status: string };
    expect(report.status).toBe('cancelled');
    for (const file of ['step.pid', 'bg.pid']) {
      const pid = Number(await readFile(join(dir, file), 'utf8'));
      await eventually(() => !processAlive(pid), 10_000);
    }
  });
});

describe('slipway validate and schema', () => {
  it('prints ok, or every error with its position, exit 2', async () => {
    const dir = await workdir({
      'good.yml': 'steps:\n  - name: x\n    commands: [echo hi]\n',
      'bad.yml': 'steps:\n  - name: x\n    commands: [echo "${NOPE}"]\n    retries: -1\n',
    });
    const ok = await runCli(['validate', '-f', 'good.yml'], { cwd: dir });
    expect(ok).toMatchObject({ code: 0, stdout: 'ok\n' });
    const bad = await runCli(['validate', '-f', 'bad.yml'], { cwd: dir });
    expect(bad.code).toBe(2);
    const lines = bad.stderr.trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line).toMatch(/^bad\.yml:\d+:\d+: /);
  });

  it('prints a JSON Schema', async () => {
    const dir = await workdir({});
    const result = await runCli(['schema'], { cwd: dir });
    expect(result.code).toBe(0);
    const schema = JSON.parse(result.stdout) as { type: string; properties: Record<string, unknown> };
    expect(schema.type).toBe('object');
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['image', 'env', 'services', 'stages', 'steps']),
    );
  });
});
