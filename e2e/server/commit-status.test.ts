import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { StandInForge } from '../../src/server/commit-status/testing/stand-in-forges.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { buildFinished, cleanup, ServerProcess, waitFor, type Api } from './server-harness.js';

const TOKEN = 'ghp_e2eStandInToken0123456789';
const PUBLIC_URL = 'http://ci.example.test';
/**
 * The step waits for `flag`: the test lets the build end once its running status was posted.
 * The hub announces a build's moments from one read of it, so a build that ended before its
 * `started` moment went out would show no running status at all (and that is right).
 */
const pipeline = (flag: string) =>
  `steps:\n  - name: unit\n    commands: ['while [ ! -f ${flag} ]; do sleep 0.05; done', "echo fine"]\n`;

interface Delivery {
  context: string;
  state: string;
  outcome: string;
  httpStatus: number | null;
  message: string | null;
}

/**
 * Commit statuses through a real `slipway server` process (local executor): the project is a
 * local repository standing for a GitHub mirror (`repository: acme/web`), the forge a
 * GitHub stand-in validating each request against GitHub's OpenAPI description.
 */
describe('slipway server: commit statuses to a GitHub stand-in', () => {
  const forge = new StandInForge('github', TOKEN);
  let server: ServerProcess;
  let api: Api;
  let repo: TestRepo;
  let flagDir: string;
  let flag: string;

  beforeAll(async () => {
    await forge.start();
    // Outside the server's private directories: the step may run as the build user.
    flagDir = await mkdtemp(join(tmpdir(), 'slipway-e2e-flag-'));
    await chmod(flagDir, 0o755);
    flag = join(flagDir, 'go');
    repo = await TestRepo.create({ '.slipway.yml': pipeline(flag) });
    server = await ServerProcess.start({ executor: 'local', args: ['--public-url', PUBLIC_URL] });
    api = server.api();
    await api.ok('POST', '/projects', { slug: 'acme/web', repoUrl: repo.url });
    await api.ok('PUT', '/projects/acme/web/secrets/gh_status', { value: TOKEN });
  });
  afterAll(async () => {
    // A step still waiting (a failed test) ends rather than outlive the server.
    await writeFile(flag, '').catch(() => undefined);
    await cleanup();
    await forge.stop();
    await rm(flagDir, { recursive: true, force: true });
  });

  it('settings for a mirror: forge, API and repository named; without them the URL names no forge', async () => {
    const bad = await api.request('PUT', '/projects/acme/web/commit-status', {
      json: { tokenSecret: 'gh_status' },
    });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain(
      'the repository URL names no forge: set \\"forge\\", \\"apiUrl\\" and \\"repository\\"',
    );
    const view = await api.ok('PUT', '/projects/acme/web/commit-status', {
      forge: 'github',
      apiUrl: forge.apiUrl,
      repository: 'acme/web',
      tokenSecret: 'gh_status',
    });
    expect(view).toMatchObject({
      resolved: { forge: 'github', apiUrl: forge.apiUrl, repository: 'acme/web' },
      tokenSecretExists: true,
    });
  });

  it('a build posts pending, running, then success with its page; a 403 is shown on the build, which still succeeds', async () => {
    const sha = repo.git('rev-parse', 'HEAD');
    const build = await api.ok<Build>('POST', '/projects/acme/web/builds', { branch: 'main', commit: sha });
    await waitFor('the running status posted', () =>
      Promise.resolve(
        forge.requests.some((r) => String(r.body.description) === `Build #${build.number} running`) ||
          undefined,
      ),
    );
    await writeFile(flag, '');
    expect((await buildFinished(api, build.id)).status).toBe('success');
    const statuses = await waitFor('the final status posted', () =>
      Promise.resolve(
        forge.requests.some((r) => r.body.state === 'success')
          ? forge.requests.filter((r) => r.path.includes('/statuses/'))
          : undefined,
      ),
    );
    expect(forge.violations).toEqual([]);
    // `checks: auto`, a token GitHub refuses check runs (the stand-in's default): statuses instead.
    expect(forge.requests[0]).toMatchObject({ method: 'POST', path: '/api/v3/repos/acme/web/check-runs' });
    const descriptions = statuses.map((r) => String(r.body.description));
    // Queued is posted unless the server started the build before the notice went out.
    expect(descriptions.slice(-2)).toEqual([
      `Build #${build.number} running`,
      expect.stringMatching(new RegExp(`^Build #${build.number} succeeded in `)),
    ]);
    expect(statuses.every((r) => r.path === `/api/v3/repos/acme/web/statuses/${sha}`)).toBe(true);
    expect(statuses.at(-1)!.body.target_url).toBe(`${PUBLIC_URL}/projects/acme/web/builds/${build.number}`);

    forge.reset();
    for (let i = 0; i < 3; i++)
      forge.script.push({ status: 403, body: { message: 'Resource not accessible by integration' } });
    const second = await api.ok<Build>('POST', '/projects/acme/web/builds', { branch: 'main', commit: sha });
    expect((await buildFinished(api, second.id)).status).toBe('success');
    const deliveries = await waitFor('the final status tried', async () => {
      const list = await api.ok<Delivery[]>(
        'GET',
        `/projects/acme/web/builds/${second.number}/commit-statuses`,
      );
      return list.some((d) => d.state === 'success') ? list : undefined;
    });
    expect(deliveries.filter((d) => d.outcome === 'failed')).toContainEqual(
      expect.objectContaining({
        httpStatus: 403,
        message: expect.stringContaining(
          'commit status to GitHub failed: 403 Resource not accessible by integration',
        ) as unknown,
      }),
    );
    expect(deliveries.at(-1)).toMatchObject({ state: 'success' });
    expect(server.log).toContain('commit status to GitHub failed: 403');
    expect(server.log).not.toContain(TOKEN);
    expect(JSON.stringify(deliveries)).not.toContain(TOKEN);
    expect((await api.request('GET', '/projects/acme/web/commit-status')).text).not.toContain(TOKEN);
  });
});
