import type { ReactNode } from 'react';
import type {
  CommitStatusDeliveryDto,
  EmailDeliveryDto,
} from '../../../../src/contract/notifications-api.js';
import type { BuildDetail } from '../../api/types';
import { useApi } from '../../api/session';
import { isFinal } from '../../components/BuildActions';
import { ErrorNote } from '../../components/Feedback';
import { formatTime } from '../../lib/format';
import { usePoll } from '../../lib/hooks';

const POLL_MS = 5000;
/** The last statuses and mails go out after the build ends, with retries: watch that long. */
const SETTLE_MS = 2 * 60_000;

interface Notifications {
  statuses: CommitStatusDeliveryDto[];
  emails: EmailDeliveryDto[];
}

/**
 * What Slipway told the outside world about the build: each commit status posted to the forge
 * and each e-mail, with its outcome and, for a failure, the forge's or SMTP server's answer
 * (the server words and redacts it). Hidden while there is neither.
 */
export function NotificationsPanel({ build, slug }: { build: BuildDetail; slug: string }) {
  const api = useApi();
  const settled = () =>
    isFinal(build) && build.finishedAt !== null && Date.now() - Date.parse(build.finishedAt) > SETTLE_MS;
  const list = usePoll<Notifications>(
    async (signal) => {
      const [statuses, emails] = await Promise.all([
        api.commitStatuses(slug, build.number, signal),
        api.emailDeliveries(slug, build.number, signal),
      ]);
      return { statuses, emails };
    },
    `notifications:${slug}:${build.number}`,
    () => (settled() ? undefined : POLL_MS),
  );
  const data = list.data;
  if (data === undefined) return list.error !== undefined ? <ErrorNote error={list.error} /> : null;
  if (data.statuses.length === 0 && data.emails.length === 0) return null;

  return (
    <section className="card notifications" aria-labelledby="notifications-title">
      <h2 id="notifications-title">Notifications</h2>
      {data.statuses.length > 0 && (
        <>
          <h3>Commit statuses</h3>
          <ul className="notification-list" aria-label="Commit statuses">
            {data.statuses.map((s, i) => (
              <Row
                key={`s${i}`}
                what={
                  <>
                    <code>{s.context}</code> {s.state}
                  </>
                }
                where={s.kind === 'check' ? `${s.forge} check run` : s.forge}
                outcome={s.outcome === 'delivered' ? 'sent' : 'failed'}
                attempts={s.attempts}
                message={s.message}
                at={new Date(s.at).toISOString()}
              />
            ))}
          </ul>
        </>
      )}
      {data.emails.length > 0 && (
        <>
          <h3>E-mails</h3>
          <ul className="notification-list" aria-label="E-mails">
            {data.emails.map((e, i) => (
              <Row
                key={`e${i}`}
                what={e.subject}
                where={e.recipients.length > 0 ? `to ${e.recipients.join(', ')}` : 'to nobody'}
                outcome={e.outcome}
                attempts={e.attempts}
                message={e.message}
                at={e.at}
              />
            ))}
          </ul>
        </>
      )}
      <ErrorNote error={list.error} />
    </section>
  );
}

function Row(props: {
  what: ReactNode;
  where: string;
  outcome: 'sent' | 'failed' | 'skipped';
  attempts: number;
  message: string | null;
  at: string;
}) {
  const { outcome, message } = props;
  return (
    <li className={`notification notification-${outcome}`} data-outcome={outcome}>
      <span>{props.what}</span> <span className="muted">{props.where}</span>{' '}
      <strong className="notification-outcome">{outcome}</strong>
      {props.attempts > 1 && <span className="muted"> after {props.attempts} attempts</span>}{' '}
      <time className="muted" dateTime={props.at}>
        {formatTime(props.at)}
      </time>
      {message !== null && outcome !== 'sent' && <div className="notification-answer">{message}</div>}
    </li>
  );
}
