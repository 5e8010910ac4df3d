import { useState, type FormEvent } from 'react';
import { hasRole } from '../../../../src/contract/roles.js';
import type { Schedule } from '../../../../src/contract/schedules.js';
import { useApi, useSession } from '../../api/session';
import { Empty, ErrorNote } from '../../components/Feedback';
import { useAction, usePoll } from '../../lib/hooks';
import { formatTime } from '../../lib/format';
import { buildPath, Link } from '../../lib/router';

/** Reloads the list this often: a tick moves `next` and `last build` on. */
const POLL_MS = 15_000;

/**
 * A project's cron schedules: what each builds and when it next does, its last build; members
 * add, switch on and off, and remove them. A bad expression comes back from the server with
 * the field and column it stumbled on.
 */
export function Schedules({ slug }: { slug: string }) {
  const api = useApi();
  const { me } = useSession();
  const canChange = hasRole(me.role, 'member');
  const list = usePoll((signal) => api.listSchedules(slug, signal), `schedules:${slug}`, POLL_MS);
  const change = useAction();
  const [adding, setAdding] = useState(false);

  const act = (action: () => Promise<unknown>) => void change.run(action).then((ok) => ok && list.reload());

  return (
    <section className="card schedules" aria-label="Schedules">
      <div className="page-head">
        <h2>Schedules</h2>
        {canChange && (
          <button type="button" aria-expanded={adding} onClick={() => setAdding((a) => !a)}>
            Add schedule
          </button>
        )}
      </div>
      {adding && (
        <AddSchedule
          slug={slug}
          onAdded={() => {
            setAdding(false);
            list.reload();
          }}
        />
      )}
      <ErrorNote error={list.error ?? change.error} />
      {list.data !== undefined && list.data.length === 0 && <Empty>No schedules.</Empty>}
      {list.data !== undefined && list.data.length > 0 && (
        <ul className="rows" aria-label="Schedules of this project">
          {list.data.map((s) => (
            <li key={s.id} className="row" data-testid={`schedule-${s.id}`}>
              <span>
                <strong>{s.name ?? `#${s.id}`}</strong> <code>{s.cron}</code>{' '}
                <span className="muted">
                  ({s.timezone}) on {s.branch}
                </span>
              </span>
              <span className="muted">{describeNext(s)}</span>
              <span>
                {s.lastBuild === null ? (
                  <span className="muted">no build yet</span>
                ) : (
                  <Link to={buildPath(slug, s.lastBuild.number)}>
                    last #{s.lastBuild.number} {s.lastBuild.status}
                  </Link>
                )}
              </span>
              {canChange && (
                <span className="actions">
                  <button
                    type="button"
                    disabled={change.busy}
                    onClick={() => act(() => api.updateSchedule(slug, s.id, { enabled: !s.enabled }))}
                  >
                    {s.enabled ? 'Disable' : 'Enable'}
                  </button>
                  <button
                    type="button"
                    className="danger"
                    disabled={change.busy}
                    onClick={() => act(() => api.deleteSchedule(slug, s.id))}
                  >
                    Remove
                  </button>
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function describeNext(schedule: Schedule): string {
  if (!schedule.enabled) return 'disabled';
  return schedule.nextRunAt === null ? 'no next tick' : `next ${formatTime(schedule.nextRunAt)}`;
}

function AddSchedule({ slug, onAdded }: { slug: string; onAdded: () => void }) {
  const api = useApi();
  const [cron, setCron] = useState('0 3 * * *');
  const [timezone, setTimezone] = useState(Intl.DateTimeFormat().resolvedOptions().timeZone);
  const [branch, setBranch] = useState('main');
  const [name, setName] = useState('');
  const add = useAction();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const ok = await add.run(() =>
      api.createSchedule(slug, {
        cron: cron.trim(),
        timezone: timezone.trim(),
        branch: branch.trim(),
        ...(name.trim() !== '' ? { name: name.trim() } : {}),
      }),
    );
    if (ok) onAdded();
  };

  return (
    <form className="form inline-form" onSubmit={(e) => void submit(e)} aria-label="Add a schedule">
      <div className="field">
        <label htmlFor="schedule-cron">Cron (minute hour day month weekday, or @daily)</label>
        <input
          id="schedule-cron"
          value={cron}
          required
          spellCheck={false}
          onChange={(e) => setCron(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor="schedule-timezone">Time zone</label>
        <input
          id="schedule-timezone"
          value={timezone}
          required
          spellCheck={false}
          onChange={(e) => setTimezone(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor="schedule-branch">Branch</label>
        <input
          id="schedule-branch"
          value={branch}
          required
          spellCheck={false}
          onChange={(e) => setBranch(e.target.value)}
        />
      </div>
      <div className="field">
        <label htmlFor="schedule-name">Name (optional)</label>
        <input id="schedule-name" value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <ErrorNote error={add.error} />
      <button type="submit" className="primary" disabled={add.busy}>
        {add.busy ? 'Adding…' : 'Add'}
      </button>
    </form>
  );
}
