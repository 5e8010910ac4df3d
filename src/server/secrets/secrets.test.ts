import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerSecretCommands } from '../../cli/remote/secret-commands.js';
import { getSealedSecret, putSealedSecret, setHeadRepoFork } from '../../store/index.js';
import type { Project } from '../../store/index.js';
import { DIALECTS } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import { rowWhere } from '../../store/testing/inspect.js';
import { startPluginApi } from '../testing/plugin-api.js';
import type { PluginApi } from '../testing/plugin-api.js';
import { SecretCipher } from './cipher.js';
import { registerSecretRoutes } from './routes.js';
import { secretsFor } from './source.js';
import { deleteSecret, listSecrets, setSecret } from './store.js';

const VALUE = 'hunter2-correct-horse-battery';

describe.each(DIALECTS)('secrets (%s)', (dialect) => {
  let api: PluginApi;
  let project: Project;
  let other: Project;
  const cipher = new SecretCipher(randomBytes(32));

  beforeAll(async () => {
    api = await startPluginApi(dialect, (db) => [(app) => registerSecretRoutes(app, { db, cipher })]);
    project = await makeProject(api.t.db, { slug: `acme/web-${dialect}` });
    other = await makeProject(api.t.db, { slug: `acme/other-${dialect}` });
  });
  afterAll(async () => {
    await api?.close();
  });

  const base = () => `/api/v1/projects/${project.slug}/secrets`;

  describe('store', () => {
    it('keeps only the sealed value in the database', async () => {
      await setSecret(api.t.db, cipher, project.id, { name: 'STORE_CHECK', value: VALUE, allowForks: false });
      const row = await rowWhere(api.t.db, 'secrets', 'name', 'STORE_CHECK');
      expect(row.value_sealed).toMatch(/^v1\./);
      expect(row.value_sealed).not.toContain(VALUE);
      expect(JSON.stringify(row)).not.toContain(VALUE);
    });

    it('keeps project and global secrets of one name apart, and globals unique', async () => {
      await setSecret(api.t.db, cipher, null, { name: 'SHARED', value: 'global-value', allowForks: false });
      await setSecret(api.t.db, cipher, null, { name: 'SHARED', value: 'global-value-2', allowForks: true });
      await setSecret(api.t.db, cipher, project.id, {
        name: 'SHARED',
        value: 'project-value',
        allowForks: false,
      });
      expect((await listSecrets(api.t.db, null)).filter((s) => s.name === 'SHARED')).toEqual([
        expect.objectContaining({ allowForks: true }),
      ]);
      expect((await listSecrets(api.t.db, project.id)).map((s) => s.name)).toContain('SHARED');
      expect((await listSecrets(api.t.db, other.id)).map((s) => s.name)).not.toContain('SHARED');
      expect(await deleteSecret(api.t.db, other.id, 'SHARED')).toBe(false);
    });

    it('refuses values too short to mask and names that are not names', async () => {
      await expect(
        setSecret(api.t.db, cipher, project.id, { name: 'X', value: 'ab', allowForks: false }),
      ).rejects.toThrow(/at least 3 characters/);
      await expect(
        setSecret(api.t.db, cipher, project.id, { name: 'X', value: 'a\nb\n', allowForks: false }),
      ).rejects.toThrow(/at least 3/);
      await expect(
        setSecret(api.t.db, cipher, project.id, { name: 'bad name', value: VALUE, allowForks: false }),
      ).rejects.toThrow(/invalid/);
      await expect(
        setSecret(api.t.db, cipher, project.id, { name: '-x', value: VALUE, allowForks: false }),
      ).rejects.toThrow(/invalid/);
    });
  });

  describe('routes', () => {
    it('admins set and replace secrets; no answer ever contains the value', async () => {
      const created = await api.call('admin', {
        method: 'PUT',
        url: `${base()}/DEPLOY_TOKEN`,
        payload: { value: VALUE },
      });
      expect(created.statusCode, created.body).toBe(201);
      expect(created.body).not.toContain(VALUE);
      expect(created.json()).toEqual({
        name: 'DEPLOY_TOKEN',
        allowForks: false,
        createdAt: expect.any(String) as unknown,
        updatedAt: expect.any(String) as unknown,
      });
      const replaced = await api.call('admin', {
        method: 'PUT',
        url: `${base()}/DEPLOY_TOKEN`,
        payload: { value: `${VALUE}-2`, allowForks: true },
      });
      expect(replaced.statusCode).toBe(200);
      expect(replaced.body).not.toContain(VALUE);
      expect(replaced.json()).toMatchObject({ allowForks: true });
      for (const role of ['admin', 'member', 'viewer'] as const) {
        const listed = await api.call(role, { method: 'GET', url: base() });
        expect(listed.statusCode).toBe(200);
        expect(listed.body).not.toContain(VALUE);
        expect(listed.body).not.toContain('v1.');
        expect(listed.json<{ name: string }[]>().map((s) => s.name)).toContain('DEPLOY_TOKEN');
        expect(Object.keys(listed.json<object[]>()[0]!).sort()).toEqual([
          'allowForks',
          'createdAt',
          'name',
          'updatedAt',
        ]);
      }
      const openapi = await api.call(null, { method: 'GET', url: '/api/v1/openapi.json' });
      expect(openapi.body).not.toContain(VALUE);
    });

    it('members and viewers cannot set or delete; nobody without a token may list', async () => {
      for (const role of ['member', 'viewer'] as const) {
        expect(
          (await api.call(role, { method: 'PUT', url: `${base()}/NOPE`, payload: { value: VALUE } }))
            .statusCode,
        ).toBe(403);
        expect((await api.call(role, { method: 'DELETE', url: `${base()}/DEPLOY_TOKEN` })).statusCode).toBe(
          403,
        );
        expect(
          (await api.call(role, { method: 'PUT', url: '/api/v1/secrets/NOPE', payload: { value: VALUE } }))
            .statusCode,
        ).toBe(403);
      }
      expect((await api.call(null, { method: 'GET', url: base() })).statusCode).toBe(401);
      expect((await api.call(null, { method: 'GET', url: '/api/v1/secrets' })).statusCode).toBe(401);
      expect((await listSecrets(api.t.db, project.id)).map((s) => s.name)).not.toContain('NOPE');
    });

    it('refuses bad input with 400/404 and writes nothing', async () => {
      const before = await listSecrets(api.t.db, project.id);
      const cases = [
        { url: `${base()}/bad%20name`, payload: { value: VALUE }, status: 400 },
        { url: `${base()}/OK`, payload: { value: 'ab' }, status: 400 },
        { url: `${base()}/OK`, payload: { value: '' }, status: 400 },
        { url: `${base()}/OK`, payload: { value: VALUE, extra: 1 }, status: 400 },
        { url: `${base()}/OK`, payload: { value: 'x'.repeat(70_000) }, status: 400 },
        { url: `/api/v1/projects/acme/missing/secrets/OK`, payload: { value: VALUE }, status: 404 },
      ];
      for (const c of cases) {
        const res = await api.call('admin', { method: 'PUT', url: c.url, payload: c.payload });
        expect(res.statusCode, `${c.url} ${res.body}`).toBe(c.status);
        expect(res.body).not.toContain(VALUE);
      }
      expect(await listSecrets(api.t.db, project.id)).toEqual(before);
    });

    it('deletes, then answers 404', async () => {
      await api.call('admin', { method: 'PUT', url: `${base()}/TO_DELETE`, payload: { value: VALUE } });
      expect((await api.call('admin', { method: 'DELETE', url: `${base()}/TO_DELETE` })).statusCode).toBe(
        204,
      );
      expect((await api.call('admin', { method: 'DELETE', url: `${base()}/TO_DELETE` })).statusCode).toBe(
        404,
      );
    });

    it('manages global secrets under /secrets the same way', async () => {
      const put = await api.call('admin', {
        method: 'PUT',
        url: '/api/v1/secrets/GLOBAL_ONE',
        payload: { value: VALUE, allowForks: true },
      });
      expect(put.statusCode).toBe(201);
      expect(put.body).not.toContain(VALUE);
      const list = await api.call('viewer', { method: 'GET', url: '/api/v1/secrets' });
      expect(list.body).not.toContain(VALUE);
      expect(
        list.json<{ name: string; allowForks: boolean }[]>().find((s) => s.name === 'GLOBAL_ONE'),
      ).toMatchObject({ allowForks: true });
      expect(
        (await api.call('admin', { method: 'DELETE', url: '/api/v1/secrets/GLOBAL_ONE' })).statusCode,
      ).toBe(204);
      expect(
        (await api.call('admin', { method: 'DELETE', url: '/api/v1/secrets/GLOBAL_ONE' })).statusCode,
      ).toBe(404);
    });
  });

  describe('secretsFor', () => {
    it('gives a project secret over a global one of the same name, and a global one otherwise', async () => {
      await setSecret(api.t.db, cipher, null, { name: 'LAYERED', value: 'from-global', allowForks: false });
      await setSecret(api.t.db, cipher, project.id, {
        name: 'LAYERED',
        value: 'from-project',
        allowForks: false,
      });
      const build = await makeBuild(api.t.db, project.id, { event: 'push' });
      const otherBuild = await makeBuild(api.t.db, other.id, { event: 'push' });
      const source = secretsFor({ db: api.t.db, cipher });
      expect(await source(project, build).get('LAYERED')).toBe('from-project');
      expect(await source(other, otherBuild).get('LAYERED')).toBe('from-global');
      expect(await source(project, build).get('NOT_THERE')).toBeUndefined();
    });

    it('withholds secrets from pull requests of forks unless a secret allows them, and says so in the log', async () => {
      await setSecret(api.t.db, cipher, project.id, {
        name: 'FORK_NO',
        value: 'fork-no-value',
        allowForks: false,
      });
      await setSecret(api.t.db, cipher, project.id, {
        name: 'FORK_YES',
        value: 'fork-yes-value',
        allowForks: true,
      });
      const source = secretsFor({ db: api.t.db, cipher });
      const forkPr = await makeBuild(api.t.db, project.id, { event: 'pull_request', branch: 'feature' });
      await setHeadRepoFork(api.t.db, forkPr.id, true);
      const notes: string[] = [];
      const fromFork = source(project, forkPr, (text) => notes.push(text));
      expect(await fromFork.get('FORK_NO')).toBe('');
      expect(await fromFork.get('FORK_YES')).toBe('fork-yes-value');
      expect(notes).toEqual(['secret FORK_NO withheld: pull request from a fork']);

      const ownPr = await makeBuild(api.t.db, project.id, { event: 'pull_request', branch: 'feature-2' });
      await setHeadRepoFork(api.t.db, ownPr.id, false);
      expect(await source(project, ownPr).get('FORK_NO')).toBe('fork-no-value');

      // Not recorded by a webhook: a pull request of unknown origin counts as a fork.
      const unknownPr = await makeBuild(api.t.db, project.id, { event: 'pull_request', branch: 'feature-3' });
      expect(await source(project, unknownPr).get('FORK_NO')).toBe('');
      const push = await makeBuild(api.t.db, project.id, { event: 'push', branch: 'feature-4' });
      expect(await source(project, push).get('FORK_NO')).toBe('fork-no-value');
    });

    it('fails loudly, naming the secret, when a stored value was altered or moved', async () => {
      await setSecret(api.t.db, cipher, project.id, { name: 'ALTERED', value: VALUE, allowForks: false });
      await setSecret(api.t.db, cipher, other.id, {
        name: 'ALTERED',
        value: 'other-value',
        allowForks: false,
      });
      const sealed = await getSealedSecret(api.t.db, other.id, 'ALTERED');
      // Copy the other project's sealed value over this one's: the context binding refuses it.
      await putSealedSecret(api.t.db, project.id, {
        name: 'ALTERED',
        valueSealed: sealed!,
        allowForks: false,
      });
      const build = await makeBuild(api.t.db, project.id, { event: 'push' });
      await expect(secretsFor({ db: api.t.db, cipher })(project, build).get('ALTERED')).rejects.toThrow(
        new RegExp(`secret of ${project.slug} "ALTERED" cannot be decrypted`),
      );
      const otherKey = new SecretCipher(randomBytes(32));
      await expect(
        secretsFor({ db: api.t.db, cipher: otherKey })(other, build).get('ALTERED'),
      ).rejects.toMatchObject({ code: 'tampered' });
    });
  });

  describe('slipway secret', () => {
    let server = '';
    beforeAll(async () => {
      const address = await api.app.listen({ host: '127.0.0.1', port: 0 });
      server = address;
      expect((api.app.server.address() as AddressInfo).port).toBeGreaterThan(0);
    });

    async function cli(
      args: string[],
      stdinText = '',
      token = api.tokens.admin,
    ): Promise<{ code: number; out: string; err: string }> {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (c: Buffer) => (out += c.toString()));
      stderr.on('data', (c: Buffer) => (err += c.toString()));
      let code = -1;
      const program = new Command('slipway').exitOverride();
      registerSecretCommands(program, (c) => (code = c), {
        stdin: Readable.from([Buffer.from(stdinText)]),
        stdout,
        stderr,
      });
      try {
        await program.parseAsync(['node', 'slipway', ...args, '--server', server, '--token', token]);
      } catch (error) {
        err += error instanceof Error ? error.message : String(error);
        code = 2;
      }
      return { code, out, err };
    }

    it('set reads the value from stdin, dropping one trailing newline; list and delete', async () => {
      const set = await cli(['secret', 'set', project.slug, 'CLI_TOKEN'], `${VALUE}\n`);
      expect(set).toMatchObject({ code: 0 });
      expect(set.out).toContain('secret CLI_TOKEN of');
      expect(set.out + set.err).not.toContain(VALUE);
      const build = await makeBuild(api.t.db, project.id, { event: 'push' });
      expect(await secretsFor({ db: api.t.db, cipher })(project, build).get('CLI_TOKEN')).toBe(VALUE);

      const multi = await cli(
        ['secret', 'set', project.slug, 'CLI_PEM', '--allow-forks'],
        'line-one\nline-two\n\n',
      );
      expect(multi.code).toBe(0);
      expect(await secretsFor({ db: api.t.db, cipher })(project, build).get('CLI_PEM')).toBe(
        'line-one\nline-two\n',
      );

      const list = await cli(['secret', 'list', project.slug], '', api.tokens.viewer);
      expect(list.code).toBe(0);
      expect(list.out).toMatch(/CLI_TOKEN\s+no/);
      expect(list.out).toMatch(/CLI_PEM\s+yes/);
      expect(list.out).not.toContain(VALUE);
      const json = await cli(['secret', 'list', project.slug, '-o', 'json']);
      expect(JSON.parse(json.out)).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: 'CLI_TOKEN' })]),
      );

      expect((await cli(['secret', 'delete', project.slug, 'CLI_TOKEN'])).code).toBe(0);
      expect((await cli(['secret', 'delete', project.slug, 'CLI_TOKEN'])).code).toBe(2);
    });

    it('manages globals with --global, refuses what it cannot do with the right exit codes', async () => {
      expect((await cli(['secret', 'set', '--global', 'CLI_GLOBAL'], VALUE)).code).toBe(0);
      const list = await cli(['secret', 'list', '--global']);
      expect(list.out).toContain('CLI_GLOBAL');
      expect((await cli(['secret', 'set', project.slug, 'EMPTY'], '\n')).code).toBe(2);
      expect((await cli(['secret', 'set', project.slug], VALUE)).code).toBe(2);
      const forbidden = await cli(['secret', 'set', '--global', 'X_FORBIDDEN'], VALUE, api.tokens.member);
      expect(forbidden.code).toBe(1);
      expect(forbidden.err).toMatch(/admin role/);
      expect((await cli(['secret', 'delete', '--global', 'CLI_GLOBAL'])).code).toBe(0);
    });
  });
});
