import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { enginePlan, findTestEngine } from '../../src/executors/docker/testing/test-engine.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { allFinished, cleanup, ServerProcess, tempDir, type Api } from './server-harness.js';

/** An engine address where nothing is, so Podman on this machine is not found. */
const NO_ENGINE = 'unix:///nonexistent/slipway-test/engine.sock';

/**
 * `slipway server --executor auto` without a container engine: a pipeline that names an image
 * does not run as host processes unless local was chosen; one that names none still runs.
 */
describe('slipway server --executor auto without a container engine', () => {
  let server: ServerProcess;
  let api: Api;
  let markers: string;

  beforeAll(async () => {
    markers = await tempDir('host-markers');
    server = await ServerProcess.start({ executor: 'auto', engine: NO_ENGINE });
  });
  afterAll(cleanup);

  /** A project whose one step leaves `marker` on the host when it runs there. */
  const project = async (slug: string, pipeline: string, extra: Record<string, unknown> = {}) => {
    const repo = await TestRepo.create({ '.slipway.yml': pipeline });
    api = server.api();
    await api.ok('POST', '/projects', { slug, repoUrl: repo.url, ...extra });
  };
  const build = async (slug: string): Promise<Build> => {
    const before = (await api.allBuilds(slug)).length;
    await api.ok('POST', `/projects/${slug}/builds`, { branch: 'main' });
    const builds = await allFinished(api, slug, before + 1);
    return builds[builds.length - 1]!;
  };
  const touching = (marker: string, image = 'image: busybox\n') =>
    `${image}steps:\n  - name: touch\n    commands: ["touch ${join(markers, marker)}"]\n`;

  it('says at start-up why there is no container engine and what that means', () => {
    expect(server.log).toContain(`${NO_ENGINE} (engine option): no socket there`);
    expect(server.log).toContain('pipelines that name images end `error`');
  });

  it('ends an image pipeline `error` with the reason, running no step on the host', async () => {
    await project('guard/image', touching('image-auto'));
    const finished = await build('guard/image');
    expect(finished.status).toBe('error');
    expect(finished.reason?.code).toBe('executor');
    const message = finished.reason?.message ?? '';
    expect(message).toContain('the pipeline names image busybox');
    expect(message).toContain('no container engine is available');
    expect(message).toContain(`${NO_ENGINE} (engine option): no socket there`);
    expect(message).toContain('slipway project update guard/image --executor local');
    expect(message).toContain('--executor local');
    expect(existsSync(join(markers, 'image-auto'))).toBe(false);
    // The build's log says it too, for whoever reads the log rather than the status.
    const log = (await api.storedLog(finished.id)).map((l) => l.text);
    expect(log).toContain(message);
  });

  it("counts the project's default image, and images of steps and services", async () => {
    await project('guard/default-image', touching('default-image', ''), { defaultImage: 'alpine:3' });
    const byDefault = await build('guard/default-image');
    expect(byDefault.status).toBe('error');
    expect(byDefault.reason?.message).toContain('the pipeline names image alpine:3');
    expect(existsSync(join(markers, 'default-image'))).toBe(false);

    await project(
      'guard/step-images',
      'services:\n  - name: db\n    image: postgres:15\n' +
        `steps:\n  - name: touch\n    image: node:20\n    commands: ["touch ${join(markers, 'step-images')}"]\n`,
    );
    const byStep = await build('guard/step-images');
    expect(byStep.status).toBe('error');
    expect(byStep.reason?.message).toContain('the pipeline names images node:20, postgres:15');
    expect(existsSync(join(markers, 'step-images'))).toBe(false);
  });

  it('runs the same image pipeline on the host when the project chose local', async () => {
    await project('guard/chosen', touching('image-chosen'));
    await api.ok('PATCH', '/projects/guard/chosen', { defaultExecutor: 'local' });
    const finished = await build('guard/chosen');
    expect(finished.status).toBe('success');
    expect(existsSync(join(markers, 'image-chosen'))).toBe(true);
  });

  it('still runs a pipeline that names no image with the local executor', async () => {
    await project('guard/no-image', touching('no-image', ''));
    const finished = await build('guard/no-image');
    expect(finished.status).toBe('success');
    expect(existsSync(join(markers, 'no-image'))).toBe(true);
  });
});

describe('slipway server --executor local', () => {
  afterAll(cleanup);

  it('runs image pipelines on the host: local was chosen', async () => {
    const markers = await tempDir('host-markers');
    const server = await ServerProcess.start({ executor: 'local' });
    const api = server.api();
    const repo = await TestRepo.create({
      '.slipway.yml': `image: busybox\nsteps:\n  - name: touch\n    commands: ["touch ${join(markers, 'ran')}"]\n`,
    });
    await api.ok('POST', '/projects', { slug: 'guard/server-local', repoUrl: repo.url });
    await api.ok('POST', '/projects/guard/server-local/builds', { branch: 'main' });
    const [finished] = await allFinished(api, 'guard/server-local', 1);
    expect(finished?.status).toBe('success');
    expect(existsSync(join(markers, 'ran'))).toBe(true);
  });
});

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'fail') {
  describe('slipway server --executor docker', () => {
    it('needs a container engine', () => {
      throw new Error(plan.reason);
    });
  });
}

describe.skipIf(plan.action !== 'run')('slipway server --executor docker', () => {
  afterAll(cleanup);

  it('ends a pipeline that names no image `error` before any step, saying how to fix it', async () => {
    const markers = await tempDir('host-markers');
    const engine = found.available ? { engine: found.engine.address } : {};
    const server = await ServerProcess.start({ executor: 'docker', ...engine });
    const api = server.api();
    const repo = await TestRepo.create({
      '.slipway.yml': `steps:\n  - name: touch\n    commands: ["touch ${join(markers, 'ran')}"]\n`,
    });
    await api.ok('POST', '/projects', { slug: 'guard/imageless', repoUrl: repo.url });
    await api.ok('POST', '/projects/guard/imageless/builds', { branch: 'main' });
    const [finished] = await allFinished(api, 'guard/imageless', 1);
    expect(finished?.status).toBe('error');
    expect(finished?.reason?.code).toBe('executor');
    const message = finished?.reason?.message ?? '';
    expect(message).toContain('the pipeline names no image for default/touch');
    expect(message).toContain('slipway project update guard/imageless --image <image>');
    expect(message).toContain('slipway project update guard/imageless --executor local');
    expect(existsSync(join(markers, 'ran'))).toBe(false);
  });
});
