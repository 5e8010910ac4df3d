import type { Kysely } from 'kysely';
import {
  claimSlots,
  getProject,
  pendingControl,
  renewLeases,
  setBuildStatus,
  type Build,
  type Database,
} from '../../store/index.js';
import { BuildRun, type BuildRunDeps } from './build-run.js';
import type { ExecutorPool } from './executor-pool.js';

export interface SchedulerOptions extends BuildRunDeps {
  db: Kysely<Database>;
  executors: ExecutorPool;
  /** Active builds at once across all projects and replicas. */
  globalLimit: number;
  /** A claimed build's lease; renewed every third of it while the build runs. */
  leaseMs?: number;
  /** How often the queue and the control requests (cancel, approval) are read. */
  pollMs?: number;
  onError?: (error: unknown) => void;
}

/**
 * Takes queued builds from the database as limits and branch locks allow, runs them, keeps
 * their leases alive and acts on cancel and approval requests. Several schedulers (server
 * replicas) may share one database: claims and leases in the store keep them from doing the
 * same work twice.
 */
export class Scheduler {
  private readonly runs = new Map<number, { run: BuildRun; done: Promise<void> }>();
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private timers: NodeJS.Timeout[] = [];
  private ticking = false;
  private tickAgain = false;
  /** The tick under way (or the last one): `stop` waits for it, so no claim lands after it. */
  private tickDone: Promise<void> = Promise.resolve();
  private stopped = true;
  /** Set by stop/detach: no build is taken or resumed any more. */
  private closing = false;

  /** What each run gets: the options, and a kick when the run gives up its slot. */
  private readonly runDeps: BuildRunDeps;

  constructor(private readonly options: SchedulerOptions) {
    this.leaseMs = options.leaseMs ?? 30_000;
    this.pollMs = options.pollMs ?? 1000;
    this.runDeps = {
      ...options,
      onSlotFreed: () => {
        options.onSlotFreed?.();
        this.kick();
      },
    };
  }

  start(): void {
    this.stopped = false;
    this.timers.push(setInterval(() => this.kick(), this.pollMs));
    this.timers.push(setInterval(() => void this.renew().catch(this.report), this.leaseMs / 3));
    this.kick();
  }

  /** Looks at the queue and the control requests now (after a trigger, cancel or approval). */
  kick(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.tickAgain = true;
      return;
    }
    this.ticking = true;
    this.tickDone = this.tick()
      .catch(this.report)
      .finally(() => {
        this.ticking = false;
        if (this.tickAgain) {
          this.tickAgain = false;
          this.kick();
        }
      });
  }

  /** Builds this process runs now. */
  activeIds(): number[] {
    return [...this.runs.keys()];
  }

  /**
   * Stops taking builds. Running builds are cancelled with `reason` and waited for, so they
   * end with a final status instead of being found `lost` later.
   */
  async stop(reason = 'the server is shutting down'): Promise<void> {
    await this.stopClaiming();
    for (const { run } of this.runs.values())
      run.cancel({ code: 'cancelled', message: `cancelled: ${reason}` });
    await Promise.all([...this.runs.values()].map((r) => r.done));
  }

  /**
   * Stops taking builds and leaves the running ones to a successor (a restart, an upgrade):
   * first waits up to `drainMs` for them to end on their own, then detaches the rest. Their
   * steps go on, their leases are left as they are: the successor with the same owner id
   * re-attaches at start, another replica once the lease expires. Cancels and approvals that
   * arrive meanwhile are still acted on while draining.
   */
  async detach(drainMs = 0): Promise<void> {
    await this.stopClaiming({ keepControl: drainMs > 0 });
    if (drainMs > 0 && this.runs.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.runs.values()].map((r) => r.done)),
        new Promise((resolve) => (timer = setTimeout(resolve, drainMs))),
      ]);
      clearTimeout(timer);
    }
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    for (const { run } of this.runs.values()) run.detach();
    await Promise.all([...this.runs.values()].map((r) => r.done));
  }

  /**
   * Runs a build an earlier process was running (see `reconcile`): its lease is ours already.
   * It is registered like a claimed build: cancel and approvals reach it, its lease is renewed.
   */
  async resume(build: Build, previousOwner?: string): Promise<void> {
    if (this.closing || this.runs.has(build.id)) return;
    await this.startRun(build, 'resume', previousOwner);
  }

  /** `keepControl`: lease renewal and cancel requests go on (while draining). */
  private async stopClaiming(options: { keepControl?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.closing = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    if (options.keepControl) {
      this.timers.push(setInterval(() => void this.applyControl().catch(this.report), this.pollMs));
      this.timers.push(setInterval(() => void this.renew().catch(this.report), this.leaseMs / 3));
    }
    // A tick under way may still claim builds and start their runs: let it, then stop those too.
    await this.tickDone;
  }

  private readonly report = (error: unknown) => this.options.onError?.(error);

  private async tick(): Promise<void> {
    await this.applyControl();
    if (this.stopped) return;
    const { claimed, resumed } = await claimSlots(this.options.db, this.options.owner, this.leaseMs, {
      global: this.options.globalLimit,
    });
    // A decided build of ours got its slot back: go on with it now rather than at the next poll.
    if (resumed.some((build) => this.runs.has(build.id))) await this.applyControl();
    for (const build of claimed) await this.startRun(build);
  }

  private async startRun(
    build: Build,
    mode: 'start' | 'resume' = 'start',
    previousOwner?: string,
  ): Promise<void> {
    const project = await getProject(this.options.db, build.projectId);
    if (!project) {
      await setBuildStatus(this.options.db, build.id, ['pending', 'running', 'waiting'], 'error', {
        reason: { code: 'internal', message: 'the project no longer exists' },
      });
      return;
    }
    const run = new BuildRun(
      build,
      project,
      // A resumed build goes on with the executor that ran it.
      this.options.executors.pick(
        mode === 'resume' ? (build.executor ?? project.defaultExecutor) : project.defaultExecutor,
      ),
      this.runDeps,
      mode,
      previousOwner,
    );
    const done = run
      .execute()
      .catch(this.report)
      .finally(() => {
        this.runs.delete(build.id);
        this.kick(); // a slot is free
      });
    this.runs.set(build.id, { run, done });
  }

  /**
   * Cancel requests and approval decisions for the builds this process runs. A decision
   * arrives here only once the build has a running slot again (see `claimSlots`).
   */
  private async applyControl(): Promise<void> {
    if (this.runs.size === 0) return;
    const requests = await pendingControl(this.options.db, this.activeIds());
    for (const request of requests) {
      const entry = this.runs.get(request.buildId);
      if (!entry) continue;
      if (request.cancel) entry.run.cancel(request.cancel);
      else if (request.approval && entry.run.waitingForApproval) {
        entry.run.decide({
          stage: request.approval.stage,
          decision: request.approval.decision,
          by: request.approval.by,
          comment: request.approval.message,
        });
      }
    }
  }

  private async renew(): Promise<void> {
    const ids = this.activeIds();
    if (ids.length === 0) return;
    const kept = new Set(
      await renewLeases(this.options.db, this.options.owner, ids, Date.now() + this.leaseMs),
    );
    for (const id of ids) {
      // Not renewed: the build finished meanwhile (its run is ending) or another process
      // took it over after our lease ran out. Either way this process must stop touching it.
      if (!kept.has(id)) this.runs.get(id)?.run.abandon();
    }
  }
}
