import { useState, type FormEvent } from 'react';
import type { Build, BuildDetail } from '../../api/types';
import { useApi } from '../../api/session';
import { ErrorNote } from '../../components/Feedback';
import { formatTime } from '../../lib/format';
import { useAction } from '../../lib/hooks';

type Approval = NonNullable<Build['approvals']>[number];

/**
 * The build's approvals: for a stage waiting on a person, approve to run it or reject it, with
 * an optional comment; for each decided one, who decided what, when and why.
 */
export function ApprovalPanel({ build, onChanged }: { build: BuildDetail; onChanged: () => void }) {
  const api = useApi();
  const action = useAction();
  const [comment, setComment] = useState('');
  const records = build.approvals ?? [];
  const decided = records.filter((a) => a.decision !== 'waiting');
  const stage = build.stages.find(
    (s) => s.status === 'waiting' && (s.approval?.decision ?? 'waiting') === 'waiting',
  );
  if (stage === undefined && decided.length === 0) return null;

  const decide = (verb: 'approve' | 'reject') =>
    void action.run(async () => {
      const text = comment.trim();
      await (verb === 'approve' ? api.approve(build.id, text) : api.reject(build.id, text));
      setComment('');
      onChanged();
    });
  const reject = (event: FormEvent) => {
    event.preventDefault();
    decide('reject');
  };

  return (
    <section className="card approval" aria-labelledby="approval-title">
      <h2 id="approval-title">
        {stage !== undefined ? <>Stage “{stage.name}” waits for approval</> : 'Approval'}
      </h2>
      {decided.length > 0 && (
        <ul className="approval-records" aria-label="Approval decisions">
          {decided.map((a) => (
            <ApprovalRecord key={a.stage} approval={a} waits={build.status === 'waiting'} />
          ))}
        </ul>
      )}
      {stage !== undefined && (
        <form className="approval-form" onSubmit={reject}>
          <label htmlFor="approval-comment" className="visually-hidden">
            Comment or reason (optional)
          </label>
          <input
            id="approval-comment"
            placeholder="Comment or reason (optional)"
            maxLength={1000}
            value={comment}
            onChange={(e) => setComment(e.target.value)}
          />
          <button type="button" className="primary" onClick={() => decide('approve')} disabled={action.busy}>
            Approve {stage.name}
          </button>
          <button type="submit" className="danger" disabled={action.busy}>
            Reject
          </button>
        </form>
      )}
      <ErrorNote error={action.error} />
    </section>
  );
}

/** `deploy approved by alice, 30 Nov 2026 12:00 — “looks good”`. */
function ApprovalRecord({ approval, waits }: { approval: Approval; waits: boolean }) {
  return (
    <li className="approval-record" data-decision={approval.decision}>
      Stage “{approval.stage}” <strong>{approval.decision}</strong> by{' '}
      <span className="approval-by">{approval.by ?? 'someone'}</span>
      {approval.at !== null && (
        <>
          , <time dateTime={approval.at}>{formatTime(approval.at)}</time>
        </>
      )}
      {approval.comment && (
        <>
          {' — '}
          <q className="approval-comment">{approval.comment}</q>
        </>
      )}
      {approval.resumedAt === null && waits && (
        <span className="muted"> · goes on at the next free running slot</span>
      )}
    </li>
  );
}
