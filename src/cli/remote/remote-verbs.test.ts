import { PassThrough, Readable } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Build } from '../../contract/index.js';
import { hookSettingsRoutes } from '../../server/hooks/settings-routes.js';
import { hookSecret } from '../../server/hooks/store.js';
import { TestRepo } from '../../server/testing/git-repo.js';
import { startPluginApi, type PluginApi } from '../../server/testing/plugin-api.js';
import { createProject, listBuilds, type Project } from '../../store/index.js';
import { main } from '../main.js';
import { NO_TOKEN_MESSAGE } from './api-client.js';
import { registerRemoteCommands } from './commands.js';
import { registerWebhookCommands } from './webhook-commands.js';

/** Captures what a stream is given, calling write callbacks so that drain() resolves. */
function capture(stream: NodeJS.WriteStream): { text: () => string; restore: () => void } {
  let text = '';
  const spy = vi
    .spyOn(stream, 'write')
    .mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      rest.find((arg): arg is () => void => typeof arg === 'function')?.();
      return true;
    });
  return { text: () => text, restore: () => spy.mockRestore() };
}

describe('remote verbs against a real server, real git', () => {
  let api: PluginApi;
  let server = '';
  let repo: TestRepo;
  let web: Project;
  let offline: Project;

  beforeAll(async () => {
    repo = await TestRepo.create({ '.slipway.yml': 'steps:\n  - name: hi\n    commands: [echo hi]\n' });
    repo.git('tag', 'v1');
    api = await startPluginApi('sqlite', (db) => [(app) => hookSettingsRoutes(app, { db })]);
    server = await api.app.listen({ host: '127.0.0.1', port: 0 });
    // Builds of another project first, so that global ids and project numbers differ.
    const other = await createProject(api.t.db, { slug: 'acme/other', repoUrl: repo.url });
    for (let i = 0; i < 3; i += 1)
      await api.call('member', {
        method: 'POST',
        url: `/api/v1/projects/${other.slug}/builds`,
        payload: { branch: 'main' },
      });
    web = await createProject(api.t.db, { slug: 'acme/web', repoUrl: repo.url });
    // Nothing listens on port 1: the repository cannot be asked.
    offline = await createProject(api.t.db, {
      slug: 'acme/offline',
      repoUrl: 'http://127.0.0.1:1/acme/offline.git',
    });
  });

  afterAll(async () => {
    await api?.close();
  });

  beforeEach(() => {
    vi.stubEnv('NO_COLOR', '1');
    vi.stubEnv('SLIPWAY_TOKEN', '');
    vi.stubEnv('SLIPWAY_SERVER', '');
    return () => vi.unstubAllEnvs();
  });

  /** Runs `slipway <args> --server <the server>` in-process, with `stdin` as its input. */
  async function slipway(
    args: string[],
    options: { token?: string | null; stdin?: string } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const token = options.token === undefined ? api.tokens.admin : options.token;
    const program = new Command('slipway').exitOverride();
    let code = -1;
    const exit = (c: number) => (code = c);
    const ioOut = new PassThrough();
    const ioErr = new PassThrough();
    let stdout = '';
    let stderr = '';
    ioOut.on('data', (c: Buffer) => (stdout += c.toString()));
    ioErr.on('data', (c: Buffer) => (stderr += c.toString()));
    registerRemoteCommands(program, exit);
    registerWebhookCommands(program, exit, {
      stdin: Readable.from([Buffer.from(options.stdin ?? '')]),
      stdout: ioOut,
      stderr: ioErr,
    });
    const out = capture(process.stdout);
    const err = capture(process.stderr);
    try {
      await program.parseAsync([...args, '--server', server, ...(token === null ? [] : ['--token', token])], {
        from: 'user',
      });
    } catch (error) {
      stderr += error instanceof Error ? error.message : String(error);
      code = 2;
    } finally {
      out.restore();
      err.restore();
    }
    return { code, stdout: stdout + out.text(), stderr: stderr + err.text() };
  }

  const buildsOf = async (p: Project) => (await listBuilds(api.t.db, { projectId: p.id, limit: 100 })).builds;

  describe('project webhook-secret', () => {
    it('sets the secret from stdin without echoing it', async () => {
      const set = await slipway(['project', 'webhook-secret', web.slug], {
        stdin: 'correct-horse-battery\n',
      });
      expect(set).toEqual({ code: 0, stdout: `webhook secret of ${web.slug} set\n`, stderr: '' });
      expect(await hookSecret(api.t.db, web.id)).toBe('correct-horse-battery');
    });

    it('--generate makes a random secret and prints it once, alone on stdout', async () => {
      const first = await slipway(['project', 'webhook-secret', web.slug, '--generate']);
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
      expect(first.stderr).toContain('shown only now');
      expect(await hookSecret(api.t.db, web.id)).toBe(first.stdout.trim());
      const second = await slipway(['project', 'webhook-secret', web.slug, '--generate']);
      expect(second.stdout).not.toBe(first.stdout);
    });

    it('--remove removes it; bad input and missing rights are clear errors', async () => {
      expect((await slipway(['project', 'webhook-secret', web.slug, '--remove'])).code).toBe(0);
      expect(await hookSecret(api.t.db, web.id)).toBeUndefined();

      const empty = await slipway(['project', 'webhook-secret', web.slug], { stdin: '\n' });
      expect([empty.code, empty.stderr]).toEqual([
        2,
        'project webhook-secret: no value for the webhook secret on stdin',
      ]);
      const short = await slipway(['project', 'webhook-secret', web.slug], { stdin: 'short' });
      expect(short.code).toBe(2);
      expect(short.stderr).toMatch(/^slipway: .*secret/);
      const member = await slipway(['project', 'webhook-secret', web.slug, '--generate'], {
        token: api.tokens.member,
      });
      expect(member.code).toBe(1);
      expect(member.stderr).toMatch(/admin role/);
      expect(member.stdout).toBe('');
      const unknown = await slipway(['project', 'webhook-secret', 'acme/nope', '--generate']);
      expect([unknown.code, unknown.stderr]).toEqual([2, 'slipway: project acme/nope not found\n']);
      expect(await hookSecret(api.t.db, web.id)).toBeUndefined();
    });
  });

  describe('trigger checks the branch', () => {
    it('refuses a branch or tag the repository does not have, and queues nothing', async () => {
      const before = (await buildsOf(web)).length;
      const branch = await slipway(['trigger', web.slug, '--branch', 'nope']);
      expect(branch).toEqual({
        code: 2,
        stdout: '',
        stderr: `slipway: branch "nope" does not exist in ${repo.url}\n`,
      });
      const tag = await slipway(['trigger', web.slug, '--branch', 'main', '--tag', 'v9']);
      expect(tag.stderr).toBe(`slipway: tag "v9" does not exist in ${repo.url}\n`);
      expect((await buildsOf(web)).length).toBe(before);

      const answer = await api.call('member', {
        method: 'POST',
        url: `/api/v1/projects/${web.slug}/builds`,
        payload: { branch: 'nope' },
      });
      expect(answer.statusCode).toBe(400);
      expect(answer.json()).toEqual({
        error: {
          code: 'invalid_request',
          message: `branch "nope" does not exist in ${repo.url}`,
          details: {
            fields: [{ path: 'body.branch', message: `branch "nope" does not exist in ${repo.url}` }],
          },
        },
      });
    });

    it('queues a branch or tag that exists', async () => {
      const main = await slipway(['trigger', web.slug, '--branch', 'main']);
      expect(main).toMatchObject({ code: 0, stderr: '' });
      expect(main.stdout).toMatch(/^acme\/web #\d+ queued\n$/);
      expect((await slipway(['trigger', web.slug, '--branch', 'main', '--tag', 'v1'])).code).toBe(0);
    });

    it('queues with a warning when the repository cannot be asked', async () => {
      const result = await slipway(['trigger', offline.slug, '--branch', 'main']);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^acme\/offline #1 queued\n$/);
      expect(result.stderr).toMatch(
        /^slipway: warning: could not check that branch "main" exists: repository http:\/\/127\.0\.0\.1:1\/acme\/offline\.git not found or not readable: .+; the build will try\n$/,
      );
      expect((await buildsOf(offline)).length).toBe(1);
    });
  });

  it('get build names the build it re-runs by its number, not its id', async () => {
    const first = await slipway(['trigger', web.slug, '--branch', 'main']);
    const number = Number(/#(\d+)/.exec(first.stdout)![1]);
    const original = (await buildsOf(web)).find((b) => b.number === number)!;
    expect(original.id).not.toBe(number);
    const rerun = await api.call('member', {
      method: 'POST',
      url: `/api/v1/builds/${original.id}/rerun`,
      payload: {},
    });
    expect(rerun.statusCode).toBe(201);
    const shown = await slipway(['get', 'build', web.slug, String(rerun.json<Build>().number)]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`\\n  re-run of +#${number}\\n`));
  });

  it('says there is no token when none is set, and that it was refused when it was', async () => {
    const none = await slipway(['get', 'projects'], { token: null });
    expect([none.code, none.stderr]).toEqual([1, `slipway: ${NO_TOKEN_MESSAGE}\n`]);
    const refused = await slipway(['get', 'projects'], { token: 'slp_not-a-real-token' });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'slipway: the server refused the token (it is unknown, revoked or mistyped; check SLIPWAY_TOKEN or --token)\n',
    );
  });
});

describe('slipway --version', () => {
  it.each(['--version', '-V'])('%s prints the version of package.json', async (flag) => {
    const { version } = (await import('../../../package.json', { with: { type: 'json' } })).default;
    const out = capture(process.stdout);
    let code: number;
    try {
      code = await main([flag]);
    } finally {
      out.restore();
    }
    expect(code).toBe(0);
    expect(out.text()).toBe(`${version}\n`);
  });
});
