import type { BuildContext, FinalStatus, WhenPlan } from '../pipeline/types.js';
import { matchUserRegex } from '../pipeline/user-regex.js';
import type { Reason } from './types.js';

/** The build's outcome so far, as `when.status` sees it. */
export type StatusSoFar = 'success' | 'failure' | 'error';

/**
 * Decides whether a stage runs. Returns undefined when it runs, or why it is skipped.
 * Without `when.status` a stage runs only while everything so far succeeded. `failure` in
 * `when.status` also admits `error`: to a user writing a notify stage, an engine fault is a
 * failure too.
 */
export function whyStageSkipped(
  when: WhenPlan | undefined,
  ctx: Pick<BuildContext, 'branch' | 'event'>,
  statusSoFar: StatusSoFar,
): Reason | undefined {
  const admitted: readonly FinalStatus[] = when?.status ?? ['success'];
  const admits = admitted.includes(statusSoFar) || (statusSoFar === 'error' && admitted.includes('failure'));
  if (!admits) {
    return { code: 'earlier_failure', message: `skipped: an earlier stage ended in ${statusSoFar}` };
  }
  if (when?.branch !== undefined) {
    // RE2, never RegExp: `(a+)+` against a long branch held the event loop for a minute.
    const match = matchUserRegex(when.branch, ctx.branch);
    if (!match.ok) {
      return {
        code: 'when',
        message: `skipped: branch "${ctx.branch}" not matched against "${when.branch}": ${match.problem}`,
      };
    }
    if (!match.matched) {
      return { code: 'when', message: `skipped: branch "${ctx.branch}" does not match "${when.branch}"` };
    }
  }
  if (when?.event !== undefined && !when.event.includes(ctx.event)) {
    return { code: 'when', message: `skipped: event "${ctx.event}" is not one of ${when.event.join(', ')}` };
  }
  return undefined;
}
