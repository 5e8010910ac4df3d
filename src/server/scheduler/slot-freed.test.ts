import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, getBuild } from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { until } from '../../testing/until.js';
import { TestRepo } from '../testing/git-repo.js';
import { finishedBuild, localScheduler, type LocalScheduler } from '../testing/local-scheduler.js';

const PIPELINE = `
stages:
  - name: gate
    approval: true
    steps:
      - name: ship
        commands: [echo shipped]
`;

describe.each(DIALECTS)('a freed slot is taken without waiting for a poll (%s)', (dialect) => {
  let t: TestDatabase;
  let local: LocalScheduler;
  let repo: TestRepo;

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
    const dataDir = await mkdtemp(join(tmpdir(), 'slipway-slot-'));
    // One slot, and a poll that never comes within the test: only events can start builds.
    local = localScheduler(t.db, dataDir, { globalLimit: 1, pollMs: 3_600_000 });
    repo = await TestRepo.create({ '.slipway.yml': PIPELINE });
    repo.branch('other');
    local.scheduler.start();
  });

  afterAll(async () => {
    await local.scheduler.stop();
    await t.destroy();
  });

  it('a build waiting for a person gives its slot to the next one at once', async () => {
    const project = await createProject(t.db, { slug: 'acme/slots', repoUrl: repo.url });
    const trigger = (branch: string) =>
      local.control.trigger(project, { branch, event: 'manual', trigger: 'manual', triggeredBy: 'ana' });
    const first = await trigger('main');
    const second = await trigger('other');
    // The second waits for the slot the first holds until it waits for its approval.
    await until(async () => (await getBuild(t.db, first.id))?.status === 'waiting');
    await until(async () => (await getBuild(t.db, second.id))?.status === 'waiting');
    // Approving the first and finishing it frees the slot again; the second goes on after it.
    await local.control.decide(first.id, 'approve', 'ana');
    await local.control.decide(second.id, 'approve', 'ana');
    expect((await finishedBuild(t.db, first.id)).status).toBe('success');
    expect((await finishedBuild(t.db, second.id)).status).toBe('success');
  });
});
