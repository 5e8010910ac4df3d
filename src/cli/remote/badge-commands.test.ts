import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badgeSettingsRoutes } from '../../server/badges/routes.js';
import { startPluginApi, type PluginApi } from '../../server/testing/plugin-api.js';
import { createProject } from '../../store/index.js';
import type { TokenRole } from '../../store/index.js';
import { registerBadgeCommand } from './badge-commands.js';

describe('slipway badge, against the real API', () => {
  let api: PluginApi;
  let server = '';

  beforeAll(async () => {
    api = await startPluginApi('sqlite', (db) => [(app) => badgeSettingsRoutes(app, { db })]);
    server = await api.app.listen({ host: '127.0.0.1', port: 0 });
    await createProject(api.t.db, { slug: 'acme/web', repoUrl: 'https://github.com/acme/web.git' });
  });
  afterAll(async () => {
    await api?.close();
  });

  async function badge(role: TokenRole, ...args: string[]) {
    const program = new Command('slipway').exitOverride();
    let code = -1;
    const [out, err] = [new PassThrough(), new PassThrough()];
    let stdout = '';
    let stderr = '';
    out.on('data', (c: Buffer) => (stdout += c.toString()));
    err.on('data', (c: Buffer) => (stderr += c.toString()));
    registerBadgeCommand(program, (c) => (code = c), { stdout: out, stderr: err });
    try {
      await program.parseAsync(['badge', ...args, '--server', server, '--token', api.tokens[role]], {
        from: 'user',
      });
    } catch (error) {
      stderr += error instanceof Error ? error.message : String(error);
      code = 2;
    }
    return { code, stdout, stderr };
  }

  it('prints the Markdown; --public and --private switch it (a member may, a viewer may not)', async () => {
    const shown = await badge('viewer', 'acme/web');
    expect(shown).toEqual({
      code: 0,
      stdout: `[![build](${server}/badges/acme/web.svg)](${server}/projects/acme/web)\n`,
      stderr: 'the badge of acme/web is private: it needs a token (make it public with --public)\n',
    });
    const refused = await badge('viewer', 'acme/web', '--public');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/member/);

    const made = await badge('member', 'acme/web', '--public', '--branch', 'release/1');
    expect(made.code).toBe(0);
    expect(made.stderr).toBe('the badge of acme/web is public: it needs no token\n');
    expect(made.stdout).toBe(
      `[![build](${server}/badges/acme/web.svg?branch=release%2F1)](${server}/projects/acme/web)\n`,
    );
    expect((await badge('member', 'acme/web', '--private')).stderr).toMatch(/is private/);
    expect((await badge('member', 'acme/web', '--public', '--private')).code).toBe(2);
    expect((await badge('viewer', 'acme/nothing')).code).toBe(2);
  });
});
