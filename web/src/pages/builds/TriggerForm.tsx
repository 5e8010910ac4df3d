import { useState, type FormEvent } from 'react';
import { useApi } from '../../api/session';
import { ErrorNote } from '../../components/Feedback';
import { useAction } from '../../lib/hooks';
import { buildPath, navigate } from '../../lib/router';

/** Starts a build of any branch, optionally pinned to a commit or tag; opens its page. */
export function TriggerForm({
  slug,
  defaultBranch,
  onClose,
}: {
  slug: string;
  defaultBranch: string;
  onClose: () => void;
}) {
  const api = useApi();
  const [branch, setBranch] = useState(defaultBranch);
  const [commit, setCommit] = useState('');
  const [tag, setTag] = useState('');
  const trigger = useAction();

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    let number: number | undefined;
    const ok = await trigger.run(async () => {
      const build = await api.trigger(slug, {
        branch: branch.trim(),
        ...(commit.trim() !== '' ? { commit: commit.trim() } : {}),
        ...(tag.trim() !== '' ? { tag: tag.trim() } : {}),
      });
      number = build.number;
    });
    if (ok && number !== undefined) navigate(buildPath(slug, number));
  };

  return (
    <form
      id="trigger-form"
      className="card form trigger"
      onSubmit={(e) => void submit(e)}
      aria-label="Trigger a build"
    >
      <h2>Trigger a build</h2>
      <div className="field-row">
        <div className="field">
          <label htmlFor="trigger-branch">Branch</label>
          <input
            id="trigger-branch"
            value={branch}
            required
            spellCheck={false}
            onChange={(e) => setBranch(e.target.value)}
            autoFocus
          />
        </div>
        <div className="field">
          <label htmlFor="trigger-commit">Commit (optional)</label>
          <input
            id="trigger-commit"
            value={commit}
            spellCheck={false}
            placeholder="head of the branch"
            onChange={(e) => setCommit(e.target.value)}
          />
        </div>
        <div className="field">
          <label htmlFor="trigger-tag">Tag (optional)</label>
          <input id="trigger-tag" value={tag} spellCheck={false} onChange={(e) => setTag(e.target.value)} />
        </div>
      </div>
      <ErrorNote error={trigger.error} />
      <div className="actions">
        <button type="submit" className="primary" disabled={trigger.busy}>
          {trigger.busy ? 'Starting…' : 'Start build'}
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </form>
  );
}
