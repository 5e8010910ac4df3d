import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, setHeadRepoFork, type Build, type Project } from '../../store/index.js';
import { DIALECTS, openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import type { DatabaseBuildControl } from '../scheduler/build-control.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import { TestRepo } from '../testing/git-repo.js';
import { finishedBuild, localScheduler } from '../testing/local-scheduler.js';
import type { LogStore } from '../logs/types.js';
import { SecretCipher } from './cipher.js';
import { secretsFor } from './source.js';
import { setSecret } from './store.js';

/**
 * Two stages use TOK; a push-only stage uses a secret nobody defined. A pull request from a
 * fork must run (the push-only stage is skipped, so its secret is never asked for) and hear
 * once that TOK is withheld, although two stages use it.
 */
const PIPELINE = `
stages:
  - name: build
    steps:
      - name: a
        env: { T: { from_secret: TOK } }
        commands: ['echo "a [$T]"']
  - name: test
    steps:
      - name: b
        env: { T: { from_secret: TOK } }
        commands: ['echo "b [$T]"']
  - name: deploy
    when: { event: [push] }
    steps:
      - name: ship
        env: { D: { from_secret: NOBODY_SET_THIS } }
        commands: [echo shipped]
`;

describe.each(DIALECTS)(
  'server secrets, resolved per stage (%s, real scheduler, local executor)',
  (dialect) => {
    let t: TestDatabase;
    let dataDir: string;
    let scheduler: Scheduler;
    let control: DatabaseBuildControl;
    let logs: LogStore;
    let project: Project;
    const cipher = new SecretCipher(randomBytes(32));

    beforeAll(async () => {
      t = await openTestDatabase(dialect);
      dataDir = await mkdtemp(join(tmpdir(), 'slipway-per-stage-'));
      ({ scheduler, control, logs } = localScheduler(t.db, dataDir, {
        secretsFor: secretsFor({ db: t.db, cipher }),
      }));
      const repo = await TestRepo.create({ '.slipway.yml': PIPELINE });
      project = await createProject(t.db, { slug: `acme/per-stage-${dialect}`, repoUrl: repo.url });
      await setSecret(t.db, cipher, project.id, { name: 'TOK', value: 'tok-1234567', allowForks: false });
      scheduler.start();
    });

    afterAll(async () => {
      await scheduler?.stop();
      await t?.destroy();
      await rm(dataDir, { recursive: true, force: true });
    });

    const finished = (id: number): Promise<Build> => finishedBuild(t.db, id);
    const logText = async (id: number) => (await logs.read(id, 0)).map((l) => l.text);

    it('a fork build runs, hears once that a secret is withheld, and never asks for a skipped stage’s secret', async () => {
      const build = await control.trigger(project, {
        branch: 'main',
        event: 'pull_request',
        trigger: 'webhook',
        triggeredBy: 'test',
      });
      await setHeadRepoFork(t.db, build.id, true);
      expect(await finished(build.id)).toMatchObject({ status: 'success' });
      const log = await logText(build.id);
      expect(log).toContain('a []');
      expect(log).toContain('b []');
      expect(log.filter((l) => l === 'secret TOK withheld: pull request from a fork')).toHaveLength(1);
      expect(log.join('\n')).not.toContain('NOBODY_SET_THIS');
    }, 60_000);

    it('a push build fails the stage whose secret is missing, with the reason, after the others ran', async () => {
      const build = await control.trigger(project, {
        branch: 'main',
        event: 'push',
        trigger: 'webhook',
        triggeredBy: 'test',
      });
      const done = await finished(build.id);
      expect(done.status).toBe('error');
      expect(done.reason?.message).toContain('secret "NOBODY_SET_THIS" is not defined');
      const log = await logText(build.id);
      expect(log).toContain('a [********]');
      expect(log).toContain('b [********]');
      expect(log).toContain('secret "NOBODY_SET_THIS" is not defined');
      expect(log).not.toContain('shipped');
    }, 60_000);
  },
);
