import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  claimNextBuilds,
  createBuild,
  createProject,
  getBuild,
  getProject,
  setBuildStatus,
  type Build,
  type Project,
} from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { createNotifierHub } from './hub.js';
import { addNotifyTarget, listNotifyTargets, removeNotifyTarget } from './targets.js';
import type { BuildNotice } from './types.js';
import { NotifyError, WebhookNotifier } from './webhook-notifier.js';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  at: number;
}

/**
 * A real HTTP server on loopback that records what it is sent. `/ok` answers 200, `/flaky`
 * 503 twice then 200, `/gone` 404, `/slow` answers after 2 s, `/down` always 503.
 */
class LocalReceiver {
  readonly received: Received[] = [];
  private readonly server: Server;
  private flakyLeft = 2;

  constructor() {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        const path = request.url ?? '/';
        this.received.push({
          path,
          headers: request.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
          at: Date.now(),
        });
        const answer = (status: number) =>
          response.writeHead(status, { 'content-type': 'text/plain' }).end(String(status));
        if (path === '/flaky') return answer(this.flakyLeft-- > 0 ? 503 : 200);
        if (path === '/gone') return answer(404);
        if (path === '/down') return answer(503);
        if (path === '/slow') return void setTimeout(() => answer(200), 2000);
        return answer(200);
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  reset(): void {
    this.received.length = 0;
    this.flakyLeft = 2;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

const build: Build = {
  id: 7,
  projectId: 1,
  projectSlug: 'acme/web',
  number: 42,
  status: 'failure',
  reason: { code: 'exit_code', message: 'step test/unit failed with exit code 1 <see log>' },
  branch: 'main',
  commitSha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
  commitMessage: null,
  commitAuthor: null,
  pullRequest: null,
  tag: null,
  event: 'push',
  trigger: 'webhook',
  triggeredBy: 'github:octocat',
  createdAt: 1_700_000_000_000,
  queuedAt: 1_700_000_000_000,
  startedAt: 1_700_000_001_000,
  finishedAt: 1_700_000_096_000,
  durationMs: 95_000,
  rerunOf: null,
  rerunFailed: false,
  executor: 'local',
  leaseOwner: null,
  leaseExpiresAt: null,
  attempt: 1,
};
const project = { id: 1, slug: 'acme/web', repoUrl: 'https://github.com/acme/web.git' } as Project;
const notice = (event: 'started' | 'finished', b: Partial<Build> = {}): BuildNotice => ({
  event,
  build: { ...build, ...b },
  project,
  url: 'https://ci.example.com/projects/acme/web/builds/42',
});

describe('outgoing webhook notifier (real local receiver)', () => {
  const receiver = new LocalReceiver();
  let base: string;

  beforeAll(async () => {
    base = await receiver.start();
  });
  afterAll(() => receiver.stop());
  beforeEach(() => receiver.reset());

  it('posts Slipway JSON with build, project, status and url', async () => {
    await new WebhookNotifier({ url: `${base}/ok` }).buildFinished(notice('finished'));
    const [got] = receiver.at('/ok');
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.body).toEqual({
      event: 'build.finished',
      project: { id: 1, slug: 'acme/web', repoUrl: 'https://github.com/acme/web.git' },
      build: expect.objectContaining({
        id: 7,
        number: 42,
        status: 'failure',
        branch: 'main',
        commit: build.commitSha,
        durationMs: 95_000,
      }) as unknown,
      status: 'failure',
      url: 'https://ci.example.com/projects/acme/web/builds/42',
    });
  });

  it('posts a Slack-compatible {text, attachments} message with `slack: true`', async () => {
    await new WebhookNotifier({ url: `${base}/ok`, slack: true }).buildFinished(notice('finished'));
    const body = receiver.at('/ok')[0]?.body as { text: string; attachments: Record<string, unknown>[] };
    expect(body.text).toBe(
      ':x: <https://ci.example.com/projects/acme/web/builds/42|acme/web #42> failed (main @ 6113728f27ae)',
    );
    expect(body.attachments[0]).toMatchObject({
      color: 'danger',
      title: 'acme/web #42',
      title_link: 'https://ci.example.com/projects/acme/web/builds/42',
      text: 'step test/unit failed with exit code 1 &lt;see log&gt;',
      footer: 'Slipway',
      fields: [
        { title: 'Branch', value: 'main', short: true },
        { title: 'Commit', value: '6113728f27ae', short: true },
        { title: 'Event', value: 'push', short: true },
        { title: 'Duration', value: '1m 35s', short: true },
      ],
    });
    await new WebhookNotifier({ url: `${base}/ok`, slack: true }).buildStarted(
      notice('started', { status: 'running' }),
    );
    expect((receiver.at('/ok')[1]?.body as { text: string }).text).toMatch(
      /^:arrow_forward: .* started \(main @ 6113728f27ae\)$/,
    );
  });

  it('retries transient failures with growing delays', async () => {
    await new WebhookNotifier({ url: `${base}/flaky`, retryDelayMs: 20 }).buildStarted(notice('started'));
    const attempts = receiver.at('/flaky');
    expect(attempts).toHaveLength(3);
    // Lower bounds only (a busy machine makes any gap longer, never shorter): 20 ms, then 40 ms.
    // A timer may fire a millisecond early, and `at` is taken on arrival, hence the slack.
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(18);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(38);
  });

  it('gives up after the retries, and at once on a 4xx', async () => {
    const down = await new WebhookNotifier({ url: `${base}/down`, retries: 1, retryDelayMs: 10 })
      .buildStarted(notice('started'))
      .catch((e: unknown) => e);
    expect(down).toBeInstanceOf(NotifyError);
    expect(down).toMatchObject({ message: `webhook ${base}/… answered 503`, status: 503 });
    expect(receiver.at('/down')).toHaveLength(2);
    await expect(
      new WebhookNotifier({ url: `${base}/gone`, retryDelayMs: 10 }).buildStarted(notice('started')),
    ).rejects.toThrow(/answered 404/);
    expect(receiver.at('/gone')).toHaveLength(1);
  });

  it('times out a receiver that does not answer', async () => {
    // The receiver never answers: only the notifier's own timeout can end this.
    await expect(
      new WebhookNotifier({ url: `${base}/slow`, timeoutMs: 100, retries: 0 }).buildStarted(
        notice('started'),
      ),
    ).rejects.toThrow(/timed out after 100 ms/);
  });

  it('posts only the notices its events ask for', async () => {
    const failedOnly = new WebhookNotifier({ url: `${base}/ok`, events: ['failed'] });
    await failedOnly.buildStarted(notice('started'));
    await failedOnly.buildFinished(notice('finished', { status: 'success' }));
    await failedOnly.buildFinished(notice('finished', { status: 'failure' }));
    expect(receiver.at('/ok').map((r) => r.body.status)).toEqual(['failure']);
  });
});

describe.each(DIALECTS)('notifier hub (%s, real local receiver)', (dialect) => {
  const receiver = new LocalReceiver();
  let t: TestDatabase;
  let base: string;
  let p: Project;

  beforeAll(async () => {
    base = await receiver.start();
    t = await openTestDatabase(dialect);
    p = await createProject(t.db, { slug: 'acme/notified', repoUrl: 'https://github.com/acme/notified.git' });
  });
  afterAll(async () => {
    await receiver.stop();
    await t.destroy();
  });

  it('stores targets per project and globally', async () => {
    const own = await addNotifyTarget(t.db, { projectId: p.id, url: `${base}/ok`, slack: true });
    const global = await addNotifyTarget(t.db, { projectId: null, url: `${base}/flaky`, events: ['failed'] });
    expect(own).toMatchObject({ projectId: p.id, slack: true, events: ['started', 'finished'] });
    expect((await listNotifyTargets(t.db, p.id)).map((x) => x.id)).toEqual([own.id, global.id]);
    await expect(addNotifyTarget(t.db, { projectId: p.id, url: 'ftp://example.com/x' })).rejects.toThrow(
      /must be http:\/\/ or https:\/\//,
    );
    await expect(
      addNotifyTarget(t.db, { projectId: p.id, url: `${base}/ok`, events: ['exploded' as 'failed'] }),
    ).rejects.toThrow(/started, finished, failed/);
  });

  it('announces start and finish in order, in the background, to every target that wants them', async () => {
    const errors: unknown[] = [];
    const hub = createNotifierHub(t.db, {
      baseUrl: 'https://ci.example.com/',
      retryDelayMs: 10,
      onError: (e) => errors.push(e),
    });
    const queued = await createBuild(t.db, {
      projectId: p.id,
      branch: 'main',
      event: 'push',
      trigger: 'webhook',
    });
    await claimNextBuilds(t.db, 'notify-test', 1, { global: 10 });
    await setBuildStatus(t.db, queued.id, ['pending'], 'running', { ifLeaseOwner: 'notify-test' });

    hub.onBuildStarted(queued.id);
    // In the background: the call returned before anything reached a receiver (no wall-time
    // bound, which a busy machine would break).
    expect(receiver.at('/ok')).toHaveLength(0);
    await setBuildStatus(t.db, queued.id, ['running'], 'failure', {
      reason: { code: 'exit_code', message: 'unit failed' },
    });
    hub.onBuildFinished(queued.id);
    await hub.idle();

    expect(errors).toEqual([]);
    const own = receiver
      .at('/ok')
      .map((r) => r.body as { text: string; attachments: { title_link: string }[] });
    expect(own).toHaveLength(2);
    expect(own[0]!.text).toMatch(/started/);
    expect(own[1]!.text).toMatch(/^:x: .*failed/);
    expect(own[1]!.attachments[0]!.title_link).toBe(
      `https://ci.example.com/projects/acme/notified/builds/${queued.number}`,
    );
    // The global target wants failures only, and got this one despite two 503s first.
    const global = receiver.at('/flaky');
    expect(global).toHaveLength(3);
    expect(global[2]!.body).toMatchObject({
      event: 'build.finished',
      status: 'failure',
      build: { id: queued.id },
    });
    expect((await getBuild(t.db, queued.id))?.status).toBe('failure');
  });

  it('a dead receiver is reported, never thrown, and other targets still get theirs', async () => {
    receiver.reset();
    for (const target of await listNotifyTargets(t.db, p.id)) await removeNotifyTarget(t.db, target.id);
    const dead = new LocalReceiver();
    const deadUrl = await dead.start();
    await dead.stop();
    await addNotifyTarget(t.db, { projectId: p.id, url: `${deadUrl}/nobody-home` });
    await addNotifyTarget(t.db, { projectId: p.id, url: `${base}/ok` });
    const errors: { error: unknown; context: { buildId: number; notifier?: string } }[] = [];
    const hub = createNotifierHub(t.db, {
      retries: 1,
      retryDelayMs: 10,
      onError: (error, context) => errors.push({ error, context }),
    });
    const b = await createBuild(t.db, { projectId: p.id, branch: 'dev', event: 'push', trigger: 'webhook' });
    hub.onBuildStarted(b.id);
    await hub.idle();
    await hub.close();
    hub.onBuildFinished(b.id);
    await hub.idle();
    expect(receiver.at('/ok')).toHaveLength(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.context).toEqual({ buildId: b.id, notifier: `webhook ${deadUrl}/…` });
    expect(String(errors[0]!.error)).toMatch(/NotifyError: webhook .* failed: fetch failed/);
    expect(await getProject(t.db, p.id)).toBeDefined();
  });
});
