import type { Status } from '../api/types';

const ICONS: Record<Status, string> = {
  queued: '○',
  pending: '◌',
  running: '●',
  waiting: '❚❚',
  success: '✓',
  failure: '✕',
  error: '!',
  cancelled: '⊘',
  skipped: '↷',
  lost: '?',
};

const LABELS: Record<Status, string> = {
  queued: 'queued',
  pending: 'starting',
  running: 'running',
  waiting: 'waiting for approval',
  success: 'success',
  failure: 'failed',
  error: 'error',
  cancelled: 'cancelled',
  skipped: 'skipped',
  lost: 'lost',
};

export function statusLabel(status: Status): string {
  return LABELS[status];
}

/** A status as icon plus words (never colour alone), coloured by the theme. */
export function StatusBadge({ status, compact = false }: { status: Status; compact?: boolean }) {
  return (
    <span
      className={`status status-${status}`}
      data-status={status}
      title={compact ? LABELS[status] : undefined}
    >
      <span className="status-icon" aria-hidden="true">
        {ICONS[status]}
      </span>
      {compact ? <span className="visually-hidden">{LABELS[status]}</span> : <span>{LABELS[status]}</span>}
    </span>
  );
}

export function StatusIcon({ status }: { status: Status }) {
  return <StatusBadge status={status} compact />;
}
