import type { Kysely } from 'kysely';
import {
  claimScheduleTick,
  dueSchedules,
  getProject,
  setScheduleBuild,
  updateSchedule,
  writeTransaction,
  type Build,
  type Database,
  type DueSchedule,
  type Project,
} from '../../store/index.js';
import type { TriggerInput } from '../scheduler/types.js';
import { nextTick } from './cron.js';

export interface ScheduleRunnerDeps {
  db: Kysely<Database>;
  /**
   * Queues a build inside the claim's transaction `trx`: the server passes the manual
   * trigger's path (`DatabaseBuildControl.trigger`) bound to `trx`, so a schedule's build is
   * made exactly like any other, and a failed creation gives the tick back.
   */
  trigger: (trx: Kysely<Database>, project: Project, input: TriggerInput) => Promise<Build>;
  /**
   * Told of each build queued, after its transaction committed: the server wakes its
   * scheduler and tells the notifiers (as the manual trigger's path does after its own).
   */
  onQueued?: (build: Build) => void;
  /** The clock; tests pass their own. */
  now?: () => number;
  onError?: (error: unknown, schedule: DueSchedule) => void;
}

/** What one pass did: the builds it started, by schedule id. */
export interface SchedulePass {
  started: { scheduleId: number; tick: number; build: Build }[];
}

/**
 * Runs due schedules. A pass lists the schedules whose tick is due and, for each, claims the
 * tick and queues its build in one transaction. The claim moves `next_run_at` on to the
 * first tick after *now*, not after the due tick: ticks missed while no server ran start one
 * build, not one per missed tick. Replicas sharing the database may pass at the same time:
 * the claim is a compare-and-set on `next_run_at`, so each tick starts exactly one build.
 */
export class ScheduleRunner {
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SchedulePass> | undefined;

  constructor(private readonly deps: ScheduleRunnerDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** One pass; a pass already under way is joined rather than run twice at once. */
  runDue(): Promise<SchedulePass> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  /** A pass now (ticks missed while down), then one every `intervalMs`. */
  start(intervalMs: number): void {
    if (this.timer !== undefined) return;
    const run = () => void this.runDue().catch(() => undefined);
    run();
    this.timer = setInterval(run, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  private async pass(): Promise<SchedulePass> {
    const now = this.now();
    const started: SchedulePass['started'] = [];
    for (const due of await dueSchedules(this.deps.db, now)) {
      try {
        const build = await this.runTick(due, now);
        if (build === undefined) continue;
        started.push({ scheduleId: due.id, tick: due.nextRunAt, build });
        this.deps.onQueued?.(build);
      } catch (error) {
        // The tick stays due: the next pass tries again (a database hiccup must not lose it).
        this.deps.onError?.(error, due);
      }
    }
    return { started };
  }

  private async runTick(due: DueSchedule, now: number): Promise<Build | undefined> {
    const next = nextTick(due.cron, due.timezone, now);
    const { db, trigger } = this.deps;
    return writeTransaction(db, async (trx) => {
      if (!(await claimScheduleTick(trx, due.id, due.nextRunAt, next, now))) return undefined;
      const project = await getProject(trx, due.projectId);
      // The project's deletion removes its schedules too (cascade): a row without one is gone.
      if (project === undefined) return undefined;
      const build = await trigger(trx, project, {
        branch: due.branch,
        event: 'cron',
        trigger: 'schedule',
        triggeredBy: scheduleLabel(due),
      });
      await setScheduleBuild(trx, due.id, build.id);
      if (next === null) await updateSchedule(trx, due.id, { enabled: false }, now);
      return build;
    });
  }
}

/** `schedule #3 "nightly"`: who started a schedule's build, as its `triggeredBy` says. */
export function scheduleLabel(schedule: { id: number; name: string | null }): string {
  return `schedule #${schedule.id}${schedule.name !== null ? ` "${schedule.name}"` : ''}`;
}
