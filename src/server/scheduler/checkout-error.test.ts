import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type Build, type Project } from '../../store/index.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import type { LogStore } from '../logs/types.js';
import { TestRepo } from '../testing/git-repo.js';
import { finishedBuild, localScheduler } from '../testing/local-scheduler.js';
import type { DatabaseBuildControl } from './build-control.js';
import type { Scheduler } from './scheduler.js';

describe('a checkout that fails says why once, in plain words (real git, real scheduler)', () => {
  let t: TestDatabase;
  let dataDir: string;
  let scheduler: Scheduler;
  let control: DatabaseBuildControl;
  let logs: LogStore;
  let repo: TestRepo;

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-checkout-error-'));
    ({ scheduler, control, logs } = localScheduler(t.db, dataDir));
    repo = await TestRepo.create({ '.slipway.yml': 'steps:\n  - name: x\n    commands: [true]\n' });
    scheduler.start();
  });

  afterAll(async () => {
    await scheduler?.stop();
    await t?.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });

  const finished = (id: number): Promise<Build> => finishedBuild(t.db, id);

  async function buildOf(project: Project, ref: { branch: string; tag?: string; commit?: string }) {
    const build = await control.trigger(project, {
      ...ref,
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 't',
    });
    const done = await finished(build.id);
    const log = (await logs.read(build.id, 0)).map((l) => l.text);
    return { done, log };
  }

  it.each([
    [
      'a missing repository',
      'gone',
      { branch: 'main' },
      (url: string) =>
        `repository ${url} not found or not readable: '${url}' does not appear to be a git repository`,
    ],
    ['a missing branch', 'repo', { branch: 'nope' }, (url: string) => `branch "nope" not found in ${url}`],
    ['a missing tag', 'repo', { branch: 'main', tag: 'v9' }, (url: string) => `tag "v9" not found in ${url}`],
    [
      'a commit not on the branch',
      'repo',
      { branch: 'main', commit: 'abc1234' },
      (url: string) => `commit abc1234 not found on branch main of ${url}`,
    ],
  ] as const)(
    '%s',
    async (_what, where, ref, message) => {
      const url = where === 'gone' ? join(dataDir, 'no-such-repo') : repo.url;
      const project = await createProject(t.db, {
        slug: `acme/${where}-${Object.values(ref).join('-')}`,
        repoUrl: url,
      });
      const { done, log } = await buildOf(project, ref);
      expect(done).toMatchObject({ status: 'error', reason: { code: 'checkout', message: message(url) } });
      expect(log.filter((l) => l.includes(message(url)))).toHaveLength(1);
      expect(log.join('\n')).not.toMatch(/fatal:|--detach|Please make sure/);
    },
    60_000,
  );
});
