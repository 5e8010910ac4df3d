/**
 * GitHub check runs when the forge says no or fails, and across a restart: notices made from
 * stored builds are given to the notifier directly (the real-build sequences are in
 * commit-status.test.ts); the GitHub stand-in checks every request against GitHub's OpenAPI.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listCommitStatusDeliveries, putCommitStatusSettings } from '../../store/commit-status.js';
import {
  claimNextBuilds,
  createBuild,
  createProject,
  setBuildStatus,
  type Project,
} from '../../store/index.js';
import { DIALECTS } from '../../store/testing/dialects.js';
import { SecretCipher } from '../secrets/cipher.js';
import { setSecret } from '../secrets/store.js';
import { startPluginApi, type PluginApi } from '../testing/plugin-api.js';
import type { BuildNotice } from '../notify/types.js';
import { CommitStatusNotifier } from './notifier.js';
import { StandInForge } from './testing/stand-in-forges.js';

const TOKEN = 'ghs_stand1nInstallat1onT0ken';

describe.each(DIALECTS)('GitHub check runs: refusal, retries, restart (%s)', (dialect) => {
  let api: PluginApi;
  let gh: StandInForge;
  let p: Project;
  const cipher = new SecretCipher(randomBytes(32));

  beforeAll(async () => {
    api = await startPluginApi(dialect, () => []);
    gh = await new StandInForge('github', TOKEN, { checks: true }).start();
    p = await createProject(api.t.db, { slug: 'acme/checks', repoUrl: 'https://github.com/acme/checks' });
    await setSecret(api.t.db, cipher, p.id, { name: 'GH_TOKEN', value: TOKEN, allowForks: false });
    await putCommitStatusSettings(api.t.db, p.id, {
      enabled: true,
      forge: null,
      apiUrl: gh.apiUrl,
      repository: null,
      tokenSecret: 'GH_TOKEN',
      contexts: 'build',
      checks: 'auto',
    });
  });
  afterAll(async () => {
    await gh?.stop();
    await api?.close();
  });

  const notifier = () =>
    new CommitStatusNotifier({ db: api.t.db, cipher, retries: 2, retryDelayMs: 10, maxRetryAfterMs: 5000 });

  /** A queued build's notice, and a function making its notice once it runs. */
  async function queuedBuild() {
    const sha = randomBytes(20).toString('hex');
    const b = await createBuild(api.t.db, {
      projectId: p.id,
      branch: `b-${sha.slice(0, 8)}`,
      event: 'push',
      trigger: 'webhook',
      commitSha: sha,
    });
    const notice = (build: typeof b, event: BuildNotice['event']): BuildNotice => ({
      event,
      build,
      project: p,
      url: `https://ci.example.com/projects/acme/checks/builds/${build.number}`,
    });
    return {
      sha,
      queued: notice(b, 'queued'),
      running: async () => {
        await claimNextBuilds(api.t.db, 'checks-test', 1, { global: 100 });
        const build = await setBuildStatus(api.t.db, b.id, ['pending'], 'running', {
          ifLeaseOwner: 'checks-test',
        });
        return notice(build!, 'started');
      },
    };
  }

  it('a 500 is retried; a restarted server updates the stored check run instead of making another', async () => {
    gh.reset();
    gh.checks = true;
    gh.script.push({ status: 500, body: { message: 'Server Error' } });
    const build = await queuedBuild();
    await notifier().buildQueued(build.queued);
    expect(gh.requests.map((r) => [r.method, r.path])).toEqual([
      ['POST', '/api/v3/repos/acme/checks/check-runs'],
      ['POST', '/api/v3/repos/acme/checks/check-runs'],
    ]);
    const id = gh.requests[1]!.checkRunId!;
    expect(id).toBeGreaterThan(2 ** 32);
    expect(await listCommitStatusDeliveries(api.t.db, build.queued.build.id)).toMatchObject([
      {
        kind: 'check',
        context: 'slipway',
        state: 'queued',
        outcome: 'delivered',
        httpStatus: 201,
        attempts: 2,
      },
    ]);

    // Another instance: what the first one remembered is gone, the stored id is not.
    await notifier().buildStarted(await build.running());
    expect(gh.requests).toHaveLength(3);
    expect(gh.requests[2]).toMatchObject({
      method: 'PATCH',
      path: `/api/v3/repos/acme/checks/check-runs/${id}`,
      body: { status: 'in_progress', external_id: String(build.queued.build.id) },
    });
    expect(gh.checkRuns.size).toBe(1);
    expect(gh.violations).toEqual([]);
  });

  it('a 403 (a personal access token) falls back to statuses, shown as a delivery, and the next build does not ask again', async () => {
    gh.reset();
    gh.checks = false;
    const statuses = notifier();
    const first = await queuedBuild();
    await statuses.buildQueued(first.queued);
    expect(gh.requests.map((r) => [r.method, r.path, r.body.state])).toEqual([
      ['POST', '/api/v3/repos/acme/checks/check-runs', undefined],
      ['POST', `/api/v3/repos/acme/checks/statuses/${first.sha}`, 'pending'],
    ]);
    expect(gh.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const rows = await listCommitStatusDeliveries(api.t.db, first.queued.build.id);
    expect(rows).toMatchObject([
      {
        kind: 'check',
        outcome: 'failed',
        httpStatus: 403,
        message:
          'check run refused by GitHub: 403 You must authenticate via a GitHub App.; commit statuses instead (check runs need a GitHub App installation token with "Checks: write"; tried again in 60 min)',
      },
      { kind: 'status', state: 'pending', outcome: 'delivered' },
    ]);
    // The build keeps statuses; so does the project's next build, without a refused request.
    await statuses.buildStarted(await first.running());
    const second = await queuedBuild();
    await statuses.buildQueued(second.queued);
    expect(gh.requests.slice(2).map((r) => r.path)).toEqual([
      `/api/v3/repos/acme/checks/statuses/${first.sha}`,
      `/api/v3/repos/acme/checks/statuses/${second.sha}`,
    ]);
    expect(gh.violations).toEqual([]);
    expect(JSON.stringify(rows)).not.toContain(TOKEN);
  });
});
