import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, getBuild, getProject, isTerminalStatus, type Project } from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import type { DatabaseBuildControl } from '../scheduler/build-control.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { TestRepo } from '../testing/git-repo.js';
import { localScheduler } from '../testing/local-scheduler.js';
import { registerHookRoutes } from './routes.js';
import { parseDescriptor, scriptsPipeline, scriptsPipelineSource } from './scripts.js';
import { signBody } from './signatures.js';
import { getHookSettings, updateHookSettings } from './store.js';
import { until } from '../../testing/until.js';

const SECRET = 'scripts-repo-secret';

const BUILD_SH = `#!/bin/sh
set -e
echo "scripted build of $SLIPWAY_PROJECT #$SLIPWAY_BUILD_NUMBER on $SLIPWAY_BRANCH ($SLIPWAY_EVENT)"
echo "commit $SLIPWAY_COMMIT"
cat README.md
`;

describe('project.json descriptor', () => {
  it('accepts image, branches and repo', () => {
    expect(
      parseDescriptor(
        '{"image": "node:20", "branches": "main|release/.*", "repo": "git@example.com:acme/web.git"}',
      ),
    ).toEqual({
      image: 'node:20',
      branches: 'main|release/.*',
      repo: 'git@example.com:acme/web.git',
    });
  });

  it.each([
    ['{', /^project\.json: not valid JSON: /],
    ['[]', /^project\.json: expected a JSON object/],
    [
      '{"image": "node:20", "brances": "main"}',
      /^project\.json: unknown field "brances" \(known: image, branches, repo\)$/,
    ],
    ['{"image": 20}', /^project\.json: "image" must be a non-empty string$/],
    [
      '{"image": "node:20; rm -rf /"}',
      /^project\.json: "image" "node:20; rm -rf \/" is not an image reference/,
    ],
    ['{"branches": "main("}', /^project\.json: "branches" is not a valid regular expression: /],
    [
      '{"repo": "--upload-pack=evil"}',
      /^project\.json: "repo" "--upload-pack=evil" is not a git repository URL/,
    ],
  ])('refuses %s with a clear message', (source, message) => {
    expect(() => parseDescriptor(source)).toThrow(message);
  });

  it('runs build.sh as one step of one stage', () => {
    expect(scriptsPipeline({ image: 'alpine:3.20' })).toBe(
      'image: alpine:3.20\nstages:\n  - name: build\n    steps:\n      - name: build.sh\n        commands:\n          - sh ./.slipway-scripts/build.sh\n',
    );
  });
});

