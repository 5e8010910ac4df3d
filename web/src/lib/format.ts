import { formatDuration as format } from '../../../src/contract/duration.js';
import type { QueueEntry } from '../api/types';

/** `1h 02m`, `3m 07s`, `4.2s`, `350ms`: short and stable in width (the contract's `wide` spelling). */
export function formatDuration(ms: number): string {
  return format(ms, 'wide');
}

/** How long something took, or has taken so far when it is still going. */
export function elapsed(
  item: { startedAt: string | null; finishedAt: string | null; durationMs: number | null },
  now: number,
): number | null {
  if (item.durationMs !== null) return item.durationMs;
  if (item.startedAt === null) return null;
  const end = item.finishedAt !== null ? Date.parse(item.finishedAt) : now;
  return Math.max(0, end - Date.parse(item.startedAt));
}

/** `just now`, `5 min ago`, `3 h ago`, then the date. */
export function formatAgo(iso: string, now: number): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 45) return 'just now';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 24) return `${hours} h ago`;
  return new Date(iso).toLocaleDateString();
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString();
}

export function shortSha(commit: string | null): string {
  return commit === null ? '—' : commit.slice(0, 8);
}

export { formatBytes } from '../../../src/contract/bytes.js';

/** Why a queued build has not started (or a build waiting for approval not gone on), in words. */
export function waitingText(entry: QueueEntry, globalLimit: number): string {
  switch (entry.waitingFor) {
    case 'approval':
      return 'waits for a person to approve';
    case 'branch_lock':
      return `another build of ${entry.branch} holds the branch lock`;
    case 'project_limit':
      return "the project's limit of running builds is reached";
    case 'global_limit':
      return `the server's limit of ${globalLimit} running builds is reached`;
    case null:
      return entry.status === 'waiting' ? 'approved: goes on next' : 'starts next';
    default:
      return entry.waitingFor;
  }
}
