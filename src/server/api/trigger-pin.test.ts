import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject } from '../../store/index.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { TestRepo } from '../testing/git-repo.js';
import { finishedBuild, localScheduler } from '../testing/local-scheduler.js';
import type { LogStore } from '../logs/types.js';
import type { Build } from './dto.js';
import { startTestApi, type TestApi } from './testing/harness.js';

describe('a manual trigger pins the commit the repository named (real git, real scheduler)', () => {
  let api: TestApi;
  let scheduler: Scheduler;
  let logs: LogStore;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-trigger-pin-'));
    api = await startTestApi('sqlite', (db) => {
      const local = localScheduler(db, dataDir);
      ({ scheduler, logs } = local);
      return { control: local.control };
    });
  });

  afterAll(async () => {
    await scheduler?.stop();
    await api?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('builds the commit found at the trigger although the branch moved before the build started', async () => {
    const repo = await TestRepo.create({
      '.slipway.yml': 'steps:\n  - name: show\n    commands: [cat which.txt]\n',
      'which.txt': 'first\n',
    });
    const first = repo.git('rev-parse', 'HEAD');
    const project = await createProject(api.t.db, { slug: 'pin/web', repoUrl: repo.url });
    const res = await api.call('member', {
      method: 'POST',
      url: `/api/v1/projects/${project.slug}/builds`,
      payload: { branch: 'main' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const queued = res.json<Build>();
    expect(queued.commit).toBe(first);

    // No scheduler runs yet: the push lands between the trigger and the build's start.
    const second = await repo.commit({ 'which.txt': 'second\n' }, 'second');
    expect(second).not.toBe(first);
    scheduler.start();
    const done = await finishedBuild(api.t.db, queued.id);
    const log = (await logs.read(done.id, 0)).map((l) => l.text);
    expect(done.status, log.join('\n')).toBe('success');
    expect(done.commitSha).toBe(first);
    expect(log).toContain('first');
    expect(log).not.toContain('second');
  });

  it('does not take an annotated tag object for the commit of a tag build', async () => {
    const repo = await TestRepo.create({ '.slipway.yml': 'steps:\n  - name: ok\n    commands: ["true"]\n' });
    repo.git('tag', '-a', 'v1', '-m', 'release');
    const commit = repo.git('rev-parse', 'HEAD');
    const tagObject = repo.git('rev-parse', 'v1');
    expect(tagObject).not.toBe(commit);
    const project = await createProject(api.t.db, { slug: 'pin/tagged', repoUrl: repo.url });
    const res = await api.call('member', {
      method: 'POST',
      url: `/api/v1/projects/${project.slug}/builds`,
      payload: { branch: 'main', tag: 'v1' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<Build>().commit).not.toBe(tagObject);
    scheduler.start();
    const done = await finishedBuild(api.t.db, res.json<Build>().id);
    const log = (await logs.read(done.id, 0)).map((l) => l.text);
    expect(done.status, log.join('\n')).toBe('success');
    expect(done.commitSha).toBe(commit);
  });
});