describe.each(DIALECTS)('build-scripts repositories (%s, real git, local executor)', (dialect) => {
  let t: TestDatabase;
  let app: FastifyInstance;
  let scripts: TestRepo;
  let code: TestRepo;
  let project: Project;
  let scheduler: Scheduler;
  let logs: FsLogStore;
  let dataDir: string;

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-scripts-test-'));
    code = await TestRepo.create({ 'README.md': 'code of acme/web\n' });
    scripts = await TestRepo.create({
      'acme-web/project.json': JSON.stringify({
        image: 'alpine:3.20',
        branches: 'main|release/.*',
        repo: code.url,
      }),
      'acme-web/build.sh': BUILD_SH,
      'other/project.json': '{}',
    });
    project = await createProject(t.db, {
      slug: 'acme/web',
      repoUrl: 'https://git.example.invalid/placeholder.git',
    });
    await updateHookSettings(t.db, project.id, {
      secret: SECRET,
      scripts: { repoUrl: scripts.url, path: 'acme-web' },
    });

    let control: DatabaseBuildControl;
    ({ scheduler, control } = localScheduler(t.db, dataDir, {
      logs: (logs = new FsLogStore(join(dataDir, 'logs'))),
      owner: 'scripts-test',
      pipelineSource: scriptsPipelineSource(t.db, { workRoot: join(dataDir, 'scripts') }),
    }));
    app = Fastify();
    registerHookRoutes(app, { db: t.db, control, scriptsWorkRoot: join(dataDir, 'scripts') });
    await app.ready();
    scheduler.start();
  });

  afterAll(async () => {
    await scheduler.stop();
    await app.close();
    await t.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });

  const post = (path: string, payload: unknown, headers: Record<string, string> = {}, secret = SECRET) => {
    const body = JSON.stringify(payload);
    return app.inject({
      method: 'POST',
      url: path,
      headers: {
        'content-type': 'application/json',
        'x-slipway-signature': signBody(secret, body),
        ...headers,
      },
      payload: body,
    });
  };
  const pushToScripts = (ref = 'refs/heads/main') =>
    post('/hooks/scripts', { ref, repository: { clone_url: scripts.url } });

  it('POST /hooks/scripts fetches the scripts repo and applies project.json to the project', async () => {
    const res = await pushToScripts();
    expect(res.statusCode).toBe(200);
    const commit = scripts.git('rev-parse', 'HEAD');
    expect(res.json()).toEqual({
      refreshed: [
        {
          project: 'acme/web',
          commit,
          image: 'alpine:3.20',
          branchFilter: 'main|release/.*',
          repoUrl: code.url,
        },
      ],
      skipped: [],
    });
    expect(await getProject(t.db, project.id)).toMatchObject({
      defaultImage: 'alpine:3.20',
      branchFilter: 'main|release/.*',
      repoUrl: code.url,
    });
    const settings = await getHookSettings(t.db, project.id);
    expect(settings.snapshot).toMatchObject({ commit, buildSh: BUILD_SH });
  });

  it('a push to the code repository runs build.sh as a one-step pipeline with the SLIPWAY_* variables', async () => {
    await pushToScripts();
    const res = await post('/hooks/generic?project=acme/web', { branch: 'main', repository: code.url });
    expect(res.statusCode).toBe(201);
    const id = res.json<{ build: { id: number; number: number } }>().build.id;
    const done = await until(async () => {
      const build = await getBuild(t.db, id);
      return build && isTerminalStatus(build.status) ? build : undefined;
    });
    const lines = (await logs.read(id, 0)).map((l) => l.text);
    expect(done.status, lines.join('\n')).toBe('success');
    expect(lines).toContain(`scripted build of acme/web #${done.number} on main (push)`);
    expect(lines).toContain(`commit ${code.git('rev-parse', 'HEAD')}`);
    expect(lines).toContain('code of acme/web');
    const steps = (await logs.read(id, 0)).filter((l) => l.stage === 'build').map((l) => l.step);
    expect(new Set(steps)).toEqual(new Set(['build.sh']));
  });

  it('the descriptor branch filter now decides pushes', async () => {
    const res = await post('/hooks/generic?project=acme/web', { branch: 'feature/x' });
    expect(res.statusCode).toBe(202);
    expect(res.json<{ ignored: string }>().ignored).toBe(
      'branch "feature/x" does not match the branch filter "main|release/.*"',
    );
  });

  it('an invalid descriptor is refused with where and why; the project keeps its settings', async () => {
    await scripts.commit({ 'acme-web/project.json': '{"image": "alpine:3.20", "brances": "main"}' });
    const res = await pushToScripts();
    expect(res.statusCode).toBe(422);
    const error = res.json<{ error: { code: string; message: string } }>().error;
    expect(error.code).toBe('invalid_descriptor');
    expect(error.message).toMatch(/acme-web\/project\.json: unknown field "brances"/);
    expect(await getProject(t.db, project.id)).toMatchObject({
      branchFilter: 'main|release/.*',
      repoUrl: code.url,
    });
    await scripts.commit({
      'acme-web/project.json': JSON.stringify({
        image: 'alpine:3.20',
        branches: 'main|release/.*',
        repo: code.url,
      }),
    });
  });

  it('a missing build.sh is refused', async () => {
    scripts.git('rm', '--quiet', 'acme-web/build.sh');
    await scripts.commit({}, 'remove build.sh');
    const res = await pushToScripts();
    expect(res.statusCode).toBe(422);
    expect(res.json<{ error: { message: string } }>().error.message).toMatch(
      /acme-web\/build\.sh is missing from the build-scripts repository/,
    );
    await scripts.commit({ 'acme-web/build.sh': BUILD_SH });
    expect((await pushToScripts()).statusCode).toBe(200);
  });

  it('an unsigned or forged refresh is 401; a push to another branch is skipped', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: scripts.url } });
    const unsigned = await app.inject({
      method: 'POST',
      url: '/hooks/scripts',
      headers: { 'content-type': 'application/json' },
      payload: body,
    });
    expect(unsigned.statusCode).toBe(401);
    const forged = await post('/hooks/scripts', JSON.parse(body), {}, 'not-the-secret');
    expect(forged.statusCode).toBe(401);
    const other = await pushToScripts('refs/heads/experimental');
    expect(other.statusCode).toBe(200);
    expect(other.json()).toMatchObject({ refreshed: [], skipped: [{ project: 'acme/web' }] });
  });

  it("an unreachable scripts repository is 502 with git's message", async () => {
    const lost = await createProject(t.db, { slug: 'acme/lost', repoUrl: code.url });
    await updateHookSettings(t.db, lost.id, {
      secret: SECRET,
      scripts: { repoUrl: `file://${dataDir}/no-such-repo`, path: '.' },
    });
    const res = await post('/hooks/scripts?project=acme/lost', { ref: 'refs/heads/main' });
    expect(res.statusCode).toBe(502);
    expect(res.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'scripts_unavailable',
      message: expect.stringMatching(
        /cannot fetch branch main of the build-scripts repository: repository file:\/\/\S+\/no-such-repo not found or not readable: [^\n]+$/,
      ) as unknown,
    });
  });
});
