import type { Kysely } from 'kysely';
import {
  approvalsOf,
  createBuild,
  decideApproval,
  getBuild,
  getProject,
  isTerminalStatus,
  requestCancel,
  setBuildStatus,
  supersede,
  type Build,
  type Database,
  type Project,
} from '../../store/index.js';
import { isCommitSha, isSafeRefName } from '../sources/git-checkout.js';
import { ControlError, type BuildControl, type TriggerInput } from './types.js';

/** Longest approval comment (the API's schema says the same). */
const MAX_COMMENT = 1000;

/**
 * The build machinery as the API sees it. Every request is first a durable change in the
 * database; `notify` wakes the local scheduler so it acts at once (other replicas act on
 * their next poll).
 */
export class DatabaseBuildControl implements BuildControl {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly notify: () => void = () => undefined,
    /** Builds queued, and queued ones ended here (cancelled, superseded): for notifiers. */
    private readonly events: { queued?: (build: Build) => void; finished?: (build: Build) => void } = {},
  ) {}

  async trigger(project: Project, input: TriggerInput): Promise<Build> {
    if (!isSafeRefName(input.branch))
      throw new ControlError('invalid', `invalid branch name "${input.branch}"`);
    if (input.tag !== undefined && !isSafeRefName(input.tag))
      throw new ControlError('invalid', `invalid tag name "${input.tag}"`);
    if (input.commit !== undefined && !isCommitSha(input.commit)) {
      throw new ControlError(
        'invalid',
        `invalid commit "${input.commit}": expected 7 to 64 hexadecimal digits`,
      );
    }
    const build = await createBuild(this.db, {
      projectId: project.id,
      branch: input.branch,
      event: input.event,
      trigger: input.trigger,
      commitSha: input.commit ?? null,
      commitMessage: input.commitMessage ?? null,
      commitAuthor: input.commitAuthor ?? null,
      pullRequest: input.pullRequest ?? null,
      tag: input.tag ?? null,
      triggeredBy: input.triggeredBy,
      rerunOf: input.rerunOf ?? null,
      ...(input.rerunFailed && input.rerunOf !== undefined ? { rerunFailed: true } : {}),
    });
    if (project.concurrencyPolicy === 'supersede') {
      const older = await supersede(this.db, project.id, input.branch, build.id);
      for (const cancelled of older.cancelled) this.events.finished?.(cancelled);
      for (const active of older.active) {
        await requestCancel(this.db, active.id, {
          code: 'superseded',
          message: `superseded by build #${build.number}`,
        });
      }
    }
    this.notify();
    this.events.queued?.(build);
    return build;
  }

  async cancel(buildId: number, by: string, reason?: string): Promise<Build> {
    const build = await this.mustGet(buildId);
    const why = { code: 'cancelled' as const, message: reason ?? `cancelled by ${by}` };
    if (build.status === 'queued') {
      const cancelled = await setBuildStatus(this.db, buildId, ['queued'], 'cancelled', { reason: why });
      if (cancelled) {
        this.events.finished?.(cancelled);
        return cancelled;
      }
    }
    if (!(await requestCancel(this.db, buildId, why))) {
      const now = await this.mustGet(buildId);
      if (isTerminalStatus(now.status)) {
        throw new ControlError('conflict', `build #${now.number} already finished (${now.status})`);
      }
    }
    this.notify();
    return this.mustGet(buildId);
  }

  async decide(
    buildId: number,
    decision: 'approve' | 'reject',
    by: string,
    comment?: string,
  ): Promise<Build> {
    const text = comment?.trim() ?? '';
    if (text.length > MAX_COMMENT || /\p{Cc}/u.test(text)) {
      throw new ControlError(
        'invalid',
        `the comment must be one line of at most ${MAX_COMMENT} characters, without control characters`,
      );
    }
    const build = await this.mustGet(buildId);
    if (build.status !== 'waiting') {
      throw new ControlError(
        'conflict',
        `build #${build.number} is not waiting for approval (it is ${build.status})`,
      );
    }
    const stage = await decideApproval(
      this.db,
      buildId,
      decision === 'approve' ? 'approved' : 'rejected',
      by,
      text === '' ? null : text,
    );
    if (stage === undefined) {
      const last = (await approvalsOf(this.db, [buildId])).get(buildId)?.at(-1);
      throw new ControlError(
        'conflict',
        last && last.decision !== 'waiting'
          ? `build #${build.number}: stage ${last.stage} was already ${last.decision} by ${last.by ?? 'someone'}`
          : `build #${build.number} is not waiting for approval`,
      );
    }
    this.notify();
    return this.mustGet(buildId);
  }

  async rerun(buildId: number, by: string, options: { failedOnly?: boolean } = {}): Promise<Build> {
    const build = await this.mustGet(buildId);
    if (options.failedOnly) {
      if (!isTerminalStatus(build.status))
        throw new ControlError(
          'conflict',
          `build #${build.number} is ${build.status}: only a finished build's failed steps can be re-run`,
        );
      if (build.status === 'success')
        throw new ControlError('conflict', `build #${build.number} succeeded: nothing failed to re-run`);
      // Without a commit the checkout would take the branch's newest: not the same build.
      if (build.commitSha === null)
        throw new ControlError(
          'conflict',
          `build #${build.number} never checked out a commit: re-run it whole instead`,
        );
    }
    const project = await getProject(this.db, build.projectId);
    if (!project) throw new ControlError('not_found', `the project of build ${buildId} no longer exists`);
    return this.trigger(project, {
      branch: build.branch,
      ...(build.commitSha ? { commit: build.commitSha } : {}),
      ...(build.commitSha && build.commitMessage ? { commitMessage: build.commitMessage } : {}),
      ...(build.commitSha && build.commitAuthor ? { commitAuthor: build.commitAuthor } : {}),
      ...(build.pullRequest !== null ? { pullRequest: build.pullRequest } : {}),
      ...(build.tag ? { tag: build.tag } : {}),
      event: build.event,
      trigger: 'rerun',
      triggeredBy: by,
      rerunOf: build.id,
      ...(options.failedOnly ? { rerunFailed: true } : {}),
    });
  }

  private async mustGet(buildId: number): Promise<Build> {
    const build = await getBuild(this.db, buildId);
    if (!build) throw new ControlError('not_found', `build ${buildId} does not exist`);
    return build;
  }
}
