import type { FinalStatus } from '../pipeline/types.js';

/**
 * The status of a group (a stage from its steps, a build from its stages): the worst
 * outcome among the members that count (`allow_failure` steps do not); `skipped` when every
 * member was skipped. `cancelled` wins only when the whole build was
 * cancelled; a sibling cancelled by fail-fast is not the cause of a failure.
 */
export function aggregateStatus(
  counted: readonly FinalStatus[],
  all: readonly FinalStatus[],
  buildCancelled: boolean,
): FinalStatus {
  if (buildCancelled) return 'cancelled';
  if (counted.includes('error')) return 'error';
  if (counted.includes('failure')) return 'failure';
  if (all.length > 0 && all.every((s) => s === 'skipped')) return 'skipped';
  return 'success';
}
