import type { Kysely } from 'kysely';
import { ACTIVE_STATUSES, approvalsOf, getProject, listBuilds } from '../../../store/index.js';
import type { ApprovalRecord, Build, Database, Project, Status } from '../../../store/index.js';
import { VIEWER } from '../context.js';
import type { App, RouteContext } from '../context.js';
import { toBuild } from '../convert.js';
import { QueueSchema } from '../schemas.js';

/**
 * Why a build has not started (or gone on); null when it is next to be claimed. `approval`: a
 * `waiting` build whose approval nobody decided yet.
 */
export type WaitingFor = 'approval' | 'branch_lock' | 'project_limit' | 'global_limit' | null;

/**
 * The queue as the scheduler sees it: the builds holding a running slot (`running`), then
 * the ones that wait (`queued`): decided approvals about to go on (decision order), queued
 * builds (FIFO), and builds waiting for a person, each with why it waits.
 */
export function queueRoutes(api: App, { db, globalLimit }: RouteContext): void {
  api.get(
    '/queue',
    {
      config: VIEWER,
      schema: {
        tags: ['builds'],
        summary:
          'Builds holding a running slot; then waiting builds (decided approvals, queued, waiting for approval) in start order with what each waits for',
        response: { 200: QueueSchema },
      },
    },
    async () => {
      const [active, queued] = await Promise.all([allBuilds(db, ACTIVE_STATUSES), allBuilds(db, ['queued'])]);
      const approvals = await approvalsOf(
        db,
        active.map((b) => b.id),
      );
      const { decided, undecided } = splitWaiting(active, approvals);
      const projects = new Map<number, Project | undefined>();
      for (const id of new Set([...queued, ...decided].map((b) => b.projectId)))
        projects.set(id, await getProject(db, id));
      const reasons = waitingReasons(
        active,
        decided,
        queued,
        (id) => projects.get(id)?.maxRunning ?? null,
        globalLimit,
      );
      const dto = (b: Build) => toBuild(b, approvals.get(b.id) ?? []);
      return {
        running: active.filter((b) => b.status !== 'waiting').map(dto),
        queued: [
          ...decided.map((b, i) => ({ ...dto(b), waitingFor: reasons.decided[i] ?? null })),
          ...queued.map((b, i) => ({ ...dto(b), waitingFor: reasons.queued[i] ?? null })),
          ...undecided.map((b) => ({ ...dto(b), waitingFor: 'approval' as const })),
        ],
        limits: { global: globalLimit },
      };
    },
  );
}

/**
 * The `waiting` builds among `active`: those whose approval is decided but that have not gone
 * on yet (in decision order: the order they get slots back), and those still waiting for a
 * person (oldest first).
 */
export function splitWaiting(
  active: readonly Build[],
  approvals: ReadonlyMap<number, readonly ApprovalRecord[]>,
): { decided: Build[]; undecided: Build[] } {
  const decided: { build: Build; at: number }[] = [];
  const undecided: Build[] = [];
  for (const build of active) {
    if (build.status !== 'waiting') continue;
    const open = approvals.get(build.id)?.find((a) => a.decision === 'waiting' || a.resumedAt === null);
    if (open !== undefined && open.decision !== 'waiting') decided.push({ build, at: open.at ?? 0 });
    else undecided.push(build);
  }
  decided.sort((a, b) => a.at - b.at || a.build.id - b.build.id);
  return { decided: decided.map((d) => d.build), undecided };
}

/**
 * Replays the scheduler's claim rules (see the store's `claimSlots`): first the decided
 * approvals (`decided`, in decision order) wait for their project's limit, then the global
 * one; then the queue in FIFO order: a build waits for its branch while an active (`waiting`
 * too) or older queued build of the same project+branch exists, then for its project's
 * limit, then for the global one. Only `pending` and `running` builds of `active` hold slots;
 * builds that would start or go on are counted as running for the ones behind them.
 */
export function waitingReasons(
  active: readonly Build[],
  decided: readonly Build[],
  queued: readonly Build[],
  maxRunningOf: (projectId: number) => number | null,
  globalLimit: number,
): { decided: WaitingFor[]; queued: WaitingFor[] } {
  const branches = new Set(active.map((b) => branchKey(b)));
  const perProject = new Map<number, number>();
  let running = 0;
  for (const b of active) {
    if (b.status === 'waiting') continue;
    perProject.set(b.projectId, (perProject.get(b.projectId) ?? 0) + 1);
    running += 1;
  }
  const decidedReasons = decided.map((build): WaitingFor => {
    const max = maxRunningOf(build.projectId);
    const mine = perProject.get(build.projectId) ?? 0;
    if (max !== null && mine >= max) return 'project_limit';
    if (running >= globalLimit) return 'global_limit';
    perProject.set(build.projectId, mine + 1);
    running += 1;
    return null;
  });
  const queuedReasons = queued.map((build): WaitingFor => {
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
  return { decided: decidedReasons, queued: queuedReasons };
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
