import type { Kysely } from 'kysely';
import {
  approvalsOf,
  getBuild,
  getProject,
  type ApprovalRecord,
  type Database,
  type Project,
} from '../../store/index.js';
import { listNotifyTargets } from './targets.js';
import type { BuildNotice, NoticeEvent, Notifier } from './types.js';
import { WebhookNotifier } from './webhook-notifier.js';

export interface NotifierHubOptions {
  /** Public address of the server, for links to build pages (`<baseUrl>/projects/<slug>/builds/<n>`). */
  baseUrl?: string;
  /** Per attempt of an outgoing webhook; default 5 s. */
  timeoutMs?: number;
  /** Further attempts after a transient failure; default 2. */
  retries?: number;
  retryDelayMs?: number;
  fetch?: typeof fetch;
  /** More notifiers for a project's builds (a forge commit-status notifier, for instance). */
  extra?: (project: Project) => Notifier[];
  /** A notifier failed for good, or the build could not be read. */
  onError?: (error: unknown, context: { buildId: number; notifier?: string }) => void;
}

/** What the scheduler calls; every call returns at once and never throws. */
export interface NotifierHub {
  /** The build was created (queued). */
  onBuildQueued(buildId: number): void;
  /** The build entered `running`. */
  onBuildStarted(buildId: number): void;
  /** One of the build's stages started or ended. */
  onStageChanged(buildId: number): void;
  /** The build reached its final status. */
  onBuildFinished(buildId: number): void;
  /** Resolves when every notice made so far has been delivered or given up. */
  idle(): Promise<void>;
  /** Stops retries and waits for what is under way (server shutdown). */
  close(): Promise<void>;
}

/**
 * Sends build notices to each project's targets (its own and the global ones in
 * `notify_targets`) and to `extra` notifiers. Work happens in the background, in order per
 * build, so that a slow or dead receiver never delays a build or its neighbours.
 */
export function createNotifierHub(db: Kysely<Database>, options: NotifierHubOptions = {}): NotifierHub {
  const controller = new AbortController();
  /** Per build: the events not yet taken, and the delivery under way. */
  const builds = new Map<number, { events: NoticeEvent[]; done: Promise<void> }>();
  const report = options.onError ?? (() => undefined);

  const enqueue = (buildId: number, event: NoticeEvent) => {
    if (controller.signal.aborted) return;
    if ((event === 'queued' || event === 'stage') && options.extra === undefined) return;
    const pending = builds.get(buildId);
    if (pending !== undefined) {
      pending.events.push(event);
      return;
    }
    const entry = { events: [event], done: Promise.resolve() };
    builds.set(buildId, entry);
    entry.done = (async () => {
      // The other moments of this turn of the event loop join the first batch; those that
      // arrive while a batch is delivered make the next one.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (entry.events.length > 0) {
        const batch = entry.events.splice(0);
        await deliver(buildId, batch).catch((error: unknown) => report(error, { buildId }));
      }
      builds.delete(buildId);
    })();
  };

  /**
   * Announces `events` (in order, each settled before the next) from one read of the build, its
   * project and approvals: made after all of them happened, it is as current for each as a read
   * of its own would be. A build's moments come in bursts (a short build starts, runs its stage
   * and ends within milliseconds), and each read was a few queries.
   */
  async function deliver(buildId: number, events: NoticeEvent[]): Promise<void> {
    const build = await getBuild(db, buildId);
    if (!build) return;
    const project = await getProject(db, build.projectId);
    if (!project) return;
    // Webhook targets are told of starts and ends only; `queued` and `stage` go to the
    // notifiers that have a method for them.
    const targets = events.some((e) => e === 'started' || e === 'finished')
      ? await listNotifyTargets(db, project.id)
      : [];
    const extra = options.extra?.(project) ?? [];
    let approvals: ApprovalRecord[] | undefined;
    for (const event of events) {
      const early = event === 'queued' || event === 'stage';
      const notifiers: Notifier[] = (early ? [] : targets).map(
        (target) =>
          new WebhookNotifier({
            url: target.url,
            slack: target.slack,
            events: target.events,
            signal: controller.signal,
            ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
            ...(options.retries !== undefined && { retries: options.retries }),
            ...(options.retryDelayMs !== undefined && { retryDelayMs: options.retryDelayMs }),
            ...(options.fetch !== undefined && { fetch: options.fetch }),
          }),
      );
      notifiers.push(
        ...extra.filter(
          (n) =>
            (event !== 'queued' || n.buildQueued !== undefined) &&
            (event !== 'stage' || n.stageChanged !== undefined),
        ),
      );
      if (notifiers.length === 0) continue;
      approvals ??= (await approvalsOf(db, [build.id])).get(build.id) ?? [];
      const notice: BuildNotice = {
        event,
        build,
        project,
        approvals,
        url: buildUrl(options.baseUrl, project.slug, build.number),
      };
      await Promise.all(
        notifiers.map((notifier) =>
          announce(notifier, notice).catch((error: unknown) =>
            report(error, { buildId, notifier: notifier.name }),
          ),
        ),
      );
    }
  }

  const idle = async () => {
    while (builds.size > 0) await Promise.all([...builds.values()].map((b) => b.done));
  };

  return {
    onBuildQueued: (buildId) => enqueue(buildId, 'queued'),
    onBuildStarted: (buildId) => enqueue(buildId, 'started'),
    onStageChanged: (buildId) => enqueue(buildId, 'stage'),
    onBuildFinished: (buildId) => enqueue(buildId, 'finished'),
    idle,
    close: async () => {
      controller.abort();
      await idle();
    },
  };
}

function announce(notifier: Notifier, notice: BuildNotice): Promise<void> {
  switch (notice.event) {
    case 'queued':
      return notifier.buildQueued?.(notice) ?? Promise.resolve();
    case 'started':
      return notifier.buildStarted(notice);
    case 'stage':
      return notifier.stageChanged?.(notice) ?? Promise.resolve();
    case 'finished':
      return notifier.buildFinished(notice);
  }
}

function buildUrl(baseUrl: string | undefined, slug: string, number: number): string | null {
  if (baseUrl === undefined) return null;
  return `${baseUrl.replace(/\/+$/, '')}/projects/${slug}/builds/${number}`;
}
