import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { sign } from '@octokit/webhooks-methods';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, findDelivery, getBuild, listBuilds, type Project } from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { Metrics } from '../metrics.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';
import { registerHookRoutes } from './routes.js';
import { signBody } from './signatures.js';
import { headRepoFork, updateHookSettings } from './store.js';

const SECRET = 'It is a Secret to Everybody';
const LIMIT = 64 * 1024;

type Json = Record<string, unknown>;

/** Real payloads GitHub sent, collected by the Octokit project (its JSON, typed by hand). */
const examples = createRequire(import.meta.url)('@octokit/webhooks-examples') as {
  name: string;
  examples: Json[];
}[];

/** The n-th real GitHub example payload of an event (optionally of an action), deep-copied. */
function githubExample(event: string, pick: (p: Json) => boolean = () => true): Json {
  const definition = examples.find((d) => d.name === event);
  const payload = definition?.examples.find(pick);
  if (!payload) throw new Error(`no ${event} example`);
  return structuredClone(payload);
}

/** The payload about another repository: every URL of it replaced. */
function movedTo(payload: Json, cloneUrl: string): Json {
  payload.repository = {
    ...(payload.repository as Json),
    clone_url: cloneUrl,
    ssh_url: null,
    git_url: null,
    html_url: null,
  };
  return payload;
}

function fixture(name: string): Json {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as Json;
}

let deliveries = 0;
const nextDelivery = () => `delivery-${process.pid}-${++deliveries}`;

