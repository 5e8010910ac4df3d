import type { Approval, Build, Queue } from '../../contract/index.js';
import type { SlipwayClient } from './api-client.js';
import { describeWaiting } from './format.js';

/** The API client calls `untilApplied` needs. */
type Reader = Pick<SlipwayClient, 'getBuild' | 'queue'>;

/** How long `slipway approve` waits for the server to act on a decision before it reports. */
const APPLY_WAIT_MS = 15_000;
const POLL_MS = 250;

/**
 * The approval a decision was just recorded on: the last decided one of the build (a build
 * has at most one stage waiting at a time, and it is decided before any later one opens).
 */
export function decidedApproval(build: Build): Approval | undefined {
  return build.approvals?.filter((a) => a.decision !== 'waiting').at(-1);
}

export interface Applied {
  build: Build;
  /** The build's queue entry when it still waits for a running slot to go on. */
  waiting?: { text: string };
}

/**
 * Waits until the server has acted on the decision on `stage`: the build went on (its
 * approval has `resumedAt`) or it is over. A build that waits for a free running slot may
 * wait long: after `waitMs` the answer says so, with why (from the queue).
 */
export async function untilApplied(
  api: Reader,
  decided: Build,
  stage: string | undefined,
  waitMs = APPLY_WAIT_MS,
): Promise<Applied> {
  const deadline = Date.now() + waitMs;
  let build: Build = decided;
  for (;;) {
    const record = build.approvals?.find((a) => a.stage === stage);
    if (build.status !== 'waiting' || record === undefined || record.resumedAt !== null) return { build };
    if (Date.now() >= deadline) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    build = await api.getBuild(decided.id);
  }
  const queue: Queue = await api.queue();
  const entry = queue.queued.find((q) => q.id === build.id);
  return {
    build,
    waiting: { text: entry ? describeWaiting(entry.waitingFor, entry, queue) : 'no running slot free yet' },
  };
}

/**
 * What `slipway approve` prints: the recorded decision, then the build's state after it.
 *   acme/web #42: deploy approved by alice — "looks good"
 *   acme/web #42 running
 */
export function approvalReport({ build, waiting }: Applied, stage: string | undefined): string {
  const name = `${build.project} #${build.number}`;
  const record = build.approvals?.find((a) => a.stage === stage) ?? decidedApproval(build);
  const decision = record
    ? `${name}: ${record.stage} ${record.decision} by ${record.by ?? 'someone'}${record.comment ? ` — "${record.comment}"` : ''}\n`
    : '';
  if (waiting) return `${decision}${name} waiting: goes on at the next free running slot (${waiting.text})\n`;
  const reason = build.reason && build.status !== 'success' ? `: ${build.reason.message}` : '';
  return `${decision}${name} ${build.status}${reason}\n`;
}
