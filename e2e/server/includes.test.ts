import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { buildFinished, cleanup, ServerProcess, type Api } from './server-harness.js';

const TEMPLATE = (says: string) => `include: [{ file: ci/inner.yml }]
stages:
  - name: node
    steps:
      - name: node
        commands: ["echo template ${says}"]
`;
const INNER =
  'stages: [{ name: inner, steps: [{ name: inner, commands: ["echo inner of the template"] }] }]\n';
const COMMON = `env: { FROM: common }
stages:
  - name: common
    steps:
      - name: common
        commands: ["echo common file"]
`;
const APP = (ref: string) => `include:
  - file: ci/common.yml
  - { project: acme/templates, ref: ${ref}, file: ci/node.yml }
stages:
  - name: app
    steps:
      - name: app
        commands: ["echo app sees $FROM"]
`;

/**
 * `include:` through a real `slipway server` (local executor, SQLite): a project includes a
 * file of its own repository (at the build's commit) and a file of another project of the server
 * at a tag (the tag's content, not the branch's newer one; the template's own same-repository
 * include comes from the template's repository at that tag). A broken included file fails the
 * build with the included file's position in the reason; a branch as ref is refused.
 */
describe('slipway server: include', () => {
  let server: ServerProcess;
  let api: Api;
  let templates: TestRepo;
  let app: TestRepo;

  beforeAll(async () => {
    templates = await TestRepo.create({ 'ci/node.yml': TEMPLATE('v1'), 'ci/inner.yml': INNER });
    templates.git('tag', '-a', 'v1', '-m', 'v1');
    templates.git('branch', 'stable');
    await templates.commit({ 'ci/node.yml': TEMPLATE('after v1') });
    app = await TestRepo.create({ '.slipway.yml': APP('v1'), 'ci/common.yml': COMMON });
    server = await ServerProcess.start({ executor: 'local', buildUser: 'self' });
    api = server.api();
    await api.ok('POST', '/projects', { slug: 'acme/templates', repoUrl: templates.url });
    await api.ok('POST', '/projects', { slug: 'acme/app', repoUrl: app.url });
  });
  afterAll(async () => {
    await cleanup();
    for (const repo of [templates, app])
      if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  });

  const build = async () => {
    const queued = await api.ok<Build>('POST', '/projects/acme/app/builds', { branch: 'main' });
    const done = await buildFinished(api, queued.id);
    const log = (await api.storedLog(queued.id)).map((l) => l.text).join('\n');
    return { done, log, detail: await api.build(queued.id) };
  };

  it('runs the included stages first: its own file, then the pinned template (and its include)', async () => {
    const { done, log, detail } = await build();
    expect(done.status, log).toBe('success');
    expect(detail.stages.map((s) => s.name)).toEqual(['common', 'inner', 'node', 'app']);
    expect(log).toContain('template v1');
    expect(log).not.toContain('template after v1');
    expect(log).toContain('app sees common');
  });

  it('fails a build whose included file is broken, at its line and column; refuses a branch as ref', async () => {
    await app.commit({ 'ci/common.yml': COMMON.replace('commands:', 'comands:') });
    const broken = await build();
    expect(broken.done.status).toBe('failure');
    expect(broken.done.reason).toMatchObject({ code: 'pipeline_invalid' });
    expect(broken.done.reason?.message).toContain(
      'ci/common.yml:6:9: unknown key "comands" at stages[0].steps[0]; did you mean "commands"?',
    );

    await app.commit({ '.slipway.yml': APP('stable'), 'ci/common.yml': COMMON });
    const branch = await build();
    expect(branch.done.status).toBe('failure');
    expect(branch.done.reason?.message).toMatch(
      /\.slipway\.yml:3:5: cannot include acme\/templates@stable:ci\/node\.yml at include\[1\]: .*"stable" is a branch of .*a branch moves/,
    );
  });
});
