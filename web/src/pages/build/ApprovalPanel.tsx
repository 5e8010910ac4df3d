import { useState, type FormEvent } from 'react';
import type { BuildDetail } from '../../api/types';
import { useApi } from '../../api/session';
import { ErrorNote } from '../../components/Feedback';
import { useAction } from '../../lib/hooks';

/** For a stage waiting on a person: approve to run it, or reject with an optional reason. */
export function ApprovalPanel({ build, onChanged }: { build: BuildDetail; onChanged: () => void }) {
  const api = useApi();
  const action = useAction();
  const [message, setMessage] = useState('');
  const stage = build.stages.find((s) => s.status === 'waiting');
  if (stage === undefined) return null;

  const approve = () =>
    void action.run(async () => {
      await api.approve(build.id);
      onChanged();
    });
  const reject = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      await api.reject(build.id, message.trim());
      onChanged();
    });
  };

  return (
    <section className="card approval" aria-labelledby="approval-title">
      <h2 id="approval-title">Stage “{stage.name}” waits for approval</h2>
      <form className="approval-form" onSubmit={reject}>
        <button type="button" className="primary" onClick={approve} disabled={action.busy}>
          Approve {stage.name}
        </button>
        <label htmlFor="reject-message" className="visually-hidden">
          Reason for rejecting (optional)
        </label>
        <input
          id="reject-message"
          placeholder="Reason (optional)"
          value={message}
          onChange={(e) => setMessage(e.target.value)}
        />
        <button type="submit" className="danger" disabled={action.busy}>
          Reject
        </button>
      </form>
      <ErrorNote error={action.error} />
    </section>
  );
}
