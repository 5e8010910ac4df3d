/**
 * What the estimate reads of a build (a `Build` of the API fits): its times and its approval
 * records. Spelled out rather than imported, so this file has no imports and runs under Node
 * in the tests as it is.
 */
export interface Timed {
  startedAt: string | null;
  finishedAt: string | null;
  approvals?: readonly { requestedAt: string | null; resumedAt: string | null }[] | undefined;
}

/**
 * How long the build has been at work: the time since it started, less the time it waited
 * for a person to approve a stage and then for a running slot (from `requestedAt` to
 * `resumedAt`, or to now while it still waits). The project's average leaves the same time
 * out, so the two compare (an hour-long wait must not make a 2-minute build "late", nor a
 * past build's wait make this one look far from done).
 */
export function workingTime(build: Timed, now: number): number | null {
  if (build.startedAt === null) return null;
  const start = Date.parse(build.startedAt);
  const end = build.finishedAt !== null ? Date.parse(build.finishedAt) : now;
  let waited = 0;
  for (const approval of build.approvals ?? []) {
    if (approval.requestedAt === null) continue;
    const from = Math.max(Date.parse(approval.requestedAt), start);
    const to = Math.min(approval.resumedAt !== null ? Date.parse(approval.resumedAt) : end, end);
    waited += Math.max(0, to - from);
  }
  return Math.max(0, end - start - waited);
}

export interface Estimate {
  /** How far along, 0 to 0.99 (never "done" before it is). */
  fraction: number;
  /** Time left; negative when the build takes longer than usual. */
  leftMs: number;
}

/** Progress of a build that has worked `workedMs` against the project's average. */
export function estimate(workedMs: number, averageMs: number): Estimate {
  return { fraction: Math.min(workedMs / averageMs, 0.99), leftMs: averageMs - workedMs };
}
