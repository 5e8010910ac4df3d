import type { Build } from '../api/types';
import { useApi } from '../api/session';
import { BuildActions } from '../components/BuildActions';
import { Empty, ErrorNote, Loading } from '../components/Feedback';
import { StatusBadge } from '../components/Status';
import { elapsed, formatAgo, formatDuration, waitingText } from '../lib/format';
import { useNow, usePoll } from '../lib/hooks';
import { buildPath, Link } from '../lib/router';
import { useTitle } from '../lib/title';

const POLL_MS = 2000;

function BuildCell({ build }: { build: Build }) {
  return (
    <Link to={buildPath(build.project, build.number)} className="build-link">
      <span className="slug">{build.project}</span> <span className="num">#{build.number}</span>
    </Link>
  );
}

/**
 * Builds holding a running slot across every project, then the ones that wait: queued builds
 * and builds waiting for approval (which hold no slot), each with what it waits for.
 */
export function QueuePage() {
  useTitle('Queue');
  const api = useApi();
  const queue = usePoll((signal) => api.queue(signal), 'queue', POLL_MS);
  const now = useNow(true);
  const data = queue.data;

  return (
    <section>
      <div className="page-head">
        <h1>Queue</h1>
        {data !== undefined && (
          <p className="muted">
            {data.running.length} running of at most {data.limits.global} · {data.queued.length} waiting
          </p>
        )}
      </div>
      <ErrorNote error={queue.error} />
      {data === undefined ? (
        queue.error === undefined && <Loading what="the queue" />
      ) : (
        <>
          <h2>Running</h2>
          {data.running.length === 0 ? (
            <Empty>Nothing is running.</Empty>
          ) : (
            <ul className="rows queue" aria-label="Running builds">
              {data.running.map((build) => {
                const took = elapsed(build, now);
                return (
                  <li key={build.id} className="row">
                    <BuildCell build={build} />
                    <StatusBadge status={build.status} />
                    <span className="branch">{build.branch}</span>
                    <span className="duration">{took !== null ? formatDuration(took) : '—'}</span>
                    <BuildActions build={build} onChanged={queue.reload} />
                  </li>
                );
              })}
            </ul>
          )}
          <h2>Waiting</h2>
          {data.queued.length === 0 ? (
            <Empty>No build is waiting.</Empty>
          ) : (
            <ol className="rows queue" aria-label="Queued builds">
              {data.queued.map((entry) => (
                <li key={entry.id} className="row" data-waiting-for={entry.waitingFor ?? 'none'}>
                  <BuildCell build={entry} />
                  {entry.status === 'waiting' && <StatusBadge status={entry.status} />}
                  <span className="branch">{entry.branch}</span>
                  <span className="waiting">{waitingText(entry, data.limits.global)}</span>
                  <span className="muted when">queued {formatAgo(entry.createdAt, now)}</span>
                  <BuildActions build={entry} onChanged={queue.reload} />
                </li>
              ))}
            </ol>
          )}
        </>
      )}
    </section>
  );
}
