import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approvalsOf,
  createProject,
  getBuild,
  getBuildRecords,
  isTerminalStatus,
  type Build,
  type Project,
} from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { TestRepo } from '../testing/git-repo.js';
import { localScheduler } from '../testing/local-scheduler.js';
import type { DatabaseBuildControl } from './build-control.js';
import type { Scheduler } from './scheduler.js';
import { until } from '../../testing/until.js';

const GATED = `
stages:
  - name: deploy
    approval: true
    steps:
      - name: ship
        commands: [echo shipped]
  - name: report
    when: { status: [success, failure] }
    steps:
      - name: tell
        commands: [echo reported]
`;

const PLAIN = `
steps:
  - name: unit
    commands: [echo plain]
`;

describe.each(DIALECTS)('approval and running slots (%s, real git, local executor)', (dialect) => {
  let t: TestDatabase;
  let scheduler: Scheduler;
  let control: DatabaseBuildControl;
  let logs: FsLogStore;
  const projects: Project[] = [];
  let plain: Project;

  beforeAll(async () => {
    t = await openTestDatabase(dialect);
    const dataDir = await mkdtemp(join(tmpdir(), 'slipway-approval-'));
    // Global limit 2 (the default of a 2-core machine): two waiting deploys used to starve the rest.
    ({ scheduler, control } = localScheduler(t.db, dataDir, {
      globalLimit: 2,
      logs: (logs = new FsLogStore(join(dataDir, 'logs'))),
    }));
    const gated = await TestRepo.create({ '.slipway.yml': GATED });
    const simple = await TestRepo.create({ '.slipway.yml': PLAIN });
    for (const name of ['one', 'two'])
      projects.push(await createProject(t.db, { slug: `gate/${name}`, repoUrl: gated.url }));
    plain = await createProject(t.db, { slug: 'free/plain', repoUrl: simple.url });
    scheduler.start();
  });

  afterAll(async () => {
    await scheduler?.stop();
    await t?.destroy();
  });

  const trigger = (project: Project) =>
    control.trigger(project, { branch: 'main', event: 'manual', trigger: 'manual', triggeredBy: 'ana' });
  const status = (id: number, wanted: Build['status']) =>
    until(async () => ((await getBuild(t.db, id))?.status === wanted ? true : undefined));
  const finished = (id: number) =>
    until(async () => {
      const build = await getBuild(t.db, id);
      return build && isTerminalStatus(build.status) ? build : undefined;
    });
  const logText = async (id: number) => (await logs.read(id, 0)).map((l) => `${l.stage}/${l.step} ${l.text}`);

  it('two builds waiting for approval at limit 2 let a third project run; approved, one finishes', async () => {
    const [one, two] = [await trigger(projects[0]!), await trigger(projects[1]!)];
    await status(one.id, 'waiting');
    await status(two.id, 'waiting');

    const free = await trigger(plain);
    expect((await finished(free.id)).status).toBe('success');

    await control.decide(one.id, 'approve', 'alice', 'looks good');
    const done = await finished(one.id);
    expect(done.status).toBe('success');
    expect(await logText(one.id)).toEqual(
      expect.arrayContaining([
        'deploy/slipway approval: approved by alice — "looks good"',
        'deploy/ship shipped',
        'report/tell reported',
      ]),
    );
    const [record] = (await approvalsOf(t.db, [one.id])).get(one.id) ?? [];
    expect(record).toMatchObject({
      stage: 'deploy',
      decision: 'approved',
      by: 'alice',
      comment: 'looks good',
    });
    expect(record!.resumedAt).toBeGreaterThanOrEqual(record!.at!);
    expect(record!.at).toBeGreaterThanOrEqual(record!.requestedAt!);

    // Rejected: the stage fails with who and why, and the `when.status` stage still runs.
    await control.decide(two.id, 'reject', 'bob', 'not today');
    const rejected = await finished(two.id);
    expect(rejected).toMatchObject({
      status: 'failure',
      reason: { code: 'approval_rejected', message: 'rejected by bob — "not today"' },
    });
    expect(await logText(two.id)).toEqual(
      expect.arrayContaining([
        'deploy/slipway approval: rejected by bob — "not today"',
        'report/tell reported',
      ]),
    );
    const stages = await getBuildRecords(t.db, two.id);
    expect(stages.map((s) => [s.name, s.status])).toEqual([
      ['deploy', 'failure'],
      ['report', 'success'],
    ]);
  }, 180_000);

  it('a decided build waits for a free slot, then goes on ahead of builds queued before the decision', async () => {
    // Two long builds take both slots; a deploy waits for a person meanwhile.
    const gated = await trigger(projects[0]!);
    await status(gated.id, 'waiting');
    const slowRepo = await TestRepo.create({
      '.slipway.yml':
        'steps:\n  - name: hold\n    commands: ["while [ ! -f /tmp/never-$$ ]; do sleep 0.1; done"]\n',
    });
    const slow = [];
    for (const name of ['s1', 's2', 's3']) {
      const project = await createProject(t.db, { slug: `slow/${name}`, repoUrl: slowRepo.url });
      slow.push(await trigger(project));
    }
    await status(slow[0]!.id, 'running');
    await status(slow[1]!.id, 'running');
    expect((await getBuild(t.db, slow[2]!.id))?.status).toBe('queued');

    await control.decide(gated.id, 'approve', 'alice');
    // No slot: it stays `waiting`, and its stage has not gone on.
    expect((await getBuild(t.db, gated.id))?.status).toBe('waiting');

    await control.cancel(slow[0]!.id, 'test'); // frees one slot: the decided build gets it
    expect((await finished(gated.id)).status).toBe('success');
    await status(slow[2]!.id, 'running'); // the slot the deploy gave back after it finished
    const [record] = (await approvalsOf(t.db, [gated.id])).get(gated.id) ?? [];
    const third = await getBuild(t.db, slow[2]!.id);
    expect(third!.startedAt).toBeGreaterThanOrEqual(record!.resumedAt!);
    await control.cancel(slow[1]!.id, 'test');
    await control.cancel(slow[2]!.id, 'test');
    for (const build of slow) expect((await finished(build.id)).status).toBe('cancelled');
  }, 180_000);
});
