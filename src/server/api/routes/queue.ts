import type { Kysely } from 'kysely';
import { ACTIVE_STATUSES, getProject, listBuilds } from '../../../store/index.js';
import type { Build, Database, Project, Status } from '../../../store/index.js';
import { VIEWER } from '../context.js';
import type { App, RouteContext } from '../context.js';
import { toBuild } from '../convert.js';
import { QueueSchema } from '../schemas.js';

/** Why a queued build has not started; null when it is next to be claimed. */
export type WaitingFor = 'branch_lock' | 'project_limit' | 'global_limit' | null;

/** The queue as the scheduler sees it: active builds, and queued ones with why they wait. */
export function queueRoutes(api: App, { db, globalLimit }: RouteContext): void {
  api.get(
    '/queue',
    {
      config: VIEWER,
      schema: {
        tags: ['builds'],
        summary: 'Active builds, and queued builds in start order with what each waits for',
        response: { 200: QueueSchema },
      },
    },
    async () => {
      const [active, queued] = await Promise.all([allBuilds(db, ACTIVE_STATUSES), allBuilds(db, ['queued'])]);
      const projects = new Map<number, Project | undefined>();
      for (const id of new Set(queued.map((b) => b.projectId))) projects.set(id, await getProject(db, id));
      const reasons = waitingReasons(
        active,
        queued,
        (id) => projects.get(id)?.maxRunning ?? null,
        globalLimit,
      );
      return {
        running: active.map(toBuild),
        queued: queued.map((b, i) => ({ ...toBuild(b), waitingFor: reasons[i] ?? null })),
        limits: { global: globalLimit },
      };
    },
  );
}

/**
 * Replays the scheduler's claim rules (see the store's `claimNextBuilds`) over the queue in
 * FIFO order: a build waits for its branch while an active or older queued build of the same
 * project+branch exists, then for its project's limit, then for the global one. Builds that
 * would start are counted as running for the ones behind them.
 */
export function waitingReasons(
  active: readonly Build[],
  queued: readonly Build[],
  maxRunningOf: (projectId: number) => number | null,
  globalLimit: number,
): WaitingFor[] {
  const branches = new Set(active.map((b) => branchKey(b)));
  const perProject = new Map<number, number>();
  for (const b of active) perProject.set(b.projectId, (perProject.get(b.projectId) ?? 0) + 1);
  let running = active.length;
  return queued.map((build) => {
    const key = branchKey(build);
    if (branches.has(key)) return 'branch_lock';
    // Older builds of a branch go first, whether or not they can start now.
    branches.add(key);
    const max = maxRunningOf(build.projectId);
    const mine = perProject.get(build.projectId) ?? 0;
    if (max !== null && mine >= max) return 'project_limit';
    if (running >= globalLimit) return 'global_limit';
    perProject.set(build.projectId, mine + 1);
    running += 1;
    return null;
  });
}

function branchKey(build: Build): string {
  return `${build.projectId}\u0000${build.branch}`;
}

/** Every build in one of `statuses`, oldest first (the queue's order). */
async function allBuilds(db: Kysely<Database>, statuses: readonly Status[]): Promise<Build[]> {
  const builds: Build[] = [];
  let before: number | undefined;
  do {
    const page = await listBuilds(db, {
      status: statuses,
      limit: 500,
      ...(before !== undefined && { before }),
    });
    builds.push(...page.builds);
    before = page.nextBefore ?? undefined;
  } while (before !== undefined);
  return builds.reverse();
}
