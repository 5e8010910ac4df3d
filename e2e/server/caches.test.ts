import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cache } from '../../src/contract/caches.js';
import type { Build } from '../../src/server/api/dto.js';
import { signBody } from '../../src/server/hooks/signatures.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { runCli } from '../cli-helpers.js';
import { buildFinished, cleanup, ServerProcess, tempDir, type Api } from './server-harness.js';

const SECRET = 'caches-webhook-secret';

/** `vendor` is made from lock.txt unless restored; `~/.tool/stamp` is HOME's part of the cache. */
const PIPELINE = `steps:
  - name: deps
    cache:
      key: "deps-\${hashFiles('lock.txt')}"
      restore_keys: [deps-]
      paths: [vendor, ~/.tool]
    commands:
      - if [ -f vendor/lib.txt ]; then echo "vendor from $(cat vendor/lib.txt)"; else mkdir -p vendor && cp lock.txt vendor/lib.txt && echo "vendor made"; fi
      - if [ -f ~/.tool/stamp ]; then echo "home has $(cat ~/.tool/stamp)"; fi
      - mkdir -p ~/.tool && cp lock.txt ~/.tool/stamp
`;

/**
 * Step caches through a real `slipway server` (local executor, SQLite, filesystem blobs): the
 * first build misses and saves (workspace and HOME paths), a second build of the same lock
 * file restores exactly and saves nothing, a pull request from a fork with another lock file
 * restores the default branch's cache by its restore key and does not save; the CLI lists and
 * deletes them.
 */
describe('slipway server: step caches', () => {
  let server: ServerProcess;
  let api: Api;
  let repo: TestRepo;
  let home: string;

  beforeAll(async () => {
    home = await tempDir('cache-home');
    repo = await TestRepo.create({ '.slipway.yml': PIPELINE, 'lock.txt': 'v1' });
    server = await ServerProcess.start({ executor: 'local', buildUser: 'self', env: { HOME: home } });
    api = server.api();
    await api.ok('POST', '/projects', { slug: 'acme/cached', repoUrl: repo.url });
    await api.ok('PATCH', '/projects/acme/cached/hooks', { secret: SECRET });
  });
  afterAll(async () => {
    await cleanup();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  });

  const logOf = async (id: number) => (await api.storedLog(id)).map((l) => l.text);

  it('saves after a miss, restores the exact key, and a fork PR restores by prefix without saving', async () => {
    const first = await api.ok<Build>('POST', '/projects/acme/cached/builds', { branch: 'main' });
    expect((await buildFinished(api, first.id)).status).toBe('success');
    const log1 = await logOf(first.id);
    expect(log1).toContainEqual(expect.stringMatching(/^cache: miss \(deps-[0-9a-f]{64}\)$/));
    expect(log1).toContain('vendor made');
    expect(log1).toContainEqual(
      expect.stringMatching(/^cache: saved deps-[0-9a-f]{64} \(.+\) for branch main$/),
    );
    const saved = await api.ok<Cache[]>('GET', '/projects/acme/cached/caches');
    expect(saved.map((c) => c.branch)).toEqual(['main']);
    expect(saved[0]!.key).toMatch(/^deps-[0-9a-f]{64}$/);

    // HOME's part comes from the cache, not from what the first build left there.
    await rm(join(home, '.tool'), { recursive: true, force: true });
    const second = await api.ok<Build>('POST', '/projects/acme/cached/builds', { branch: 'main' });
    expect((await buildFinished(api, second.id)).status).toBe('success');
    const log2 = await logOf(second.id);
    expect(log2).toContainEqual(
      expect.stringMatching(new RegExp(`^cache: restored ${saved[0]!.key} \\(.+\\) from branch main$`)),
    );
    expect(log2).toContain('vendor from v1');
    expect(log2).toContain('home has v1');
    expect(log2).toContain(`cache: ${saved[0]!.key} was restored; nothing to save`);

    // A pull request from a fork with another lock file: the key is new, the prefix finds main's.
    repo.branch('feature');
    const commit = await repo.commit({ 'lock.txt': 'v2' });
    const body = JSON.stringify({ event: 'pull_request', branch: 'feature', commit, fork: true });
    const answer = await fetch(`${server.url}/hooks/generic?project=acme/cached`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-slipway-signature': signBody(SECRET, body) },
      body,
    });
    expect(answer.status, await answer.clone().text()).toBe(201);
    const pr = ((await answer.json()) as { build: { id: number } }).build;
    expect((await buildFinished(api, pr.id)).status).toBe('success');
    const log3 = await logOf(pr.id);
    expect(log3).toContainEqual(
      expect.stringMatching(
        new RegExp(`^cache: restored ${saved[0]!.key} \\(restore key\\) \\(.+\\) from branch main$`),
      ),
    );
    expect(log3).toContain('vendor from v1');
    expect(log3).toContain('cache: not saved: builds of pull requests from forks only read caches');
    expect(await api.ok<Cache[]>('GET', '/projects/acme/cached/caches')).toHaveLength(1);

    const cli = { cwd: home, env: { SLIPWAY_SERVER: server.url, SLIPWAY_TOKEN: server.token } };
    const list = await runCli(['cache', 'list', 'acme/cached'], cli);
    expect(list, list.stderr).toMatchObject({ code: 0 });
    expect(list.stdout).toContain(saved[0]!.key);
    const bad = await runCli(['cache', 'delete', 'acme/cached'], cli);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('give exactly one of');
    const del = await runCli(['cache', 'delete', 'acme/cached', '--key', saved[0]!.key], cli);
    expect(del, del.stderr).toMatchObject({ code: 0 });
    expect(del.stdout).toMatch(/^1 cache\(s\) of acme\/cached deleted/);
    expect(await api.ok<Cache[]>('GET', '/projects/acme/cached/caches')).toEqual([]);
  }, 240_000);
});
