/**
 * Forge commit statuses on the real machinery: the scheduler runs builds from real git
 * repositories with the local executor, the notifier hub announces them, and stand-in forges
 * (in-test HTTP servers, see testing/stand-in-forges.ts) check every request against the
 * forge's published schema and record the sequence.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getCommitStatusSettings,
  listCommitStatusDeliveries,
  putCommitStatusSettings,
} from '../../store/commit-status.js';
import {
  claimNextBuilds,
  createBuild,
  createProject,
  getBuild,
  setBuildStatus,
  setHeadRepoFork,
  type Build,
  type Project,
} from '../../store/index.js';
import { DIALECTS } from '../../store/testing/dialects.js';
import { until } from '../../testing/until.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { createNotifierHub, type NotifierHub } from '../notify/hub.js';
import { addNotifyTarget, removeNotifyTarget } from '../notify/targets.js';
import type { BuildNotice } from '../notify/types.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { SecretCipher } from '../secrets/cipher.js';
import { secretsFor } from '../secrets/source.js';
import { setSecret } from '../secrets/store.js';
import { TestRepo } from '../testing/git-repo.js';
import { finishedBuild, localScheduler } from '../testing/local-scheduler.js';
import { startPluginApi, type PluginApi } from '../testing/plugin-api.js';
import { CommitStatusError, CommitStatusNotifier } from './notifier.js';
import { registerCommitStatusRoutes } from './routes.js';
import { StandInForge, type StandInRequest } from './testing/stand-in-forges.js';

const TOKEN = 'ghp_stand1nT0kenNeverShown42';
const BASE = 'https://ci.example.com';

/** Stage `one` waits for the test's go file, so that "running" is seen before the build goes on. */
const pipeline = (goFile: string, exitTwo: number) => `
stages:
  - name: one
    steps:
      - name: wait
        commands:
          - 'while [ ! -f ${goFile} ]; do sleep 0.05; done'
  - name: two
    steps:
      - name: check
        env:
          STATUS_TOKEN: { from_secret: STATUS_TOKEN }
        commands:
          - 'echo "token=[$STATUS_TOKEN]"'
          - 'exit ${exitTwo}'
`;

/** Descriptions of one context, in order: each later than the one before in `order`, ending at `last`. */
function expectProgress(requests: StandInRequest[], order: RegExp[], last: RegExp) {
  const descriptions = requests.map((r) => String(r.body.description));
  expect(descriptions.length).toBeGreaterThan(0);
  let at = -1;
  for (const d of descriptions) {
    const index = order.findIndex((re) => re.test(d));
    expect(index, `${descriptions.join(' → ')}`).toBeGreaterThan(at);
    at = index;
  }
  expect(descriptions.at(-1)).toMatch(last);
}

