import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimNextBuilds,
  createBuildRecords,
  openApproval,
  setBuildStatus,
  type Project,
} from '../../store/index.js';
import { DIALECTS } from '../../store/testing/dialects.js';
import { makeBuild, makeProject } from '../../store/testing/fixtures.js';
import type { ApiError, Build, BuildDetail, Page, Queue } from './dto.js';
import { startTestApi, type TestApi } from './testing/harness.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe.each(DIALECTS)('approval records over the API (%s)', (dialect) => {
  let api: TestApi;
  let p: Project;
  beforeAll(async () => {
    api = await startTestApi(dialect, { globalLimit: 1 });
    p = await makeProject(api.t.db, { slug: 'appr/web' });
  });
  afterAll(async () => {
    await api?.close();
  });

  /** A build of `p` on `branch`, started and now waiting at its `deploy` stage. */
  async function waiting(branch: string): Promise<Build> {
    const b = await makeBuild(api.t.db, p.id, { branch });
    await claimNextBuilds(api.t.db, 'test-owner', 60_000, { global: 1000 });
    await setBuildStatus(api.t.db, b.id, ['pending'], 'running');
    const [, gate] = await createBuildRecords(api.t.db, b.id, [
      { name: 'test', steps: ['unit'] },
      { name: 'deploy', steps: ['ship'] },
    ]);
    await openApproval(api.t.db, gate!.id);
    await setBuildStatus(api.t.db, b.id, ['running'], 'waiting');
    return (await api.call('viewer', { url: `/api/v1/builds/${b.id}` })).json<Build>();
  }
  const post = (id: number, verb: 'approve' | 'reject', payload?: object) =>
    api.call('member', { method: 'POST', url: `/api/v1/builds/${id}/${verb}`, ...(payload && { payload }) });
  const detail = async (id: number) =>
    (await api.call('viewer', { url: `/api/v1/builds/${id}` })).json<BuildDetail>();

  it('records who approved, when and why, on the build, its stage and in lists', async () => {
    const b = await waiting('approve-me');
    const before = await detail(b.id);
    const requestedAt = before.approvals?.[0]?.requestedAt ?? '';
    expect(requestedAt).toMatch(ISO);
    expect(before.approvals).toEqual([
      {
        stage: 'deploy',
        decision: 'waiting',
        by: null,
        at: null,
        comment: null,
        requestedAt,
        resumedAt: null,
      },
    ]);

    const res = await post(b.id, 'approve', { comment: '  looks good  ' });
    expect(res.statusCode, res.body).toBe(200);
    const answer = res.json<Build>();
    // Decided, it stays `waiting` until a scheduler gives it a running slot (none runs here).
    expect(answer.status).toBe('waiting');
    const at = answer.approvals?.[0]?.at ?? '';
    expect(at).toMatch(ISO);
    expect(Date.parse(at)).toBeGreaterThanOrEqual(Date.parse(requestedAt));
    const record = {
      stage: 'deploy',
      decision: 'approved',
      by: 'member-token',
      at,
      comment: 'looks good',
      requestedAt,
      resumedAt: null,
    };
    expect(answer.approvals).toEqual([record]);
    const after = await detail(b.id);
    expect(after.approvals).toEqual([record]);
    expect(after.stages.map((s) => [s.name, s.approval?.decision ?? null])).toEqual([
      ['test', null],
      ['deploy', 'approved'],
    ]);
    const list = (
      await api.call('viewer', { url: `/api/v1/projects/${p.slug}/builds?branch=approve-me` })
    ).json<Page<Build>>();
    expect(list.items[0]?.approvals).toEqual([record]);

    // A second decision is refused, naming the first.
    const again = await post(b.id, 'reject', { comment: 'too late' });
    expect(again.statusCode).toBe(409);
    expect(again.json<ApiError>().error.message).toContain('already approved by member-token');
  });

  it('takes a reason when rejecting (`comment`, or `message` as before)', async () => {
    const a = await waiting('reject-me');
    expect((await post(a.id, 'reject', { comment: 'not on a Friday' })).json<Build>().approvals).toEqual([
      expect.objectContaining({ decision: 'rejected', by: 'member-token', comment: 'not on a Friday' }),
    ]);
    const b = await waiting('reject-me-too');
    expect(
      (await post(b.id, 'reject', { message: 'old clients' })).json<Build>().approvals?.[0],
    ).toMatchObject({
      decision: 'rejected',
      comment: 'old clients',
    });
    const c = await waiting('reject-silently');
    expect((await post(c.id, 'reject')).json<Build>().approvals?.[0]).toMatchObject({
      decision: 'rejected',
      comment: null,
    });
  });

  it('refuses a bad comment with a clear 400 and the field path, deciding nothing', async () => {
    const b = await waiting('bad-input');
    const cases: [object, string][] = [
      [{ comment: 'x'.repeat(1001) }, 'body.comment'],
      [{ comment: 'two\nlines' }, 'body.comment'],
      [{ comment: 'colour \u001b[31mred' }, 'body.comment'],
      [{ comment: 42 }, 'body.comment'],
      [{ reason: 'unknown field' }, 'body.reason'],
    ];
    for (const [payload, path] of cases) {
      for (const verb of ['approve', 'reject'] as const) {
        const res = await post(b.id, verb, payload);
        expect(res.statusCode, JSON.stringify(payload)).toBe(400);
        const error = res.json<ApiError>().error;
        expect(error.code).toBe('invalid_request');
        expect(error.message).toContain(path);
        expect(error.message).not.toMatch(/\n\s+at /);
      }
    }
    expect((await detail(b.id)).approvals?.[0]?.decision).toBe('waiting');
  });
});

describe.each(DIALECTS)('the queue with builds waiting for approval (%s)', (dialect) => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi(dialect, { globalLimit: 2 });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('says a waiting build waits for approval, holds no slot, and a decided one goes on first', async () => {
    const db = api.t.db;
    const gated = await makeProject(db, { slug: 'queue/gated' });
    const other = await makeProject(db, { slug: 'queue/other' });
    const waitingAt = async (branch: string) => {
      const b = await makeBuild(db, gated.id, { branch });
      await claimNextBuilds(db, 'test-owner', 60_000, { global: 1000 });
      await setBuildStatus(db, b.id, ['pending'], 'running');
      const [stage] = await createBuildRecords(db, b.id, [{ name: 'deploy', steps: ['ship'] }]);
      await openApproval(db, stage!.id);
      await setBuildStatus(db, b.id, ['running'], 'waiting');
      return b;
    };
    const undecided = await waitingAt('a');
    const decided = await waitingAt('b');
    const sameBranch = await makeBuild(db, gated.id, { branch: 'a' });
    const next = await makeBuild(db, other.id, { branch: 'x' });
    const over = await makeBuild(db, other.id, { branch: 'y' });
    const approve = await api.call('member', {
      method: 'POST',
      url: `/api/v1/builds/${decided.id}/approve`,
      payload: { comment: 'go' },
    });
    expect(approve.statusCode).toBe(200);

    const queue = (await api.call('viewer', { url: '/api/v1/queue' })).json<Queue>();
    expect(queue.running).toEqual([]);
    expect(queue.queued.map((b) => [b.id, b.status, b.waitingFor])).toEqual([
      [decided.id, 'waiting', null],
      [sameBranch.id, 'queued', 'branch_lock'],
      [next.id, 'queued', null],
      [over.id, 'queued', 'global_limit'],
      [undecided.id, 'waiting', 'approval'],
    ]);
    expect(queue.queued[0]?.approvals?.[0]).toMatchObject({ decision: 'approved', comment: 'go' });
  });
});
