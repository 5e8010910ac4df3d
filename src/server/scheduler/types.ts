import type { Build, BuildEvent, Project } from '../../store/index.js';

export interface TriggerInput {
  branch: string;
  commit?: string;
  tag?: string;
  /** What the webhook's payload said of the commit; the checkout replaces them. */
  commitMessage?: string;
  commitAuthor?: string;
  /** Pull-request builds: the request's number on the forge. */
  pullRequest?: number;
  event: BuildEvent;
  trigger: 'manual' | 'webhook' | 'rerun' | 'schedule';
  triggeredBy: string;
  rerunOf?: number;
  /** With `rerunOf`: run only what failed there, reuse what succeeded. */
  rerunFailed?: boolean;
}

/**
 * What the API (and webhooks) may ask of the build machinery. Each call is a durable change
 * in the database first; the scheduler that owns the build acts on it (in this process at
 * once, in another replica within its poll interval). Errors are `ControlError`s.
 */
export interface BuildControl {
  /** Queues a build; applies the project's concurrency policy (supersede cancels older ones). */
  trigger(project: Project, input: TriggerInput): Promise<Build>;
  /** Cancels a queued build at once, or asks its owner to stop an active one. */
  cancel(buildId: number, by: string, reason?: string): Promise<Build>;
  /**
   * Approves or rejects the stage a build waits on, with an optional one-line comment for the
   * record. The build stays `waiting` until it has a running slot again, then goes on.
   */
  decide(buildId: number, decision: 'approve' | 'reject', by: string, comment?: string): Promise<Build>;
  /**
   * Queues a new build of the same project, ref and commit. `failedOnly`: it runs only what
   * failed and reuses what succeeded (`planReuse`); refused (`conflict`) unless the build ended
   * and did not succeed.
   */
  rerun(buildId: number, by: string, options?: { failedOnly?: boolean }): Promise<Build>;
}

export type ControlErrorCode = 'not_found' | 'conflict' | 'invalid';

/** A request the build machinery refuses, with a message for the API caller. */
export class ControlError extends Error {
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}
