import { useState, type FormEvent } from 'react';
import { STATUSES } from '../../../../src/contract/status.js';
import type { Status } from '../../api/types';
import { statusLabel } from '../../components/Status';

/** Branch and status filters; the branch applies on Enter or leaving the field. */
export function BuildFilters({
  branch,
  status,
  onChange,
}: {
  branch: string;
  status: Status | undefined;
  onChange: (next: { branch?: string | undefined; status?: string | undefined }) => void;
}) {
  const [typed, setTyped] = useState(branch);
  const apply = (event?: FormEvent) => {
    event?.preventDefault();
    if (typed.trim() !== branch) onChange({ branch: typed.trim() || undefined });
  };
  return (
    <form className="filters" role="search" aria-label="Filter builds" onSubmit={apply}>
      <div className="field inline">
        <label htmlFor="filter-branch">Branch</label>
        <input
          id="filter-branch"
          type="search"
          value={typed}
          placeholder="any"
          spellCheck={false}
          onChange={(e) => setTyped(e.target.value)}
          onBlur={() => apply()}
        />
      </div>
      <div className="field inline">
        <label htmlFor="filter-status">Status</label>
        <select
          id="filter-status"
          value={status ?? ''}
          onChange={(e) => onChange({ status: e.target.value || undefined })}
        >
          <option value="">any</option>
          {STATUSES.map((s) => (
            <option key={s} value={s}>
              {statusLabel(s)}
            </option>
          ))}
        </select>
      </div>
    </form>
  );
}
