import type { Status } from '../api/types';

/** The icon of each status, beside its word (the build page's tab shows it too). */
export const ICONS: Record<Status, string> = {
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

/** The API's own status words (what the CLI prints too), so people can search for what they read. */
export function statusLabel(status: Status): string {
  return status;
}

/** Words for a status; a failure the pipeline allows (`allow_failure`) says so. */
export function statusText(status: Status, allowed = false): string {
  return allowed && status === 'failure' ? 'failure (allowed)' : statusLabel(status);
}

/**
 * A status as icon plus words (never colour alone), coloured by the theme. An allowed failure
 * is drawn apart (muted amber, `!`), since it did not fail anything.
 */
export function StatusBadge({
  status,
  compact = false,
  allowed = false,
}: {
  status: Status;
  compact?: boolean;
  allowed?: boolean;
}) {
  const isAllowed = allowed && status === 'failure';
  const text = statusText(status, isAllowed);
  return (
    <span
      className={`status status-${status}${isAllowed ? ' status-allowed' : ''}`}
      data-status={status}
      data-allowed={isAllowed ? 'true' : undefined}
      title={compact ? text : undefined}
    >
      <span className="status-icon" aria-hidden="true">
        {isAllowed ? '!' : ICONS[status]}
      </span>
      {compact ? <span className="visually-hidden">{text}</span> : <span>{text}</span>}
    </span>
  );
}

export function StatusIcon({ status, allowed = false }: { status: Status; allowed?: boolean }) {
  return <StatusBadge status={status} compact allowed={allowed} />;
}
