import type { Kysely } from 'kysely';
import { approvalsOf, getBuild, getProject, type Database, type Project } from '../../store/index.js';
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
  const chains = new Map<number, Promise<void>>();
  const report = options.onError ?? (() => undefined);

  const enqueue = (buildId: number, event: NoticeEvent) => {
    if (controller.signal.aborted) return;
    const previous = chains.get(buildId) ?? Promise.resolve();
    const next = previous
      .then(() => deliver(buildId, event))
      .catch((error: unknown) => report(error, { buildId }));
    chains.set(buildId, next);
    void next.finally(() => {
      if (chains.get(buildId) === next) chains.delete(buildId);
    });
  };

  async function deliver(buildId: number, event: NoticeEvent): Promise<void> {
    if ((event === 'queued' || event === 'stage') && options.extra === undefined) return;
    const build = await getBuild(db, buildId);
    if (!build) return;
    const project = await getProject(db, build.projectId);
    if (!project) return;
    // Webhook targets are told of starts and ends only; `queued` and `stage` go to the
    // notifiers that have a method for them.
    const early = event === 'queued' || event === 'stage';
    const notifiers: Notifier[] = (early ? [] : await listNotifyTargets(db, project.id)).map(
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
      ...(options.extra?.(project) ?? []).filter(
        (n) =>
          (event !== 'queued' || n.buildQueued !== undefined) &&
          (event !== 'stage' || n.stageChanged !== undefined),
      ),
    );
    if (notifiers.length === 0) return;
    const notice: BuildNotice = {
      event,
      build,
      project,
      approvals: (await approvalsOf(db, [build.id])).get(build.id) ?? [],
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

  const idle = async () => {
    while (chains.size > 0) await Promise.all([...chains.values()]);
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
