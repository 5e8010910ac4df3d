import { existsSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { enginePlan, findTestEngine } from '../../src/executors/docker/testing/test-engine.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { allFinished, cleanup, ServerProcess, tempDir, type Api } from './server-harness.js';

/** An engine address where nothing is, so Podman on this machine is not found. */
const NO_ENGINE = 'unix:///nonexistent/slipway-test/engine.sock';

/**
 * `slipway server --executor auto` without a container engine: no build runs as host
 * processes, whatever its pipeline names and whatever its project chose; local runs only on a
 * server started with `--executor local`.
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
    expect(server.log).toContain('Builds end `error`');
    expect(server.log).toContain('--executor local runs them as host processes');
  });

  it('ends an image pipeline `error` with the reason, running no step on the host', async () => {
    await project('guard/image', touching('image-auto'));
    const finished = await build('guard/image');
    expect(finished.status).toBe('error');
    expect(finished.reason?.code).toBe('executor');
    const message = finished.reason?.message ?? '';
    expect(message).toContain('executor "docker" is not available on this server');
    expect(message).toContain(`${NO_ENGINE} (engine option): no socket there`);
    expect(message).toContain('Start a container engine');
    expect(message).toContain('--executor local');
    expect(existsSync(join(markers, 'image-auto'))).toBe(false);
    // The build's log says it too, for whoever reads the log rather than the status.
    const log = (await api.storedLog(finished.id)).map((l) => l.text);
    expect(log.some((line) => line.includes(message))).toBe(true);
  });

  it('never falls back to local, not even for a pipeline that names no image', async () => {
    await project('guard/no-image', touching('no-image', ''));
    const finished = await build('guard/no-image');
    expect(finished.status).toBe('error');
    expect(finished.reason?.message).toContain('executor "docker" is not available on this server');
    expect(existsSync(join(markers, 'no-image'))).toBe(false);
  });

  it('does not run a project that chose local: the server was not started with --executor local', async () => {
    await project('guard/chosen', touching('image-chosen'));
    await api.ok('PATCH', '/projects/guard/chosen', { defaultExecutor: 'local' });
    const finished = await build('guard/chosen');
    expect(finished.status).toBe('error');
    expect(finished.reason?.message).toBe(
      'executor "local" is not available on this server: builds run as host processes only when ' +
        'the server is started with --executor local',
    );
    expect(existsSync(join(markers, 'image-chosen'))).toBe(false);
  });
});

describe('slipway server --executor local', () => {
  afterAll(cleanup);

  it('runs image pipelines on the host: local was chosen', async () => {
    const markers = await tempDir('host-markers');
    // Steps run as the build user, not as this test's user.
    await chmod(markers, 0o777);
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
    expect(message).toContain('slipway server --executor local');
    expect(existsSync(join(markers, 'ran'))).toBe(false);
  });
});
