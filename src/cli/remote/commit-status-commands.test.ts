import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import type { Static } from '@sinclair/typebox';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommitStatusSettingsUpdate } from '../../contract/commit-status-api.js';
import {
  registerCommitStatusRoutes,
  type CommitStatusSettingsSchema,
} from '../../server/commit-status/routes.js';
import { SecretCipher } from '../../server/secrets/cipher.js';
import { setSecret } from '../../server/secrets/store.js';
import { startPluginApi, type PluginApi } from '../../server/testing/plugin-api.js';
import { addCommitStatusDelivery } from '../../store/commit-status.js';
import { createBuild, createProject } from '../../store/index.js';
import type { TokenRole } from '../../store/index.js';
import { registerCommitStatusCommands } from './commit-status-commands.js';

// The contract's body and the server's schema must take the same fields: each assignable to the other.
const toContract = (b: Static<typeof CommitStatusSettingsSchema>): CommitStatusSettingsUpdate => b;
const toSchema = (b: CommitStatusSettingsUpdate): Static<typeof CommitStatusSettingsSchema> => b;
void [toContract, toSchema];

describe('slipway project commit-status, against the real API', () => {
  let api: PluginApi;
  let server = '';
  let buildNumber = 0;

  beforeAll(async () => {
    api = await startPluginApi('sqlite', (db) => [(app) => registerCommitStatusRoutes(app, { db })]);
    server = await api.app.listen({ host: '127.0.0.1', port: 0 });
    const p = await createProject(api.t.db, { slug: 'acme/web', repoUrl: 'https://github.com/acme/web.git' });
    await setSecret(api.t.db, new SecretCipher(randomBytes(32)), p.id, {
      name: 'GH_TOKEN',
      value: 'ghp_never-shown',
      allowForks: false,
    });
    const build = await createBuild(api.t.db, {
      projectId: p.id,
      branch: 'main',
      event: 'push',
      trigger: 'manual',
    });
    buildNumber = build.number;
    await addCommitStatusDelivery(api.t.db, {
      buildId: build.id,
      kind: 'status',
      forge: 'github',
      context: 'slipway',
      state: 'failure',
      outcome: 'failed',
      httpStatus: 403,
      attempts: 3,
      message: 'GitHub refused the token (403)',
    });
  });
  afterAll(async () => {
    await api?.close();
  });

  async function cs(role: TokenRole, ...args: string[]) {
    const program = new Command('slipway').exitOverride();
    program.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    let code = -1;
    const [out, err] = [new PassThrough(), new PassThrough()];
    let stdout = '';
    let stderr = '';
    out.on('data', (c: Buffer) => (stdout += c.toString()));
    err.on('data', (c: Buffer) => (stderr += c.toString()));
    registerCommitStatusCommands(program, (c) => (code = c), { stdout: out, stderr: err });
    try {
      await program.parseAsync(
        ['project', 'commit-status', ...args, '--server', server, '--token', api.tokens[role]],
        { from: 'user' },
      );
    } catch (error) {
      // What main() does: a commander or usage error is one line and exit 2.
      stderr += error instanceof Error ? error.message : String(error);
      code = 2;
    }
    return { code, stdout, stderr };
  }

  it('shows, changes only the fields given (admin), and removes the settings with --off', async () => {
    expect(await cs('viewer', 'acme/web')).toEqual({
      code: 0,
      stdout: 'commit statuses: off (no settings; set them with --token-secret)\n',
      stderr: '',
    });
    const first = await cs('admin', 'acme/web', '--contexts', 'stage');
    expect(first.code).toBe(2);
    expect(first.stderr).toMatch(/--token-secret is needed/);

    const refused = await cs('member', 'acme/web', '--token-secret', 'GH_TOKEN');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/admin/);

    const set = await cs('admin', 'acme/web', '--token-secret', 'GH_TOKEN', '--contexts', 'stage');
    expect(set).toEqual({
      code: 0,
      stdout:
        'commit statuses: on\nforge: auto\napi url: default\nrepository: from the repository URL\n' +
        'token secret: GH_TOKEN\ncontexts: stage\nchecks: auto\n' +
        'posts to: github https://api.github.com acme/web\n',
      stderr: '',
    });
    // Only --checks changes: contexts stay `stage`, the token secret stays.
    const json = await cs(
      'admin',
      'acme/web',
      '--checks',
      'off',
      '--repository',
      'acme/mirror',
      '-o',
      'json',
    );
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      enabled: true,
      forge: null,
      tokenSecret: 'GH_TOKEN',
      tokenSecretExists: true,
      contexts: 'stage',
      checks: 'off',
      repository: 'acme/mirror',
      resolved: { forge: 'github', repository: 'acme/mirror' },
    });
    expect(json.stdout).not.toContain('ghp_never-shown');

    const other = await cs(
      'admin',
      'acme/web',
      '--disable',
      '--token-secret',
      'NOT_THERE',
      '--repository',
      '',
    );
    expect(other.stdout).toMatch(/^commit statuses: disabled\n/);
    expect(other.stdout).toMatch(/repository: from the repository URL\n/);
    expect(other.stdout).toMatch(/contexts: stage\nchecks: off\n/);
    expect(other.stderr).toBe(
      'note: there is no secret NOT_THERE for acme/web: nothing is posted until it exists (slipway secret set)\n',
    );
    expect((await cs('viewer', 'acme/web')).stdout).toMatch(/^commit statuses: disabled\n/);

    expect((await cs('member', 'acme/web', '--off')).code).toBe(1);
    expect(await cs('admin', 'acme/web', '--off')).toEqual({
      code: 0,
      stdout: 'commit statuses of acme/web: off\n',
      stderr: '',
    });
    expect((await cs('viewer', 'acme/web')).stdout).toMatch(/^commit statuses: off/);
    // Nothing left to remove: the server's 404, one line, exit 2.
    const again = await cs('admin', 'acme/web', '--off');
    expect(again.code).toBe(2);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
  });

  it("lists a build's posts with --build", async () => {
    const listed = await cs('viewer', 'acme/web', '--build', `#${buildNumber}`);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^AT +KIND +CONTEXT +STATE +OUTCOME +TRIES +MESSAGE\n/);
    expect(listed.stdout).toMatch(
      / status +slipway +failure +failed \(403\) +3 +GitHub refused the token \(403\)\n$/,
    );
    const json = await cs('viewer', 'acme/web', '--build', String(buildNumber), '-o', 'json');
    expect(JSON.parse(json.stdout)).toMatchObject([{ context: 'slipway', outcome: 'failed', attempts: 3 }]);
    expect((await cs('viewer', 'acme/web', '--build', '999')).code).toBe(2);
  });

  it.each([
    [['--forge', 'bitbucket'], /argument 'bitbucket' is invalid/],
    [['--contexts', 'step'], /argument 'step' is invalid/],
    [['--checks', 'on'], /argument 'on' is invalid/],
    [['--token-secret', 'has space'], /--token-secret "has space"/],
    [['--api-url', 'ftp://x'], /--api-url "ftp:\/\/x"/],
    [['--off', '--checks', 'off'], /--off/],
    [['--enable', '--disable'], /cannot be used with/],
    [['--build', 'x'], /build number/],
  ])('refuses %j with one line and exit 2, changing nothing', async (args, message) => {
    // With settings in place, so that a value let through would be stored.
    expect((await cs('admin', 'acme/web', '--token-secret', 'GH_TOKEN')).code).toBe(0);
    const before = (await cs('viewer', 'acme/web')).stdout;
    const bad = await cs('admin', 'acme/web', ...args);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(message);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect((await cs('viewer', 'acme/web')).stdout).toBe(before);
  });

  it('refuses a project that is not owner/name, or unknown', async () => {
    expect((await cs('viewer', 'acme')).code).toBe(2);
    expect((await cs('viewer', 'acme/nothing')).code).toBe(2);
  });
});
