import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, getBuild, isTerminalStatus, type Build } from '../../store/index.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { TestRepo } from '../testing/git-repo.js';
import { localScheduler, type LocalScheduler } from '../testing/local-scheduler.js';

describe('server builds seed the workspace once (real git, local executor)', () => {
  let t: TestDatabase;
  let dataDir: string;
  let run: LocalScheduler;
  let logs: FsLogStore;

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-seed-once-'));
    logs = new FsLogStore(join(dataDir, 'logs'));
    run = localScheduler(t.db, dataDir, { logs });
    run.scheduler.start();
  });

  afterAll(async () => {
    await run.scheduler.stop();
    await t.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('the clone is moved into the workspace, .git included, not copied next to it', async () => {
    // Every copy of the marker anywhere under the data dir (clone dir, workspace) is counted
    // by the step itself, while the build runs.
    const repo = await TestRepo.create({
      'seed-marker-7f3a.txt': 'from the repo\n',
      '.slipway.yml': [
        'steps:',
        '  - name: look',
        '    commands:',
        '      - cat seed-marker-7f3a.txt',
        '      - echo "head $(git rev-parse HEAD)"',
        `      - echo "copies $(find '${dataDir}' -name seed-marker-7f3a.txt | wc -l)"`,
        '',
      ].join('\n'),
    });
    const project = await createProject(t.db, { slug: 'acme/seed', repoUrl: repo.url });
    const build = await run.control.trigger(project, {
      branch: 'main',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 'ana',
    });
    const done = await finished(build.id);
    const lines = (await logs.read(build.id, 0)).map((l) => l.text);
    expect(done.status, lines.join('\n')).toBe('success');
    expect(lines).toContain('from the repo');
    expect(lines).toContain(`head ${repo.git('rev-parse', 'HEAD')}`);
    expect(lines.map((l) => l.trim())).toContain('copies 1');
  });

  async function finished(id: number): Promise<Build> {
    // Bounded only to fail rather than hang; a busy machine may need long.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const build = await getBuild(t.db, id);
      if (build && isTerminalStatus(build.status)) return build;
      if (Date.now() > deadline) throw new Error(`build ${id} did not finish`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
});