describe('commit statuses from real builds (sqlite, local executor, stand-in forges)', () => {
  let api: PluginApi;
  /** One scheduler per build, started once the queued status was seen (a stopped one does not start again). */
  let scheduler: Scheduler | undefined;
  let control: DatabaseBuildControl;
  let hub: NotifierHub;
  let dataDir: string;
  const cipher = new SecretCipher(randomBytes(32));
  const hubErrors: string[] = [];
  const clones = new Map<number, string>();
  const forges = {
    github: new StandInForge('github', TOKEN),
    gitlab: new StandInForge('gitlab', TOKEN),
    gitea: new StandInForge('gitea', TOKEN),
    githubApp: new StandInForge('github', TOKEN, { checks: true }),
  };
  let notifier: CommitStatusNotifier;

  beforeAll(async () => {
    api = await startPluginApi('sqlite', (db) => [(app) => registerCommitStatusRoutes(app, { db })]);
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-status-'));
    for (const forge of Object.values(forges)) await forge.start();
    notifier = new CommitStatusNotifier({
      db: api.t.db,
      cipher,
      retryDelayMs: 10,
      logs: new FsLogStore(join(dataDir, 'logs')),
    });
    hub = createNotifierHub(api.t.db, {
      baseUrl: BASE,
      extra: () => [notifier],
      onError: (error) => hubErrors.push(String(error)),
    });
    control = new DatabaseBuildControl(api.t.db, () => scheduler?.kick(), {
      queued: (build) => hub.onBuildQueued(build.id),
      finished: (build) => hub.onBuildFinished(build.id),
    });
  }, 60_000);

  afterAll(async () => {
    await scheduler?.stop();
    notifier?.close();
    await hub?.close();
    for (const forge of Object.values(forges)) await forge.stop();
    await api?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** A project whose repository URL is on the forge and whose clone comes from a local repo. */
  async function project(slug: string, repoUrl: string, files: Record<string, string>) {
    const repo = await TestRepo.create(files);
    const p = await createProject(api.t.db, { slug, repoUrl });
    clones.set(p.id, repo.url);
    await setSecret(api.t.db, cipher, p.id, { name: 'STATUS_TOKEN', value: TOKEN, allowForks: false });
    return { p, repo, sha: repo.git('rev-parse', 'HEAD') };
  }

  function newScheduler(): Scheduler {
    return localScheduler(api.t.db, dataDir, {
      logs: new FsLogStore(join(dataDir, 'logs')),
      owner: 'status-test',
      repoUrlFor: (project) => Promise.resolve(clones.get(project.id)!),
      secretsFor: secretsFor({ db: api.t.db, cipher }),
      onBuildStarted: (build) => hub.onBuildStarted(build.id),
      onStageChanged: (build) => hub.onStageChanged(build.id),
      onBuildFinished: (build) => hub.onBuildFinished(build.id),
    }).scheduler;
  }

  /** Queues a build (no scheduler runs) and waits until its queued notice was handled. */
  async function run(p: Project, input: { commit: string; event?: 'push' | 'pull_request'; fork?: boolean }) {
    const build = await control.trigger(p, {
      branch: 'main',
      commit: input.commit,
      event: input.event ?? 'push',
      trigger: 'webhook',
      triggeredBy: 'forge',
    });
    if (input.fork) await setHeadRepoFork(api.t.db, build.id, true);
    await hub.idle();
    return build;
  }

  /** Runs it: stage one goes on once `context` shows running on the forge. */
  async function finish(build: Build, forge: StandInForge, go: string, context = 'slipway'): Promise<Build> {
    scheduler = newScheduler();
    scheduler.start();
    await until(() =>
      Promise.resolve(
        [...forge.context(context), ...forge.checkRun(context)].some((r) =>
          /running|in_progress/.test(String(r.body.description ?? r.body.state ?? r.body.status)),
        ),
      ),
    );
    await writeFile(go, '');
    const done = await finishedBuild(api.t.db, build.id);
    await scheduler.stop();
    scheduler = undefined;
    await hub.idle();
    return done;
  }

  it('GitHub stand-in, per-stage contexts: pending when queued → running → success, then a failure', async () => {
    const go = join(dataDir, 'go-github');
    const { p, repo, sha } = await project('acme/web', 'https://github.com/acme/web.git', {
      '.slipway.yml': pipeline(go, 0),
    });
    const gh = forges.github;
    const view = await api.call('admin', {
      method: 'PUT',
      url: '/api/v1/projects/acme/web/commit-status',
      payload: { apiUrl: gh.apiUrl, tokenSecret: 'STATUS_TOKEN', contexts: 'stage', checks: 'off' },
    });
    expect(view.statusCode).toBe(200);
    expect(view.json()).toMatchObject({
      enabled: true,
      forge: null,
      contexts: 'stage',
      resolved: { forge: 'github', apiUrl: gh.apiUrl, repository: 'acme/web' },
      tokenSecretExists: true,
    });

    const build = await run(p, { commit: sha });
    // Queued, before any scheduler ran it: pending on the build's context, with its page.
    expect(gh.requests).toHaveLength(1);
    expect(gh.requests[0]).toMatchObject({
      method: 'POST',
      path: `/api/v3/repos/acme/web/statuses/${sha}`,
      body: {
        state: 'pending',
        context: 'slipway',
        description: `Build #${build.number} queued`,
        target_url: `${BASE}/projects/acme/web/builds/${build.number}`,
      },
    });
    expect(gh.requests[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);

    expect((await finish(build, gh, go, 'slipway/one')).status).toBe('success');
    expect(gh.violations).toEqual([]);
    // GitHub has no running state: pending, saying so.
    expect(gh.context('slipway').map((r) => [r.body.state, r.body.description])).toEqual([
      ['pending', `Build #${build.number} queued`],
      ['pending', `Build #${build.number} running`],
      ['success', expect.stringMatching(new RegExp(`^Build #${build.number} succeeded in `))],
    ]);
    expect(gh.context('slipway/one').at(0)!.body).toMatchObject({
      state: 'pending',
      description: 'Stage one running',
    });
    expectProgress(gh.context('slipway/one'), [/running/, /succeeded/], /^Stage one succeeded/);
    expect(gh.context('slipway/two').at(0)!.body).toMatchObject({
      state: 'pending',
      description: 'Stage two queued',
    });
    expectProgress(gh.context('slipway/two'), [/queued/, /running/, /succeeded/], /^Stage two succeeded/);
    expect(gh.context('slipway/two').at(-1)!.body.state).toBe('success');
    expect(gh.requests.every((r) => r.path === `/api/v3/repos/acme/web/statuses/${sha}`)).toBe(true);

    // A commit whose stage two fails: failure on it and on the build, with the reason.
    gh.reset();
    await rm(go, { force: true });
    const failing = await repo.commit({ '.slipway.yml': pipeline(go, 3) }, 'break it');
    const second = await run(p, { commit: failing });
    expect((await finish(second, gh, go, 'slipway/one')).status).toBe('failure');
    expect(gh.violations).toEqual([]);
    const last = gh.context('slipway').at(-1)!.body;
    expect(last).toMatchObject({ state: 'failure', context: 'slipway' });
    expect(String(last.description)).toMatch(
      new RegExp(`^Build #${second.number} failed: step "check" exited with code 3$`),
    );
    expect(gh.context('slipway/two').at(-1)!.body).toMatchObject({ state: 'failure' });
    expect(gh.context('slipway/one').at(-1)!.body).toMatchObject({ state: 'success' });
    expect(hubErrors).toEqual([]);

    const deliveries = await api.call('viewer', {
      method: 'GET',
      url: `/api/v1/projects/acme/web/builds/${second.number}/commit-statuses`,
    });
    expect(deliveries.statusCode).toBe(200);
    const rows = deliveries.json<{ outcome: string; context: string; state: string }[]>();
    expect(rows.length).toBe(gh.requests.length);
    expect(rows.every((r) => r.outcome === 'delivered')).toBe(true);
  }, 120_000);

  it("GitHub App token, per-stage contexts: a check run per context, queued → in_progress → completed; a failure quotes the step's last lines, masked", async () => {
    const go = join(dataDir, 'go-checks');
    const { p, repo, sha } = await project('acme/app', 'https://github.com/acme/app.git', {
      '.slipway.yml': pipeline(go, 0),
    });
    const gh = forges.githubApp;
    await putCommitStatusSettings(api.t.db, p.id, {
      enabled: true,
      forge: null,
      apiUrl: gh.apiUrl,
      repository: null,
      tokenSecret: 'STATUS_TOKEN',
      contexts: 'stage',
      checks: 'auto',
    });
    const build = await run(p, { commit: sha });
    const runs = '/api/v3/repos/acme/app/check-runs';
    expect(gh.requests).toMatchObject([
      {
        method: 'POST',
        path: runs,
        body: {
          name: 'slipway',
          head_sha: sha,
          status: 'queued',
          external_id: String(build.id),
          details_url: `${BASE}/projects/acme/app/builds/${build.number}`,
          output: { title: `Build #${build.number} queued` },
        },
      },
    ]);
    expect((await finish(build, gh, go, 'slipway/one')).status).toBe('success');
    expect(gh.violations).toEqual([]);
    // Check runs only: GitHub would list a status of the same name beside each.
    expect(gh.requests.every((r) => r.path.startsWith(runs))).toBe(true);
    const slipway = gh.checkRun('slipway');
    const id = slipway[0]!.checkRunId!;
    expect(slipway.map((r) => [r.method, r.path, r.body.status, r.body.conclusion])).toEqual([
      ['POST', runs, 'queued', undefined],
      ['PATCH', `${runs}/${id}`, 'in_progress', undefined],
      ['PATCH', `${runs}/${id}`, 'completed', 'success'],
    ]);
    expect(slipway[2]!.body).toMatchObject({
      started_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown,
      completed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown,
    });
    for (const stage of ['slipway/one', 'slipway/two']) {
      const stageRuns = gh.checkRun(stage);
      expect(stageRuns.map((r) => r.method)).toEqual(['POST', ...stageRuns.slice(1).map(() => 'PATCH')]);
      expect(stageRuns.at(-1)!.body).toMatchObject({ status: 'completed', conclusion: 'success' });
    }
    expect(gh.checkRuns.size).toBe(3);

    gh.reset();
    await rm(go, { force: true });
    const failing = await repo.commit({ '.slipway.yml': pipeline(go, 3) }, 'break it');
    const second = await run(p, { commit: failing });
    expect((await finish(second, gh, go, 'slipway/one')).status).toBe('failure');
    expect(gh.violations).toEqual([]);
    const failed = `Build #${second.number} failed: step "check" exited with code 3`;
    const last = gh.checkRun('slipway').at(-1)!.body;
    expect(last).toMatchObject({
      status: 'completed',
      conclusion: 'failure',
      output: { title: failed, summary: failed },
    });
    // The stored lines, the secret masked as the log has it.
    const text = String((last.output as { text: unknown }).text);
    expect(text).toMatch(/^Last \d+ line\(s\) of two\/check:\n\n```text\n[^]*token=\[\*{8}\][^]*\n```\n$/);
    expect(gh.checkRun('slipway/two').at(-1)!.body).toMatchObject({
      conclusion: 'failure',
      output: { text },
    });
    expect(gh.checkRun('slipway/one').at(-1)!.body).toMatchObject({ conclusion: 'success' });
    expect(gh.checkRun('slipway/one').at(-1)!.body.output).not.toHaveProperty('text');
    expect(JSON.stringify(gh.requests.map((r) => r.body))).not.toContain(TOKEN);
    expect(hubErrors).toEqual([]);
    const rows = await listCommitStatusDeliveries(api.t.db, second.id);
    expect(rows.length).toBe(gh.requests.length);
    expect(rows.every((r) => r.kind === 'check' && r.outcome === 'delivered')).toBe(true);
  }, 120_000);

  it('GitLab stand-in, one context per build: pending → running → success on the URL-encoded project path', async () => {
    const go = join(dataDir, 'go-gitlab');
    const { p, sha } = await project('acme/gl', 'https://gitlab.example.com/group/sub/web.git', {
      '.slipway.yml': pipeline(go, 0),
    });
    const gl = forges.gitlab;
    await putCommitStatusSettings(api.t.db, p.id, {
      enabled: true,
      forge: 'gitlab',
      apiUrl: gl.apiUrl,
      repository: null,
      tokenSecret: 'STATUS_TOKEN',
      contexts: 'build',
    });
    const build = await run(p, { commit: sha });
    expect((await finish(build, gl, go)).status).toBe('success');
    expect(gl.violations).toEqual([]);
    // GitLab refuses the same state twice: one post per state, nothing for stages.
    expect(gl.requests.map((r) => r.body.state)).toEqual(['pending', 'running', 'success']);
    expect(gl.requests.every((r) => r.path === `/api/v4/projects/group%2Fsub%2Fweb/statuses/${sha}`)).toBe(
      true,
    );
    expect(gl.requests[0]!.headers['private-token']).toBe(TOKEN);
    expect(gl.requests[2]!.body).toMatchObject({
      name: 'slipway',
      ref: 'main',
      target_url: `${BASE}/projects/acme/gl/builds/${build.number}`,
    });
  }, 120_000);

  it('Gitea stand-in, a pull request from a fork: statuses on the base repository with its token, no token in the build', async () => {
    const go = join(dataDir, 'go-gitea');
    const { p, sha } = await project('acme/tea', 'git@gitea.example.com:acme/tea.git', {
      '.slipway.yml': pipeline(go, 1),
    });
    const tea = forges.gitea;
    await putCommitStatusSettings(api.t.db, p.id, {
      enabled: true,
      forge: 'gitea',
      apiUrl: tea.apiUrl,
      repository: null,
      tokenSecret: 'STATUS_TOKEN',
      contexts: 'build',
    });
    const build = await run(p, { commit: sha, event: 'pull_request', fork: true });
    expect((await finish(build, tea, go)).status).toBe('failure');
    expect(tea.violations).toEqual([]);
    expect(tea.requests.map((r) => [r.body.state, r.body.description])).toEqual([
      ['pending', `Build #${build.number} queued`],
      ['pending', `Build #${build.number} running`],
      ['failure', expect.stringMatching(/^Build #1 failed: step "check" exited with code 1$/)],
    ]);
    expect(tea.requests.every((r) => r.path === `/api/v1/repos/acme/tea/statuses/${sha}`)).toBe(true);
    expect(tea.requests.every((r) => r.headers.authorization === `token ${TOKEN}`)).toBe(true);
    const log = (await new FsLogStore(join(dataDir, 'logs')).read(build.id, 0)).map((l) => l.text);
    expect(log).toContain('token=[]');
    expect(log.join('\n')).not.toContain(TOKEN);

    // A token secret that forks may read is refused, visibly, and the build is not touched.
    await setSecret(api.t.db, cipher, p.id, { name: 'STATUS_TOKEN', value: TOKEN, allowForks: true });
    tea.reset();
    const again = await control.rerun(build.id, 'someone');
    await hub.idle();
    expect(tea.requests).toEqual([]);
    const refused = await listCommitStatusDeliveries(api.t.db, again.id);
    expect(refused).toMatchObject([
      {
        outcome: 'failed',
        message:
          'commit status to Gitea not sent: the token secret "STATUS_TOKEN" is given to pull requests from forks: set it again without allowForks',
      },
    ]);
    expect(hubErrors.at(-1)).toMatch(/given to pull requests from forks/);
    hubErrors.length = 0;
    await control.cancel(again.id, 'someone');
    await hub.idle();
    expect((await getBuild(api.t.db, again.id))?.status).toBe('cancelled');
  }, 120_000);
});

describe.each(DIALECTS)(
  'commit statuses on a GitHub stand-in: forge failures, settings and secrecy (%s)',
  (dialect) => {
    let api: PluginApi;
    let gh: StandInForge;
    let p: Project;
    const cipher = new SecretCipher(randomBytes(32));
    const seen: string[] = [];

    beforeAll(async () => {
      api = await startPluginApi(dialect, (db) => [(app) => registerCommitStatusRoutes(app, { db })]);
      gh = await new StandInForge('github', TOKEN).start();
      p = await createProject(api.t.db, { slug: 'acme/fail', repoUrl: 'https://github.com/acme/fail' });
      await setSecret(api.t.db, cipher, p.id, { name: 'GH_TOKEN', value: TOKEN, allowForks: false });
    });
    afterAll(async () => {
      await gh?.stop();
      await api?.close();
    });

    /** A running build and its notice, as the hub would make it. */
    async function runningBuild(): Promise<BuildNotice> {
      const sha = randomBytes(20).toString('hex');
      // A branch of its own: the earlier ones still hold theirs.
      const b = await createBuild(api.t.db, {
        projectId: p.id,
        branch: `b-${sha.slice(0, 8)}`,
        event: 'push',
        trigger: 'webhook',
        commitSha: sha,
      });
      await claimNextBuilds(api.t.db, 'status-test', 1, { global: 100 });
      const build = (await setBuildStatus(api.t.db, b.id, ['pending'], 'running', {
        ifLeaseOwner: 'status-test',
      }))!;
      return {
        event: 'started',
        build,
        project: p,
        url: `${BASE}/projects/acme/fail/builds/${build.number}`,
      };
    }

    const notifier = (retries = 3) =>
      new CommitStatusNotifier({ db: api.t.db, cipher, retries, retryDelayMs: 10, maxRetryAfterMs: 5000 });

    async function failure(notice: BuildNotice, n = notifier()): Promise<string> {
      const error = await n.buildStarted(notice).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(CommitStatusError);
      seen.push(String(error));
      return (error as Error).message;
    }

    it('settings: admins set them, viewers read them, bad ones get a clear 400, the token value is never shown', async () => {
      const url = '/api/v1/projects/acme/fail/commit-status';
      expect((await api.call('viewer', { method: 'GET', url })).json()).toMatchObject({
        enabled: false,
        tokenSecret: null,
        resolved: { forge: 'github', apiUrl: 'https://api.github.com', repository: 'acme/fail' },
      });
      const payload = { apiUrl: `${gh.apiUrl}/`, tokenSecret: 'GH_TOKEN', checks: 'off' };
      expect((await api.call('member', { method: 'PUT', url, payload })).statusCode).toBe(403);
      const put = await api.call('admin', { method: 'PUT', url, payload });
      expect(put.statusCode).toBe(200);
      expect(put.json()).toMatchObject({
        apiUrl: gh.apiUrl,
        tokenSecret: 'GH_TOKEN',
        tokenSecretExists: true,
      });
      seen.push(put.body, (await api.call('viewer', { method: 'GET', url })).body);

      const other = await createProject(api.t.db, {
        slug: 'acme/selfhosted',
        repoUrl: 'https://git.example.com/acme/x.git',
      });
      const unknown = await api.call('admin', {
        method: 'PUT',
        url: '/api/v1/projects/acme/selfhosted/commit-status',
        payload: { tokenSecret: 'GH_TOKEN' },
      });
      expect(unknown.statusCode).toBe(400);
      expect(unknown.json()).toMatchObject({
        error: {
          code: 'invalid_request',
          message:
            'commit status: cannot tell which forge git.example.com is: set "forge" to github, gitlab or gitea',
        },
      });
      const gitea = await api.call('admin', {
        method: 'PUT',
        url: '/api/v1/projects/acme/selfhosted/commit-status',
        payload: { tokenSecret: 'GH_TOKEN', forge: 'gitea', contexts: 'stage' },
      });
      expect(gitea.json()).toMatchObject({
        resolved: { forge: 'gitea', apiUrl: 'https://git.example.com/api/v1', repository: 'acme/x' },
        tokenSecretExists: false,
      });
      const badName = await api.call('admin', {
        method: 'PUT',
        url: '/api/v1/projects/acme/selfhosted/commit-status',
        payload: { tokenSecret: 'no spaces', forge: 'bitbucket' },
      });
      expect(badName.statusCode).toBe(400);
      expect(badName.json<{ error: { code: string } }>().error.code).toBe('invalid_request');
      expect(other.id).toBeGreaterThan(p.id);
    });

    it('401 and 403 are not retried; the failure is stored with the forge status and words, never the token', async () => {
      gh.reset();
      gh.script.push({
        status: 401,
        body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' },
      });
      const notice = await runningBuild();
      expect(await failure(notice)).toBe('commit status to GitHub failed: 401 Bad credentials');
      expect(gh.requests).toHaveLength(1);

      // A hostile forge echoing the header it got: the token is cut out of what is stored.
      gh.script.push({ status: 403, body: { message: `Resource not accessible with Bearer ${TOKEN}` } });
      const second = await runningBuild();
      expect(await failure(second)).toBe(
        'commit status to GitHub failed: 403 Resource not accessible with Bearer ***',
      );
      expect(gh.requests).toHaveLength(2);
      expect(gh.violations).toEqual([]);

      const rows = await listCommitStatusDeliveries(api.t.db, second.build.id);
      expect(rows).toMatchObject([
        { outcome: 'failed', httpStatus: 403, attempts: 1, context: 'slipway', state: 'pending' },
      ]);
      expect((await getBuild(api.t.db, second.build.id))?.status).toBe('running');
      const listed = await api.call('viewer', {
        method: 'GET',
        url: `/api/v1/projects/acme/fail/builds/${second.build.number}/commit-statuses`,
      });
      expect(listed.json()).toMatchObject([
        { outcome: 'failed', httpStatus: 403, message: expect.stringContaining('403') as unknown },
      ]);
      seen.push(listed.body, JSON.stringify(rows));
    });

    it('429 waits as long as Retry-After says, then delivers; too long a wait is given up at once', async () => {
      gh.reset();
      gh.script.push({ status: 429, headers: { 'retry-after': '1' }, body: { message: 'slow down' } });
      const notice = await runningBuild();
      await notifier().buildStarted(notice);
      expect(gh.requests).toHaveLength(2);
      // Lower bound only: a busy machine makes the gap longer, never shorter.
      expect(gh.requests[1]!.at - gh.requests[0]!.at).toBeGreaterThanOrEqual(950);
      expect(await listCommitStatusDeliveries(api.t.db, notice.build.id)).toMatchObject([
        { outcome: 'delivered', httpStatus: 201, attempts: 2 },
      ]);

      gh.reset();
      gh.script.push({ status: 429, headers: { 'retry-after': '3600' } });
      expect(await failure(await runningBuild())).toBe(
        'commit status to GitHub failed: 429 status 429 (asked to retry after 3600 s: given up)',
      );
      expect(gh.requests).toHaveLength(1);
    });

    it('moments announced once the build is over (the hub reads it once for all) post its final state once', async () => {
      gh.reset();
      const started = await runningBuild();
      const build = (await setBuildStatus(api.t.db, started.build.id, ['running'], 'success'))!;
      const n = notifier();
      for (const event of ['started', 'stage', 'finished'] as const) {
        const notice = { ...started, event, build };
        if (event === 'started') await n.buildStarted(notice);
        else if (event === 'stage') await n.stageChanged(notice);
        else await n.buildFinished(notice);
      }
      const posts = gh.requests.filter((r) => r.path.includes('/statuses/'));
      expect(posts.map((r) => r.body.state)).toEqual(['success']);
    });

    it('500 and network errors are retried with backoff, then recorded as failed', async () => {
      gh.reset();
      for (let i = 0; i < 3; i++) gh.script.push({ status: 500, body: { message: 'Server Error' } });
      const notice = await runningBuild();
      expect(await failure(notice, notifier(2))).toBe(
        'commit status to GitHub failed: 500 Server Error after 3 attempts',
      );
      expect(gh.requests).toHaveLength(3);
      // 10 ms, then 20 ms (lower bounds).
      expect(gh.requests[2]!.at - gh.requests[1]!.at).toBeGreaterThanOrEqual(18);

      gh.reset();
      for (const status of [404, 422])
        gh.script.push({ status, body: { message: status === 404 ? 'Not Found' : 'Validation Failed' } });
      expect(await failure(await runningBuild())).toBe('commit status to GitHub failed: 404 Not Found');
      expect(await failure(await runningBuild())).toBe(
        'commit status to GitHub failed: 422 Validation Failed',
      );
      expect(gh.requests).toHaveLength(2);

      const dead = await new StandInForge('github', TOKEN).start();
      const deadApi = dead.apiUrl;
      await dead.stop();
      await putCommitStatusSettings(api.t.db, p.id, {
        enabled: true,
        forge: null,
        apiUrl: deadApi,
        repository: null,
        tokenSecret: 'GH_TOKEN',
        contexts: 'build',
        checks: 'off',
      });
      expect(await failure(await runningBuild(), notifier(1))).toMatch(
        /^commit status to GitHub failed: fetch failed \(.*ECONNREFUSED.*\) after 2 attempts$/,
      );
    });

    it('the hub tells webhook targets nothing of the queued and stage moments, and the notifier all four', async () => {
      gh.reset();
      await putCommitStatusSettings(api.t.db, p.id, {
        enabled: true,
        forge: null,
        apiUrl: gh.apiUrl,
        repository: null,
        tokenSecret: 'GH_TOKEN',
        contexts: 'build',
        checks: 'off',
      });
      const target = await addNotifyTarget(api.t.db, { projectId: p.id, url: `${gh.url}/webhook` });
      // One instance for every notice: it remembers what it posted per build.
      const statuses = notifier();
      const hub = createNotifierHub(api.t.db, {
        baseUrl: BASE,
        extra: () => [statuses],
        onError: (e) => seen.push(String(e)),
      });
      try {
        const { build } = await runningBuild();
        hub.onBuildQueued(build.id);
        hub.onStageChanged(build.id);
        await hub.idle();
        expect(gh.requests.filter((r) => r.path === '/webhook')).toEqual([]);
        expect(gh.context('slipway').map((r) => r.body.description)).toEqual([
          `Build #${build.number} running`,
        ]);
        hub.onBuildStarted(build.id);
        await hub.idle();
        expect(gh.requests.filter((r) => r.path === '/webhook')).toHaveLength(1);
        expect(gh.context('slipway')).toHaveLength(1);
      } finally {
        await hub.close();
        await removeNotifyTarget(api.t.db, target.id);
      }
    });

    it('the token appears in no answer, message or stored row', async () => {
      const rows = [];
      for (let number = 1; number <= p.lastNumber + 20; number++) {
        const listed = await api.call('viewer', {
          method: 'GET',
          url: `/api/v1/projects/acme/fail/builds/${number}/commit-statuses`,
        });
        if (listed.statusCode === 404) break;
        rows.push(...listed.json<unknown[]>());
      }
      const settings = await getCommitStatusSettings(api.t.db, p.id);
      expect(rows.length).toBeGreaterThan(5);
      expect(seen.length).toBeGreaterThan(5);
      for (const text of [...seen, JSON.stringify(rows), JSON.stringify(settings)])
        expect(text).not.toContain(TOKEN);
    });
  },
);

describe('stand-in forges refuse what their forge would', () => {
  it('GitHub stand-in: a state outside the published enum, an unknown field, a bad header; GitLab stand-in: an unencoded path', async () => {
    const gh = await new StandInForge('github', TOKEN).start();
    const gl = await new StandInForge('gitlab', TOKEN).start();
    try {
      const sha = 'a'.repeat(40);
      const answer = await fetch(`${gh.apiUrl}/repos/acme/web/statuses/${sha}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ state: 'running', context: 'slipway', colour: 'blue' }),
      });
      expect(answer.status).toBe(422);
      expect(gh.violations.join('\n')).toMatch(/must be equal to one of the allowed values/);
      expect(gh.violations.join('\n')).toMatch(/fields not in the schema: colour/);
      expect(gh.violations.join('\n')).toMatch(/no X-GitHub-Api-Version/);
      await fetch(`${gl.apiUrl}/projects/group/web/statuses/${sha}`, {
        method: 'POST',
        headers: { 'private-token': TOKEN, 'content-type': 'application/json' },
        body: JSON.stringify({ state: 'pending', name: 'slipway', target_url: 'not a url' }),
      });
      expect(gl.violations.join('\n')).toMatch(/is not \/projects\/:id\/statuses\/:sha/);
      expect(gl.violations.join('\n')).toMatch(/must match format \\"uri\\"/);
    } finally {
      await gh.stop();
      await gl.stop();
    }
  });
});
