/**
 * Attack (issue 10 item 2): ReDoS through user regular expressions. `when.branch: "(a+)+"` and a
 * build of a branch of thirty `a` and a `b` held the server's event loop for over a minute,
 * every request with it; a project's branch filter `(a+)+` and a correctly signed push of that
 * branch held it for 24 s. Patterns now run on RE2 (linear time, bounded sizes): `/healthz`
 * keeps answering while the server matches them, and the build finishes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildDetail } from '../../src/server/api/dto.js';
import { signBody } from '../../src/server/hooks/signatures.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { allFinished, cleanup, ServerProcess, type Api } from '../server/server-harness.js';
import { probeHealth } from './probe-health.js';

/** Thirty `a` and a `b`: each more `a` doubles what a backtracking engine tries on `(a+)+`. */
const EVIL = `${'a'.repeat(30)}b`;
const SECRET = 'redos-webhook-secret';

describe('security: ReDoS through branch patterns cannot stall the server', () => {
  let server: ServerProcess;
  let api: Api;
  let repo: TestRepo;

  beforeAll(async () => {
    server = await ServerProcess.start({ executor: 'local' });
    api = server.api();
    const pipeline = {
      stages: [
        { name: 'build', steps: [{ name: 'hello', commands: ['echo built'] }] },
        {
          name: 'only-a',
          when: { branch: '(a+)+' },
          steps: [{ name: 'a', commands: ['echo only a'] }],
        },
      ],
    };
    repo = await TestRepo.create({ '.slipway.yml': JSON.stringify(pipeline) });
    repo.branch(EVIL);
    await repo.commit({ 'evil.txt': 'b\n' }, 'on the evil branch');
    repo.branch('a'.repeat(30));
    await repo.commit({ 'a.txt': 'a\n' }, 'on the all-a branch');
  }, 120_000);

  afterAll(cleanup, 60_000);

  it('when.branch "(a+)+" and a build of thirty a and a b: /healthz answers throughout, the build finishes', async () => {
    await api.ok('POST', '/projects', { slug: 'redos/when', repoUrl: repo.url });
    const probe = probeHealth(server.url);
    let longest: number;
    let detail: BuildDetail;
    try {
      const trigger = await api.request<{ id: number }>('POST', '/projects/redos/when/builds', {
        json: { branch: EVIL },
      });
      expect(trigger.status, trigger.text).toBe(201);
      const [build] = await allFinished(api, 'redos/when', 1);
      detail = await api.build(build!.id);
    } finally {
      longest = await probe.stop();
    }
    expect(detail.status, JSON.stringify(detail)).toBe('success');
    const stage = detail.stages.find((s) => s.name === 'only-a');
    expect(stage?.status).toBe('skipped');
    expect(stage?.reason?.message).toBe(`skipped: branch "${EVIL}" does not match "(a+)+"`);
    // Before the fix: over 60 s. Generous for a machine at load 8.
    expect(longest, `longest /healthz round trip ${Math.round(longest)} ms`).toBeLessThan(5_000);
  }, 180_000);

  it('branch filter "(a+)+" and a signed push of thirty a and a b: /healthz answers throughout, the push is ignored', async () => {
    await api.ok('POST', '/projects', { slug: 'redos/filter', repoUrl: repo.url, branchFilter: '(a+)+' });
    await api.ok('PATCH', '/projects/redos/filter/hooks', { secret: SECRET });
    const push = async (branch: string) => {
      const body = JSON.stringify({ ref: `refs/heads/${branch}`, commit: repo.git('rev-parse', branch) });
      const answer = await fetch(`${server.url}/hooks/generic?project=redos/filter`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-slipway-signature': signBody(SECRET, body) },
        body,
      });
      return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
    };
    const probe = probeHealth(server.url);
    let longest: number;
    let ignored: Awaited<ReturnType<typeof push>>;
    try {
      ignored = await push(EVIL);
    } finally {
      longest = await probe.stop();
    }
    expect(ignored.status, JSON.stringify(ignored.body)).toBe(202);
    expect(ignored.body.ignored).toBe(`branch "${EVIL}" does not match the branch filter "(a+)+"`);
    // Before the fix: 24 s. Generous for a machine at load 8.
    expect(longest, `longest /healthz round trip ${Math.round(longest)} ms`).toBeLessThan(5_000);

    // The filter still does its job: a branch it matches is built.
    const built = await push('a'.repeat(30));
    expect(built.status, JSON.stringify(built.body)).toBe(201);
    const [build] = await allFinished(api, 'redos/filter', 1);
    expect(build!.branch).toBe('a'.repeat(30));
  }, 180_000);

  it('a filter RE2 cannot run is refused where it is set, naming the construct', async () => {
    const answer = await api.request('POST', '/projects', {
      json: { slug: 'redos/backref', repoUrl: repo.url, branchFilter: '(a)\\1' },
    });
    expect(answer.status, answer.text).toBe(400);
    expect(answer.text).toContain('backreferences (`\\\\1`) are not supported');
    expect(answer.text).toContain('branchFilter');
  }, 60_000);
});
