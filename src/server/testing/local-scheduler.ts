import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { LocalExecutor } from '../../executors/local/local-executor.js';
import { getBuild, isTerminalStatus, type Build, type Database } from '../../store/index.js';
import { until } from '../../testing/until.js';
import { FsLogStore } from '../logs/fs-log-store.js';
import { LogHub } from '../logs/log-hub.js';
import type { LogStore } from '../logs/types.js';
import { DatabaseBuildControl } from '../scheduler/build-control.js';
import { ExecutorIds, ExecutorPool } from '../scheduler/executor-pool.js';
import { Scheduler, type SchedulerOptions } from '../scheduler/scheduler.js';

/** What a test needs to drive real builds: the scheduler, its control and its logs. */
export interface LocalScheduler {
  scheduler: Scheduler;
  control: DatabaseBuildControl;
  logs: LogStore;
  hub: LogHub;
}

/**
 * A scheduler running builds with the real local executor under `dataDir`, polling fast, as
 * tests want it (not started: call `scheduler.start()`). `extra` adds or replaces options, e.g.
 * a blob-backed log store, secrets or artifacts.
 */
export function localScheduler(
  db: Kysely<Database>,
  dataDir: string,
  extra: Partial<SchedulerOptions> = {},
): LocalScheduler {
  const logs = extra.logs ?? new FsLogStore(join(dataDir, 'logs'));
  const hub = extra.hub ?? new LogHub();
  const scheduler: Scheduler = new Scheduler({
    db,
    executors: new ExecutorPool(
      new Map([['local', new LocalExecutor({ tmpRoot: dataDir })]]),
      new Map(),
      'local',
    ),
    logs,
    hub,
    owner: 'test-owner',
    ids: new ExecutorIds('test'),
    workRoot: join(dataDir, 'work'),
    mirrors: join(dataDir, 'mirrors'),
    globalLimit: 2,
    pollMs: 50,
    leaseMs: 60_000,
    ...extra,
  });
  const control = new DatabaseBuildControl(db, () => scheduler.kick());
  return { scheduler, control, logs, hub };
}

/** The build once it reached a terminal status (polled; bounded like every test wait). */
export function finishedBuild(db: Kysely<Database>, id: number): Promise<Build> {
  return until(async () => {
    const build = await getBuild(db, id);
    return build && isTerminalStatus(build.status) ? build : undefined;
  }, 120_000);
}