describe.each(DIALECTS)('webhooks (%s, real payloads, real build control)', (dialect) => {
  let t: TestDatabase;
  let app: FastifyInstance;
  let metrics: Metrics;
  let hello: Project;

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
    metrics = new Metrics({ processMetrics: false });
    app = Fastify();
    registerHookRoutes(app, { db: t.db, control: new DatabaseBuildControl(t.db), metrics, bodyLimit: LIMIT });
    await app.ready();
    // The ssh form and other case than the payload's clone_url: matched after normalization.
    hello = await project('codertocat/hello-world', 'git@github.com:codertocat/hello-world.git');
  });

  afterAll(async () => {
    await app.close();
    await t.destroy();
  });

  async function project(
    slug: string,
    repoUrl: string,
    extra: { branchFilter?: string; secret?: string | null } = {},
  ) {
    const p = await createProject(t.db, {
      slug,
      repoUrl,
      ...(extra.branchFilter !== undefined && { branchFilter: extra.branchFilter }),
    });
    if (extra.secret !== null) await updateHookSettings(t.db, p.id, { secret: extra.secret ?? SECRET });
    return p;
  }

  async function github(
    event: string,
    payload: Json | string,
    options: { delivery?: string; signature?: string | null; query?: string } = {},
  ) {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    const signature =
      options.signature === undefined
        ? body === ''
          ? signBody(SECRET, body)
          : await sign(SECRET, body)
        : options.signature;
    return app.inject({
      method: 'POST',
      url: `/hooks/github${options.query ?? ''}`,
      headers: {
        'content-type': 'application/json',
        'x-github-event': event,
        'x-github-delivery': options.delivery ?? nextDelivery(),
        ...(signature !== null && { 'x-hub-signature-256': signature }),
      },
      payload: body,
    });
  }

  const buildsOf = async (p: Project) => (await listBuilds(t.db, { projectId: p.id, limit: 500 })).builds;

  const rejected = async (forge: string, reason: string) => {
    const metric = await metrics.registry.getSingleMetric('slipway_webhook_rejected_total')!.get();
    return metric.values.find((v) => v.labels.forge === forge && v.labels.reason === reason)?.value ?? 0;
  };

  describe('GitHub', () => {
    it('a branch push starts a build of that branch and commit', async () => {
      const payload = githubExample('push', (p) => p.ref === 'refs/heads/master' && p.deleted === false);
      const res = await github('push', payload);
      expect(res.statusCode).toBe(201);
      const answer = res.json<{ build: { id: number; number: number; project: string } }>();
      expect(answer.build.project).toBe('codertocat/hello-world');
      const build = await getBuild(t.db, answer.build.id);
      expect(build).toMatchObject({
        number: answer.build.number,
        status: 'queued',
        branch: 'master',
        tag: null,
        commitSha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
        event: 'push',
        trigger: 'webhook',
        triggeredBy: 'github:Codertocat',
      });
      expect(await headRepoFork(t.db, answer.build.id)).toBeNull();
    });

    it('a tag push starts a tag build', async () => {
      const payload = githubExample('push', (p) => p.ref === 'refs/tags/simple-tag' && p.deleted === false);
      const res = await github('push', payload);
      expect(res.statusCode).toBe(201);
      const build = await getBuild(t.db, res.json<{ build: { id: number } }>().build.id);
      expect(build).toMatchObject({ event: 'tag', tag: 'simple-tag', branch: 'simple-tag' });
    });

    it('a pull request opened or synchronized builds its head, recording that it is not from a fork', async () => {
      for (const action of ['opened', 'synchronize']) {
        const res = await github(
          'pull_request',
          githubExample('pull_request', (p) => p.action === action),
        );
        expect(res.statusCode).toBe(201);
        const id = res.json<{ build: { id: number } }>().build.id;
        expect(await getBuild(t.db, id)).toMatchObject({
          event: 'pull_request',
          branch: 'changes',
          commitSha: 'ec26c3e57ca3a959ca5aad62de7213c562f8c821',
        });
        expect(await headRepoFork(t.db, id)).toBe(false);
      }
    });

    it('a pull request from a fork is recorded as such', async () => {
      const payload = githubExample('pull_request', (p) => p.action === 'reopened');
      const head = (payload.pull_request as Json).head as Json;
      head.repo = { ...(head.repo as Json), id: 999_999, full_name: 'mallory/Hello-World', fork: true };
      const res = await github('pull_request', payload);
      expect(res.statusCode).toBe(201);
      expect(await headRepoFork(t.db, res.json<{ build: { id: number } }>().build.id)).toBe(true);
    });

    it('other pull request actions are ignored with the reason', async () => {
      const res = await github(
        'pull_request',
        githubExample('pull_request', (p) => p.action === 'closed'),
      );
      expect(res.statusCode).toBe(202);
      expect(res.json<{ ignored: string }>().ignored).toMatch(/pull_request action "closed" is not built/);
    });

    it('ping answers pong', async () => {
      // The example pings come from another repository; the hook URL names the project.
      const res = await github(
        'ping',
        githubExample('ping', (p) => p.repository !== undefined),
        { query: '?project=codertocat/hello-world' },
      );
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ message: 'pong', project: 'codertocat/hello-world' });
    });

    it('ref deletions and unsupported events are ignored, starting nothing', async () => {
      const before = (await buildsOf(hello)).length;
      const deleted = await github(
        'push',
        githubExample('push', (p) => p.deleted === true),
      );
      expect(deleted.statusCode).toBe(202);
      expect(deleted.json<{ ignored: string }>().ignored).toBe(
        'refs/tags/simple-tag was deleted; deletions are not built',
      );
      const del = await github('delete', githubExample('delete'));
      expect(del.statusCode).toBe(202);
      expect(del.json<{ ignored: string }>().ignored).toMatch(/"delete" events are not built/);
      const star = await github('star', githubExample('star'));
      expect(star.statusCode).toBe(202);
      expect((await buildsOf(hello)).length).toBe(before);
    });

    it('accepts the form-encoded content type, signed over the form body', async () => {
      const payload = githubExample('push', (p) => p.ref === 'refs/heads/master' && p.deleted === false);
      const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
      const res = await app.inject({
        method: 'POST',
        url: '/hooks/github',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-github-event': 'push',
          'x-github-delivery': nextDelivery(),
          'x-hub-signature-256': await sign(SECRET, body),
        },
        payload: body,
      });
      expect(res.statusCode).toBe(201);
    });
  });

  describe('bad input', () => {
    const push = () => githubExample('push', (p) => p.ref === 'refs/heads/master' && p.deleted === false);

    it('a forged signature is 401; nothing is recorded but the counter', async () => {
      const before = (await buildsOf(hello)).length;
      const counted = await rejected('github', 'bad_signature');
      const body = JSON.stringify(push());
      const delivery = nextDelivery();
      const res = await github('push', body, { signature: await sign('not the secret', body), delivery });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({
        error: { code: 'unauthorized', message: expect.stringMatching(/X-Hub-Signature-256/) as unknown },
      });
      expect((await buildsOf(hello)).length).toBe(before);
      expect(await findDelivery(t.db, 'github', delivery)).toBeUndefined();
      expect(await rejected('github', 'bad_signature')).toBe(counted + 1);
      // The right signature over other bytes is forged too.
      const tampered = await github('push', body.replace('master', 'main'), {
        signature: await sign(SECRET, body),
      });
      expect(tampered.statusCode).toBe(401);
    });

    it('a missing signature is 401', async () => {
      const res = await github('push', push(), { signature: null });
      expect(res.statusCode).toBe(401);
      expect(res.json<{ error: { message: string } }>().error.message).toBe(
        'the delivery is not signed (expected the X-Hub-Signature-256 header)',
      );
      expect(await rejected('github', 'missing_signature')).toBeGreaterThan(0);
    });

    it('a project without a webhook secret accepts no delivery, and says no more than for a forgery', async () => {
      await project('acme/unsigned', 'https://github.com/acme/unsigned.git', { secret: null });
      const res = await github('push', movedTo(push(), 'https://github.com/acme/unsigned.git'));
      expect(res.statusCode).toBe(401);
      const body = JSON.stringify(push());
      const forged = await github('push', body, { signature: await sign('not the secret', body) });
      expect(res.json()).toEqual(forged.json());
      expect(await rejected('github', 'no_secret')).toBeGreaterThan(0);
    });

    it('a failure of the server is answered by the API’s handler: 500 "internal error (id …)", no internals', async () => {
      // Sealed by a key this server was not given: opening it fails inside the server.
      const sealer = { seal: (plain: string) => `sealed:${plain}`, open: (sealed: string) => sealed };
      const p = await project('acme/sealed', 'https://github.com/acme/sealed.git', { secret: null });
      await updateHookSettings(t.db, p.id, { secret: SECRET }, { sealer });
      const res = await github('push', movedTo(push(), 'https://github.com/acme/sealed.git'));
      expect(res.statusCode).toBe(500);
      const { error } = res.json<{
        error: { code: string; message: string; details: { errorId: string } };
      }>();
      expect(error.code).toBe('internal');
      expect(error.message).toBe(`internal error (id ${error.details.errorId})`);
      expect(res.body).not.toMatch(/secret key|encrypted|\.ts:/);
    });

    it('an unknown project (by URL or ?project=) gets the very answer of a bad signature', async () => {
      const body = JSON.stringify(push());
      const forged = await github('push', body, { signature: await sign('not the secret', body) });
      expect(forged.statusCode).toBe(401);
      const unknown = await github('push', movedTo(push(), 'https://github.com/nobody/nothing.git'));
      const named = await github('push', push(), { query: '?project=nobody/nothing' });
      for (const answer of [unknown, named]) {
        expect(answer.statusCode).toBe(401);
        expect(answer.body).toBe(forged.body);
      }
    });

    it('a correctly signed body that is not UTF-8 is told so, not that its signature is wrong', async () => {
      const raw = Buffer.concat([
        Buffer.from('{"ref":"refs/heads/main","x":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]);
      const res = await app.inject({
        method: 'POST',
        url: `/hooks/github?project=${hello.slug}`,
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-github-delivery': nextDelivery(),
          'x-hub-signature-256': signBody(SECRET, raw),
        },
        payload: raw,
      });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({
        error: { code: 'invalid_json', message: 'the request body is not valid UTF-8 JSON' },
      });
    });

    it('a tag or commit that is not one is named as what it is', async () => {
      const tag = await generic({ project: hello.slug, tag: 'v1;reboot' });
      expect(tag.statusCode).toBe(400);
      expect(tag.json<{ error: { message: string } }>().error.message).toBe(
        'invalid tag "v1;reboot": not a plain git ref name',
      );
      const commit = await generic({ project: hello.slug, branch: 'main', commit: 'main' });
      expect(commit.statusCode).toBe(400);
      expect(commit.json<{ error: { message: string } }>().error.message).toBe(
        'invalid commit "main": not a commit SHA (7 to 64 hexadecimal digits)',
      );
    });

    it('a delivery without ?project= is not parsed past the unnamed limit before verification', async () => {
      const big = Fastify();
      registerHookRoutes(big, {
        db: t.db,
        control: new DatabaseBuildControl(t.db),
        bodyLimit: LIMIT,
        unnamedParseLimit: 1024,
      });
      await big.ready();
      try {
        const body = JSON.stringify({ ...push(), padding: 'x'.repeat(2048) });
        const post = (query: string) =>
          big.inject({
            method: 'POST',
            url: `/hooks/github${query}`,
            headers: {
              'content-type': 'application/json',
              'x-github-event': 'push',
              'x-github-delivery': nextDelivery(),
              'x-hub-signature-256': signBody(SECRET, body),
            },
            payload: body,
          });
        const unnamed = await post('');
        expect(unnamed.statusCode).toBe(413);
        expect(unnamed.json<{ error: { message: string } }>().error.message).toMatch(/\?project=owner\/name/);
        expect((await post(`?project=${hello.slug}`)).statusCode).toBe(201);
      } finally {
        await big.close();
      }
    });

    it('a replayed delivery starts no second build and answers with the first one', async () => {
      const delivery = nextDelivery();
      const first = await github('push', push(), { delivery });
      expect(first.statusCode).toBe(201);
      const count = (await buildsOf(hello)).length;
      const again = await github('push', push(), { delivery });
      expect(again.statusCode).toBe(200);
      expect(again.json()).toMatchObject({ build: first.json<{ build: unknown }>().build, duplicate: true });
      expect((await buildsOf(hello)).length).toBe(count);
      expect(await findDelivery(t.db, 'github', delivery)).toMatchObject({
        forge: 'github',
        outcome: 'build',
        buildId: first.json<{ build: { id: number } }>().build.id,
      });
    });

    it('concurrent deliveries of one id start one build', async () => {
      const delivery = nextDelivery();
      const count = (await buildsOf(hello)).length;
      const answers = await Promise.all([1, 2, 3].map(() => github('push', push(), { delivery })));
      expect(answers.filter((a) => a.statusCode === 201)).toHaveLength(1);
      expect((await buildsOf(hello)).length).toBe(count + 1);
    });

    it('malformed JSON is 400 with a clear message', async () => {
      const res = await github('push', '{"ref": "refs/heads/main", ');
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({
        error: {
          code: 'invalid_json',
          message: expect.stringMatching(/^the request body is not valid JSON: /) as unknown,
        },
      });
      const empty = await github('push', '');
      expect(empty.statusCode).toBe(400);
      expect(empty.json<{ error: { message: string } }>().error.message).toBe('the request body is empty');
    });

    it('a push payload without a ref is 400 naming the field', async () => {
      const payload = push();
      delete payload.ref;
      const res = await github('push', payload);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'invalid_request', details: { field: 'ref' } } });
    });

    it('a payload over the size limit is 413', async () => {
      const payload = { ...push(), padding: 'x'.repeat(LIMIT) };
      const counted = await rejected('github', 'too_large');
      const res = await github('push', payload);
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ error: { code: 'payload_too_large' } });
      expect(await rejected('github', 'too_large')).toBe(counted + 1);
    });

    it('a ref with shell metacharacters is rejected and nothing is built', async () => {
      const before = (await buildsOf(hello)).length;
      const payload = { ...push(), ref: 'refs/heads/main;rm -rf /' };
      const delivery = nextDelivery();
      const res = await github('push', payload, { delivery });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({
        error: { code: 'invalid_ref', message: 'invalid branch "main;rm -rf /": not a plain git ref name' },
      });
      expect((await buildsOf(hello)).length).toBe(before);
      expect(await findDelivery(t.db, 'github', delivery)).toMatchObject({
        outcome: 'rejected',
        buildId: null,
      });
      const commit = await github('push', { ...push(), after: '$(reboot)', head_commit: null });
      expect(commit.statusCode).toBe(400);
      expect(commit.json<{ error: { message: string } }>().error.message).toMatch(/invalid commit/);
    });

    it('two projects on one repository need ?project=', async () => {
      await project('acme/left', 'https://example.com/acme/shared.git');
      await project('acme/right', 'git@example.com:acme/shared');
      const res = await generic({ repository: 'https://example.com/acme/shared', ref: 'refs/heads/main' });
      expect(res.statusCode).toBe(409);
      expect(res.json<{ error: { details: { projects: string[] } } }>().error.details.projects).toEqual([
        'acme/left',
        'acme/right',
      ]);
      const named = await generic(
        { repository: 'https://example.com/acme/shared', ref: 'refs/heads/main' },
        { query: '?project=acme/right' },
      );
      expect(named.statusCode).toBe(201);
      expect(named.json<{ build: { project: string } }>().build.project).toBe('acme/right');
    });
  });

  describe('branch filter and switches', () => {
    it('the anchored branch filter decides which pushes build', async () => {
      const filtered = await project('octo/filtered', 'https://github.com/octo/filtered.git', {
        branchFilter: 'main|release/.*',
      });
      const pushTo = (ref: string) => {
        const payload = githubExample('push', (p) => p.ref === 'refs/heads/master' && p.deleted === false);
        payload.ref = ref;
        return github('push', movedTo(payload, 'https://github.com/octo/filtered.git'));
      };
      const miss = await pushTo('refs/heads/master');
      expect(miss.statusCode).toBe(202);
      expect(miss.json<{ ignored: string }>().ignored).toBe(
        'branch "master" does not match the branch filter "main|release/.*"',
      );
      const partial = await pushTo('refs/heads/mainline');
      expect(partial.statusCode).toBe(202);
      const hit = await pushTo('refs/heads/release/1.2');
      expect(hit.statusCode).toBe(201);
      expect((await buildsOf(filtered)).map((b) => b.branch)).toEqual(['release/1.2']);
      expect(await rejected('github', 'branch_filter')).toBeGreaterThanOrEqual(2);
    });

    it('tags and pull requests follow their switches', async () => {
      const p = await project('octo/switches', 'https://github.com/octo/switches.git');
      await updateHookSettings(t.db, p.id, { buildTags: false, buildPullRequests: false });
      const url = 'https://github.com/octo/switches.git';
      const tag = githubExample('push', (x) => x.ref === 'refs/tags/simple-tag' && x.deleted === false);
      const tagRes = await github('push', movedTo(tag, url));
      expect(tagRes.statusCode).toBe(202);
      expect(tagRes.json<{ ignored: string }>().ignored).toBe(
        'tag builds are switched off for octo/switches',
      );
      const pr = githubExample('pull_request', (x) => x.action === 'opened');
      const prRes = await github('pull_request', movedTo(pr, url));
      expect(prRes.statusCode).toBe(202);
      expect(prRes.json<{ ignored: string }>().ignored).toBe(
        'pull request builds are switched off for octo/switches',
      );
      expect(await buildsOf(p)).toEqual([]);
    });
  });

  describe('GitLab (fixtures from the GitLab docs)', () => {
    const TOKEN = 'gitlab-token-0123456789';
    const gitlab = (event: string, payload: Json, headers: Record<string, string> = {}) =>
      app.inject({
        method: 'POST',
        url: '/hooks/gitlab',
        headers: {
          'content-type': 'application/json',
          'x-gitlab-event': event,
          'x-gitlab-token': TOKEN,
          'x-gitlab-event-uuid': nextDelivery(),
          'x-gitlab-webhook-uuid': 'hook-1',
          ...headers,
        },
        payload: JSON.stringify(payload),
      });

    beforeAll(async () => {
      for (const [slug, url] of [
        ['mike/diaspora', 'https://example.com/mike/diaspora'],
        ['jsmith/example', 'ssh://git@example.com/jsmith/example.git'],
        ['gitlabhq/gitlab-test', 'git@example.com:gitlabhq/gitlab-test.git'],
      ] as const) {
        await project(slug, url, { secret: TOKEN });
      }
    });

    it('push, tag push and merge request start builds', async () => {
      const push = await gitlab('Push Hook', fixture('gitlab-push.json'));
      expect(push.statusCode).toBe(201);
      expect(await getBuild(t.db, push.json<{ build: { id: number } }>().build.id)).toMatchObject({
        branch: 'master',
        commitSha: 'da1560886d4f094c3e6c9ef40349f7d38b5d27d7',
        event: 'push',
        triggeredBy: 'gitlab:jsmith',
      });
      const tag = await gitlab('Tag Push Hook', fixture('gitlab-tag-push.json'));
      expect(tag.statusCode).toBe(201);
      expect(await getBuild(t.db, tag.json<{ build: { id: number } }>().build.id)).toMatchObject({
        event: 'tag',
        tag: 'v1.0.0',
        commitSha: '82b3d5ae55f7080f1e6022629cdb57bfae7cccc7',
      });
      const mr = await gitlab('Merge Request Hook', fixture('gitlab-merge-request.json'));
      expect(mr.statusCode).toBe(201);
      const id = mr.json<{ build: { id: number; project: string } }>().build.id;
      expect(mr.json<{ build: { project: string } }>().build.project).toBe('gitlabhq/gitlab-test');
      expect(await getBuild(t.db, id)).toMatchObject({
        event: 'pull_request',
        branch: 'ms-viewport',
        triggeredBy: 'gitlab:root',
      });
      expect(await headRepoFork(t.db, id)).toBe(false);
    });

    it('a merge request update builds only with new commits', async () => {
      const mr = fixture('gitlab-merge-request.json');
      const attrs = mr.object_attributes as Json;
      attrs.action = 'update';
      const edited = await gitlab('Merge Request Hook', mr);
      expect(edited.statusCode).toBe(202);
      expect(edited.json<{ ignored: string }>().ignored).toBe('merge request updated without new commits');
      attrs.oldrev = '95790bf891e76fee5e1747ab589903a6a1f80f22';
      expect((await gitlab('Merge Request Hook', mr)).statusCode).toBe(201);
    });

    it('a wrong or missing token is 401; a deleted branch is ignored', async () => {
      expect(
        (await gitlab('Push Hook', fixture('gitlab-push.json'), { 'x-gitlab-token': 'wrong' })).statusCode,
      ).toBe(401);
      const missing = await app.inject({
        method: 'POST',
        url: '/hooks/gitlab',
        headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook' },
        payload: JSON.stringify(fixture('gitlab-push.json')),
      });
      expect(missing.statusCode).toBe(401);
      const deleted = {
        ...fixture('gitlab-push.json'),
        after: '0000000000000000000000000000000000000000',
        checkout_sha: null,
      };
      const res = await gitlab('Push Hook', deleted);
      expect(res.statusCode).toBe(202);
      expect(res.json<{ ignored: string }>().ignored).toBe(
        'refs/heads/master was deleted; deletions are not built',
      );
    });

    it('the same event UUID to the same webhook is one build', async () => {
      const headers = { 'x-gitlab-event-uuid': nextDelivery() };
      const first = await gitlab('Push Hook', fixture('gitlab-push.json'), headers);
      const again = await gitlab('Push Hook', fixture('gitlab-push.json'), headers);
      expect(first.statusCode).toBe(201);
      expect(again.statusCode).toBe(200);
      expect(again.json<{ build: { id: number } }>().build.id).toBe(
        first.json<{ build: { id: number } }>().build.id,
      );
    });
  });

  describe('Gitea, Forgejo and Gogs', () => {
    const KEY = 'gitea-secret-key';
    let webhooks: Project;
    const gitea = (event: string, payload: Json, headers: Record<string, string | undefined> = {}) => {
      const body = JSON.stringify(payload);
      const hex = signBody(KEY, body).slice('sha256='.length);
      return app.inject({
        method: 'POST',
        url: '/hooks/gitea',
        headers: Object.fromEntries(
          Object.entries({
            'content-type': 'application/json',
            'x-gitea-event': event,
            'x-gitea-delivery': nextDelivery(),
            'x-gitea-signature': hex,
            ...headers,
          }).filter((e): e is [string, string] => e[1] !== undefined),
        ),
        payload: body,
      });
    };

    beforeAll(async () => {
      webhooks = await project('gitea/webhooks', 'ssh://gitea@localhost:2222/gitea/webhooks.git', {
        secret: KEY,
      });
    });

    it('push, tag push and a pull request from a fork start builds', async () => {
      const push = await gitea('push', fixture('gitea-push.json'));
      expect(push.statusCode).toBe(201);
      expect(await getBuild(t.db, push.json<{ build: { id: number } }>().build.id)).toMatchObject({
        branch: 'develop',
        commitSha: 'bffeb74224043ba2feb48d137756c8a9331c449a',
        triggeredBy: 'gitea:gitea',
      });
      const tag = await gitea('push', fixture('gitea-tag-push.json'));
      expect(tag.statusCode).toBe(201);
      expect(await getBuild(t.db, tag.json<{ build: { id: number } }>().build.id)).toMatchObject({
        event: 'tag',
        tag: 'v1.0.0',
      });
      const pr = await gitea('pull_request', fixture('gitea-pull-request.json'));
      expect(pr.statusCode).toBe(201);
      const id = pr.json<{ build: { id: number } }>().build.id;
      expect(await getBuild(t.db, id)).toMatchObject({ event: 'pull_request', branch: 'feature/docs' });
      expect(await headRepoFork(t.db, id)).toBe(true);
    });

    it('a synchronized pull request builds; a closed one is ignored', async () => {
      const pr = fixture('gitea-pull-request.json');
      pr.action = 'synchronized';
      expect((await gitea('pull_request', pr)).statusCode).toBe(201);
      pr.action = 'closed';
      expect((await gitea('pull_request', pr)).statusCode).toBe(202);
    });

    it('Forgejo and Gogs headers work too', async () => {
      const body = fixture('gitea-push.json');
      const hex = signBody(KEY, JSON.stringify(body)).slice('sha256='.length);
      const forgejo = await gitea('push', body, {
        'x-gitea-event': undefined,
        'x-gitea-signature': undefined,
        'x-gitea-delivery': undefined,
        'x-forgejo-event': 'push',
        'x-forgejo-signature': hex,
        'x-forgejo-delivery': nextDelivery(),
      });
      expect(forgejo.statusCode).toBe(201);
      const gogs = await gitea('push', body, {
        'x-gitea-event': undefined,
        'x-gitea-signature': undefined,
        'x-gitea-delivery': undefined,
        'x-gogs-event': 'push',
        'x-gogs-signature': hex,
        'x-gogs-delivery': nextDelivery(),
      });
      expect(gogs.statusCode).toBe(201);
    });

    it('a forged signature is 401', async () => {
      const before = (await buildsOf(webhooks)).length;
      const res = await gitea('push', fixture('gitea-push.json'), { 'x-gitea-signature': 'ab'.repeat(32) });
      expect(res.statusCode).toBe(401);
      expect((await buildsOf(webhooks)).length).toBe(before);
      expect(await rejected('gitea', 'bad_signature')).toBe(1);
    });
  });

  async function generic(
    payload: Json | string,
    options: { query?: string; secret?: string; delivery?: string; sign?: boolean } = {},
  ) {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    return app.inject({
      method: 'POST',
      url: `/hooks/generic${options.query ?? ''}`,
      headers: {
        'content-type': 'application/json',
        'x-slipway-delivery': options.delivery ?? nextDelivery(),
        ...(options.sign !== false && { 'x-slipway-signature': signBody(options.secret ?? SECRET, body) }),
      },
      payload: body,
    });
  }

  describe('generic', () => {
    it('builds a branch, a tag and a pull request of the named project', async () => {
      const p = await project('acme/generic', 'https://git.example.com/acme/generic.git');
      const commit = 'a'.repeat(40);
      const branch = await generic({ project: 'acme/generic', branch: 'main', commit, sender: 'deploy-bot' });
      expect(branch.statusCode).toBe(201);
      expect(await getBuild(t.db, branch.json<{ build: { id: number } }>().build.id)).toMatchObject({
        branch: 'main',
        commitSha: commit,
        event: 'push',
        triggeredBy: 'generic:deploy-bot',
      });
      const tag = await generic({
        repository: 'https://git.example.com/acme/generic',
        ref: 'refs/tags/v2.0.0',
      });
      expect(tag.statusCode).toBe(201);
      expect(await getBuild(t.db, tag.json<{ build: { id: number } }>().build.id)).toMatchObject({
        event: 'tag',
        tag: 'v2.0.0',
      });
      const pr = await generic(
        { event: 'pull_request', branch: 'feature', fork: false },
        { query: '?project=acme/generic' },
      );
      expect(pr.statusCode).toBe(201);
      expect(await headRepoFork(t.db, pr.json<{ build: { id: number } }>().build.id)).toBe(false);
      expect((await buildsOf(p)).length).toBe(3);
    });

    it('finds a project on this machine by the very path or file:// URL it was created with', async () => {
      const plain = await project('local/plain', '/tmp/slipway-hooks/plain.git');
      const url = await project('local/url', 'file:///tmp/slipway-hooks/url.git');
      for (const [p, repository] of [
        [plain, '/tmp/slipway-hooks/plain.git'],
        [plain, 'file:///tmp/slipway-hooks/plain'],
        [url, 'file:///tmp/slipway-hooks/url.git'],
        [url, '/tmp/slipway-hooks/url/'],
      ] as const) {
        const answer = await generic({ repository, branch: 'main' });
        expect(answer.statusCode, `${repository}: ${answer.body}`).toBe(201);
        expect(answer.json<{ build: { project: string } }>().build.project).toBe(p.slug);
      }
      const other = await generic({ repository: '/tmp/slipway-hooks/Plain.git', branch: 'main' });
      expect(other.statusCode).toBe(401);
    });

    it('rejects an unsigned, forged, malformed or dangerous delivery', async () => {
      const good = { project: 'acme/generic', branch: 'main' };
      expect((await generic(good, { sign: false })).statusCode).toBe(401);
      expect((await generic(good, { secret: 'forged-secret' })).statusCode).toBe(401);
      expect((await generic('{not json', { query: '?project=acme/generic' })).statusCode).toBe(400);
      const noRef = await generic({ project: 'acme/generic' });
      expect(noRef.statusCode).toBe(400);
      expect(noRef.json<{ error: { message: string } }>().error.message).toBe(
        'the payload names no ref: give "ref", "branch" or "tag"',
      );
      const evil = await generic({ project: 'acme/generic', branch: 'main;rm -rf /' });
      expect(evil.statusCode).toBe(400);
      expect(evil.json()).toMatchObject({ error: { code: 'invalid_ref' } });
      const ping = await generic({ project: 'acme/generic', event: 'ping' });
      expect(ping.statusCode).toBe(200);
    });
  });
});
