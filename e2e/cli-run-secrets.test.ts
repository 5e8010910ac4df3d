import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, workdir } from './cli-helpers.js';

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

/** A build whose deploy stage, behind an approval, is the only one that needs a secret. */
const PIPELINE = [
  'stages:',
  '  - name: build',
  '    steps: [{ name: b, commands: ["echo built"] }]',
  '  - name: deploy',
  '    approval: true',
  '    steps:',
  '      - name: ship',
  '        env:',
  '          TOKEN: { from_secret: deploy_token }',
  '        commands: ["echo shipped with $TOKEN"]',
  '',
].join('\n');

describe('slipway run: secrets are resolved per stage, when it runs', () => {
  it('a secret only an approval stage uses is not needed when that stage is skipped', async () => {
    const dir = await workdir({ '.slipway.yml': PIPELINE });
    const result = await runCli(LOCAL, { cwd: dir });
    expect(result.stderr).not.toContain('deploy_token');
    expect(result.stdout).toContain('[build/b] built');
    expect(result.stdout).toMatch(/deploy\s+ship\s+skipped\s+-\s+-\s+approval required/);
    expect(result.code).toBe(0);
  });

  it('approved without the secret, earlier stages run and the step that needs it fails with the reason', async () => {
    const dir = await workdir({ '.slipway.yml': PIPELINE });
    const result = await runCli([...LOCAL, '--approve', '--report', 'report.json'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('[build/b] built');
    expect(result.stdout).not.toContain('shipped');
    expect(result.stdout).toMatch(/deploy\s+ship\s+error\s.*secret "deploy_token" is not defined/);
    const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as {
      status: string;
      stages: { name: string; status: string; steps: { status: string; reason?: { code: string } }[] }[];
    };
    expect(report.status).toBe('error');
    expect(report.stages.map((s) => [s.name, s.status])).toEqual([
      ['build', 'success'],
      ['deploy', 'error'],
    ]);
    expect(report.stages[1]!.steps[0]).toMatchObject({ status: 'error', reason: { code: 'secret' } });
  });

  it('approved with the secret, the stage gets it, masked', async () => {
    const dir = await workdir({ '.slipway.yml': PIPELINE });
    const result = await runCli([...LOCAL, '--approve', '--secret', 'deploy_token=hunter2-secret'], {
      cwd: dir,
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('[deploy/ship] shipped with ********');
    expect(result.stdout).not.toContain('hunter2');
  });
});
