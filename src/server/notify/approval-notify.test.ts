import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimNextBuilds,
  createBuild,
  createBuildRecords,
  createProject,
  decideApproval,
  openApproval,
  setBuildStatus,
  type Project,
} from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { createNotifierHub } from './hub.js';
import { addNotifyTarget } from './targets.js';

describe.each(DIALECTS)('notifications carry approval records (%s, real local receiver)', (dialect) => {
  const received: { path: string; body: Record<string, unknown> }[] = [];
  let server: Server;
  let base = '';
  let t: TestDatabase;
  let p: Project;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (c: Buffer) => chunks.push(c));
      request.on('end', () => {
        received.push({
          path: request.url ?? '/',
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
        });
        response.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    t = await openTestDatabase(dialect);
    p = await createProject(t.db, { slug: 'acme/gated', repoUrl: 'https://github.com/acme/gated.git' });
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await t?.destroy();
  });

  it('the webhook JSON and the Slack message say who approved or rejected, when and why', async () => {
    await addNotifyTarget(t.db, { projectId: p.id, url: `${base}/json`, events: ['finished'] });
    await addNotifyTarget(t.db, { projectId: p.id, url: `${base}/slack`, events: ['finished'], slack: true });
    const build = await createBuild(t.db, {
      projectId: p.id,
      branch: 'main',
      event: 'push',
      trigger: 'webhook',
    });
    await claimNextBuilds(t.db, 'notify-test', 60_000, { global: 10 });
    await setBuildStatus(t.db, build.id, ['pending'], 'running');
    const [stage] = await createBuildRecords(t.db, build.id, [{ name: 'deploy', steps: ['ship'] }]);
    await openApproval(t.db, stage!.id, 1_700_000_000_000);
    await decideApproval(t.db, build.id, 'rejected', 'alice', 'not on a Friday', 1_700_000_060_000);
    await setBuildStatus(t.db, build.id, ['running'], 'failure', {
      reason: { code: 'approval_rejected', message: 'rejected by alice — "not on a Friday"' },
    });

    const hub = createNotifierHub(t.db, { retryDelayMs: 10 });
    hub.onBuildFinished(build.id);
    await hub.idle();

    const json = received.find((r) => r.path === '/json')?.body as { build: { approvals: unknown[] } };
    expect(json.build.approvals).toEqual([
      {
        stage: 'deploy',
        decision: 'rejected',
        by: 'alice',
        at: 1_700_000_060_000,
        comment: 'not on a Friday',
      },
    ]);
    const slack = received.find((r) => r.path === '/slack')?.body as {
      attachments: { fields: { title: string; value: string }[] }[];
    };
    expect(slack.attachments[0]!.fields).toContainEqual({
      title: 'Approval (deploy)',
      value: 'rejected by alice — "not on a Friday"',
      short: false,
    });
  });
});
