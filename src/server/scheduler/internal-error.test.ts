import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProject, type Build, type Project } from '../../store/index.js';
import { openTestDatabase, type TestDatabase } from '../../store/testing/dialects.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import type { StoredLogLine } from '../logs/types.js';
import { Metrics } from '../metrics.js';
import { TestRepo } from '../testing/git-repo.js';
import { finishedBuild, localScheduler } from '../testing/local-scheduler.js';
import type { DatabaseBuildControl } from './build-control.js';
import type { Scheduler } from './scheduler.js';

/** A real log store that fails on purpose for the builds named in `broken`. */
class FailingLogStore extends FsLogStore {
  readonly broken = new Map<number, 'open' | 'append'>();

  override lastSeq(buildId: number): Promise<number> {
    if (this.broken.get(buildId) === 'open')
      throw new TypeError('Cannot read properties of undefined (at /srv/x)');
    return super.lastSeq(buildId);
  }

  override append(buildId: number, lines: readonly StoredLogLine[]): Promise<void> {
    if (this.broken.get(buildId) === 'append') return Promise.reject(new Error('disk full under /srv/logs'));
    return super.append(buildId, lines);
  }
}

type Entry = { level: number; msg: string; errorId?: string; buildId?: number; err?: { stack?: string } };

describe('an internal error of a build: an id in its reason, the stack in the server log (real scheduler)', () => {
  let t: TestDatabase;
  let dataDir: string;
  let scheduler: Scheduler;
  let control: DatabaseBuildControl;
  let logs: FailingLogStore;
  let repo: TestRepo;
  let project: Project;
  const metrics = new Metrics({ processMetrics: false });
  const entries: Entry[] = [];

  beforeAll(async () => {
    t = await openTestDatabase('sqlite');
    dataDir = await mkdtemp(join(tmpdir(), 'slipway-internal-error-'));
    logs = new FailingLogStore(join(dataDir, 'logs'));
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean))
          entries.push(JSON.parse(line) as Entry);
        done();
      },
    });
    ({ scheduler, control } = localScheduler(t.db, dataDir, {
      logs,
      log: pino(stream),
      onLogLinesDropped: (lines) => metrics.logLinesDropped(lines),
    }));
    repo = await TestRepo.create({ '.slipway.yml': 'steps:\n  - name: hello\n    commands: [echo hello]\n' });
    project = await createProject(t.db, { slug: 'acme/internal', repoUrl: repo.url });
  });

  afterAll(async () => {
    await scheduler?.stop();
    await t?.destroy();
    await rm(dataDir, { recursive: true, force: true });
  });

  const finished = (id: number): Promise<Build> => finishedBuild(t.db, id);

  /** A build that the store fails as `how` from its first line on. */
  async function buildFailing(how: 'open' | 'append'): Promise<Build> {
    const build = await control.trigger(project, {
      branch: 'main',
      event: 'manual',
      trigger: 'manual',
      triggeredBy: 't',
    });
    logs.broken.set(build.id, how);
    scheduler.start();
    return finished(build.id);
  }

  it('ends the build error "internal error (id …)" and logs that id with the stack', async () => {
    const build = await buildFailing('open');
    expect(build.status).toBe('error');
    expect(build.reason?.code).toBe('internal');
    const errorId = /^internal error \(id ([0-9a-f]{12})\)$/.exec(build.reason?.message ?? '')?.[1];
    expect(errorId, build.reason?.message).toBeDefined();
    const logged = entries.filter((e) => e.errorId === errorId);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, msg: 'build run failed', buildId: build.id });
    expect(logged[0]!.err?.stack).toMatch(/^TypeError: Cannot read properties of undefined.*\n\s+at /);
  });

  it('goes on when log lines cannot be stored, logging the first failure once with an id and counting the lines', async () => {
    const build = await buildFailing('append');
    expect(build.status).toBe('success');
    const logged = entries.filter((e) => e.buildId === build.id);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, msg: 'storing build log lines failed' });
    expect(logged[0]!.errorId).toMatch(/^[0-9a-f]{12}$/);
    expect(logged[0]!.err?.stack).toMatch(/^Error: disk full under \/srv\/logs\n\s+at /);
    const { body } = await metrics.scrape();
    const dropped = Number(/^slipway_log_lines_dropped_total (\d+)$/m.exec(body)?.[1]);
    expect(dropped).toBeGreaterThan(0);
  });
});
