import type { Build } from '../../api/types';
import { useApi } from '../../api/session';
import { formatDuration, waitingText } from '../../lib/format';
import { useNow, usePoll } from '../../lib/hooks';
import { estimate, workingTime } from './eta';

/**
 * How far a running build is, measured against the average duration of the project's recent
 * successful builds (`GET …/stats`): a bar and the time left. Without history, only the time
 * so far. Time spent waiting for approval counts on neither side (see `workingTime`).
 */
export function Progress({ build }: { build: Build }) {
  const api = useApi();
  const stats = usePoll((signal) => api.projectStats(build.project, signal), `stats:${build.project}`);
  const now = useNow(true);
  const average = stats.data?.averageDurationMs ?? null;
  const took = workingTime(build, now);

  if (took === null) {
    return (
      <div className="progress" role="status">
        <div className="bar indeterminate" aria-hidden="true">
          <span />
        </div>
        {build.status === 'queued' ? <QueuedReason build={build} /> : <p className="muted">Starting…</p>}
      </div>
    );
  }
  if (average === null || average <= 0) {
    return (
      <div className="progress" role="status">
        <div className="bar indeterminate" aria-hidden="true">
          <span />
        </div>
        <p className="muted">
          Running for {formatDuration(took)}; no earlier successful build to estimate from.
        </p>
      </div>
    );
  }
  const { fraction, leftMs: left } = estimate(took, average);
  const percent = Math.round(fraction * 100);
  return (
    <div className="progress">
      <div
        className="bar"
        role="progressbar"
        aria-label="Estimated progress"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        aria-valuetext={`${percent}%`}
      >
        <span style={{ width: `${fraction * 100}%` }} />
      </div>
      <p className="muted" data-testid="eta">
        {formatDuration(took)} so far ·{' '}
        {left > 0 ? `about ${formatDuration(left)} left` : `${formatDuration(-left)} longer than usual`}{' '}
        (average of the last {stats.data?.sampleSize} successful builds: {formatDuration(average)})
      </p>
    </div>
  );
}

/** Why a queued build has not started yet (branch lock, limits), from `GET /queue`. */
function QueuedReason({ build }: { build: Build }) {
  const api = useApi();
  const queue = usePoll((signal) => api.queue(signal), `queue-of:${build.id}`, 2000);
  const entry = queue.data?.queued.find((q) => q.id === build.id);
  return (
    <p className="muted" data-testid="queued-reason">
      Queued:{' '}
      {entry !== undefined && queue.data !== undefined
        ? waitingText(entry, queue.data.limits.global)
        : 'waiting to start'}
      .
    </p>
  );
}
