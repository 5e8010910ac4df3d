import type { Kysely } from 'kysely';
import type { Executor } from '../../executors/types.js';
import {
  closeOpenRecords,
  findExpiredLeases,
  getBuild,
  isActiveStatus,
  listActiveBuilds,
  setBuildStatus,
  takeOverLease,
  type Build,
  type Database,
} from '../../store/index.js';
import type { LogHub } from '../logs/log-hub.js';
import { BuildLogWriter } from '../logs/log-writer.js';
import type { LogStore } from '../logs/types.js';
import type { ExecutorIds } from './executor-pool.js';

export interface ReconcilerOptions {
  db: Kysely<Database>;
  executors: Executor[];
  logs: LogStore;
  hub: LogHub;
  owner: string;
  ids: ExecutorIds;
  leaseMs: number;
  /** Builds this process runs right now: never touched. */
  activeHere: () => number[];
  /**
   * Runs an orphaned running/waiting build again, re-attached to its steps (`Scheduler.resume`);
   * its lease is ours when this is called. Without it such builds are marked `lost`.
   */
  /** `previousOwner`: the replica id that held the lease (this one's own after a restart). */
  resume?: (build: Build, previousOwner: string) => Promise<void>;
}

export interface ReconcileReport {
  requeued: number[];
  /** Running/waiting builds taken over and resumed (re-attached to their steps). */
  resumed: number[];
  lost: number[];
  /** Executor build ids whose leftovers were removed. */
  removed: string[];
  /** Leftovers whose removal failed (retried on the next pass), with the engine's words. */
  failed: string[];
}

/**
 * Makes the database and the executors agree again, at start-up and periodically:
 * - an active build whose owner is gone (its lease expired, or it is ours from before a
 *   restart) is taken over: if it never started (`pending`) it goes back to the queue;
 *   otherwise it is resumed (`options.resume`): its run re-attaches to the steps that outlived
 *   their server and ends it `lost` only when the executor no longer has them. Without
 *   `resume`, its containers or processes are removed and it is marked `lost` with the reason.
 * - containers, volumes and workspaces of builds that are not active are removed.
 */
export async function reconcile(options: ReconcilerOptions, startup: boolean): Promise<ReconcileReport> {
  const { db, owner } = options;
  const report: ReconcileReport = { requeued: [], resumed: [], lost: [], removed: [], failed: [] };
  const here = new Set(options.activeHere());
  const orphaned = new Map<number, Build>();
  for (const build of await findExpiredLeases(db)) orphaned.set(build.id, build);
  // Same owner id as before a restart: whatever it held, no process runs any more.
  if (startup) for (const build of await listActiveBuilds(db, owner)) orphaned.set(build.id, build);

  const resources = await listAll(options.executors);
  for (const build of orphaned.values()) {
    if (here.has(build.id)) continue;
    const previousOwner = build.leaseOwner ?? 'unknown';
    const taken = await takeOverLease(db, build.id, owner, Date.now() + options.leaseMs, Date.now());
    if (!taken) continue; // another replica got it first, or it finished meanwhile
    if (taken.status !== 'pending' && options.resume) {
      // Its steps may still run: the resumed run re-attaches, or ends it `lost` saying why.
      await options.resume(taken, previousOwner);
      report.resumed.push(build.id);
      continue;
    }
    const leftovers = resources.filter((r) => r.resource.buildId === options.ids.of(build.id));
    const failures: string[] = [];
    for (const executor of new Set(leftovers.map((l) => l.executor))) {
      // A removal the engine refuses must not leave the build `running`: it is still marked
      // lost, and the periodic sweep below retries the removal.
      await executor.removeResources(options.ids.of(build.id)).catch((error: unknown) => {
        failures.push(`${executor.name}: ${error instanceof Error ? error.message : String(error)}`);
      });
    }
    if (taken.status === 'pending') {
      // Claimed but never started: nothing ran, so running it again is safe.
      if (await setBuildStatus(db, build.id, ['pending'], 'queued', { reason: null, ifLeaseOwner: owner })) {
        report.requeued.push(build.id);
      }
      continue;
    }
    const message =
      leftovers.length === 0
        ? `the server running this build (${previousOwner}) stopped and the executor no longer knows the build`
        : failures.length === 0
          ? `the server running this build (${previousOwner}) stopped; its ${leftovers.length} leftover container(s)/process(es) were removed`
          : `the server running this build (${previousOwner}) stopped; removing its leftovers failed (${failures.join('; ')}), retried later`;
    const reason = { code: 'lost' as const, message };
    const writer = await BuildLogWriter.open(build.id, options.logs, options.hub);
    writer.write('', 'slipway', 'system', `build lost: ${message}`);
    await writer.close();
    await closeOpenRecords(db, build.id, 'lost', reason);
    if (await setBuildStatus(db, build.id, ['running', 'waiting'], 'lost', { reason, ifLeaseOwner: owner })) {
      report.lost.push(build.id);
    }
  }

  // Leftovers of builds that are over (or never were server builds of this database).
  for (const { executor, resource } of resources) {
    const buildId = options.ids.parse(resource.buildId);
    if (buildId === undefined || here.has(buildId) || report.removed.includes(resource.buildId)) continue;
    const build = await getBuild(db, buildId);
    if (build && (isActiveStatus(build.status) || build.status === 'queued')) continue;
    try {
      await executor.removeResources(resource.buildId);
      report.removed.push(resource.buildId);
    } catch (error) {
      report.failed.push(`${resource.buildId}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return report;
}

async function listAll(executors: Executor[]) {
  const all = await Promise.all(
    executors.map(async (executor) =>
      (await executor.listResources().catch(() => [])).map((resource) => ({ executor, resource })),
    ),
  );
  return all.flat();
}
