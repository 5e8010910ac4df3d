/**
 * Attack (issue 10 item 8): open log streams outlived a revoked token (15 s and more: as long
 * as the build ran). A stream is authenticated once, when it opens; now revoking its token,
 * or ending the browser session it came with, closes it at once. Real server process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Build } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import type { Api } from '../server/server-harness.js';
import { FINISHED, ServerProcess, cleanup, sseEvents, waitFor } from '../server/server-harness.js';

/** Follows a build's live log with the given headers; resolves how it ended. */
function follow(
  url: string,
  buildId: number,
  headers: Record<string, string>,
  onLine: () => void,
): Promise<{ how: 'end' | 'closed' | 'error' | 'refused' }> {
  return (async () => {
    try {
      const response = await fetch(`${url}/api/v1/builds/${buildId}/logs?follow=1`, {
        headers: { accept: 'text/event-stream', ...headers },
      });
      if (response.status !== 200 || response.body === null) return { how: 'refused' };
      for await (const event of sseEvents(response.body)) {
        if (event.event === 'lines' || event.event === 'line') onLine();
        if (event.event === 'end') return { how: 'end' };
      }
      return { how: 'closed' };
    } catch {
      return { how: 'error' };
    }
  })();
}

describe('live log streams end when their credential is revoked (issue 10 item 8)', () => {
  let server: ServerProcess;
  let api: Api;

  beforeAll(async () => {
    server = await ServerProcess.start({ executor: 'local' });
    api = server.api();
    const repo = await TestRepo.create({
      '.slipway.yml': [
        'steps:',
        '  - name: long',
        '    commands:',
        '      - echo started',
        '      - sleep 120',
        '',
      ].join('\n'),
    });
    await api.ok('POST', '/projects', { slug: 'attack/revoke', repoUrl: repo.url });
  }, 120_000);

  afterAll(cleanup);

  async function runningBuild(): Promise<Build> {
    const build = await api.ok<Build>('POST', '/projects/attack/revoke/builds', { branch: 'main' });
    await waitFor(`build ${build.id} to run`, async () =>
      (await api.build(build.id)).status === 'running' ? true : undefined,
    );
    return build;
  }

  async function cancel(build: Build): Promise<string> {
    await api.ok('POST', `/builds/${build.id}/cancel`);
    return waitFor(`build ${build.id} to end`, async () => {
      const status = (await api.build(build.id)).status;
      return FINISHED.has(status) ? status : undefined;
    });
  }

  it('revoking a token closes the streams it opened, by header and by session cookie, while the build runs', async () => {
    const viewer = await api.ok<{ id: number; token: string }>('POST', '/tokens', {
      name: 'watcher',
      role: 'viewer',
    });
    const signIn = await fetch(`${server.url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-slipway-csrf': '1' },
      body: JSON.stringify({ token: viewer.token }),
    });
    expect(signIn.status).toBe(200);
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const build = await runningBuild();

    let lines = 0;
    const byToken = follow(
      server.url,
      build.id,
      { authorization: `Bearer ${viewer.token}` },
      () => (lines += 1),
    );
    const byCookie = follow(server.url, build.id, { cookie }, () => (lines += 1));
    const byAdmin = follow(server.url, build.id, { authorization: `Bearer ${api.token}` }, () => undefined);
    // Both streams are open once each got the build's first line.
    await waitFor('both streams to get a line', () => (lines >= 2 ? true : undefined));

    const revoked = await api.request('DELETE', `/tokens/${viewer.id}`);
    expect(revoked.status).toBe(204);
    const [token, session] = await Promise.all([byToken, byCookie]);
    const status = await cancel(build);

    // Ended without the end event, while the build still ran (it sleeps 120 s and is
    // cancelled only after): had they outlived the revocation, they would end with the build.
    expect(token.how).not.toBe('end');
    expect(session.how).not.toBe('end');
    expect(status).toBe('cancelled');
    // The admin's own stream was not touched: it saw the build end.
    expect((await byAdmin).how).toBe('end');
    // And a reconnect with the revoked token is refused.
    expect(
      (await follow(server.url, build.id, { authorization: `Bearer ${viewer.token}` }, () => undefined)).how,
    ).toBe('refused');
  }, 180_000);

  it('signing out closes the streams of that session', async () => {
    const viewer = await api.ok<{ id: number; token: string }>('POST', '/tokens', {
      name: 'browser',
      role: 'viewer',
    });
    const signIn = await fetch(`${server.url}/api/v1/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-slipway-csrf': '1' },
      body: JSON.stringify({ token: viewer.token }),
    });
    const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
    const build = await runningBuild();
    let lines = 0;
    const stream = follow(server.url, build.id, { cookie }, () => (lines += 1));
    await waitFor('the stream to get a line', () => (lines >= 1 ? true : undefined));
    const out = await fetch(`${server.url}/api/v1/session`, {
      method: 'DELETE',
      headers: { cookie, 'x-slipway-csrf': '1' },
    });
    expect(out.status).toBe(204);
    const ended = await stream;
    const status = await cancel(build);
    // Awaited before the cancel: only the sign-out can have ended it.
    expect(ended.how).not.toBe('end');
    expect(status).toBe('cancelled');
  }, 180_000);
});
