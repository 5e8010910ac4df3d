import type { ApprovalRecord, Build, Project } from '../../store/index.js';

/**
 * The moments a build is announced: `queued` (created; only to notifiers with `buildQueued`),
 * `started`, `stage` (a stage started or ended; only to notifiers with `stageChanged`), `finished`.
 */
export type NoticeEvent = 'queued' | 'started' | 'stage' | 'finished';

/** One build at one moment, as every notifier receives it. */
export interface BuildNotice {
  event: NoticeEvent;
  /** The build as stored when the notice was made: status, reason and times are current. */
  build: Build;
  project: Project;
  /** The build's approval stages: who decided what, when and why (none when it has no gate). */
  approvals?: ApprovalRecord[];
  /** The build's page in the web UI, when the server knows its public address. */
  url: string | null;
}

/**
 * Something that tells the outside world about builds: an outgoing webhook, a chat, or (later)
 * a forge's commit status. The hub calls a notifier off the build's path and in order per
 * build (`buildStarted` has settled before `buildFinished` is called, so a commit status
 * never goes back from "success" to "pending"). A notifier does its own retries and
 * timeouts; a rejected promise is logged by the hub and not retried.
 */
export interface Notifier {
  /** For logs: `webhook https://hooks.example.com/…`. */
  readonly name: string;
  buildStarted(notice: BuildNotice): Promise<void>;
  buildFinished(notice: BuildNotice): Promise<void>;
  /** The build was queued (a forge's "pending"); optional: most notifiers wait for the start. */
  buildQueued?(notice: BuildNotice): Promise<void>;
  /** One of the build's stages started or ended (its records are in the store); optional. */
  stageChanged?(notice: BuildNotice): Promise<void>;
}
