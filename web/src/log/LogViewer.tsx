import { useMemo, useState } from 'react';
import type { BuildDetail } from '../api/types';
import { useApi } from '../api/session';
import { ErrorNote } from '../components/Feedback';
import { saveBlob } from '../lib/download';
import { isFinal } from '../components/BuildActions';
import { useAction } from '../lib/hooks';
import { navigate, useLocation, withQuery } from '../lib/router';
import { LogView, splitStepKey, stepLabel, type LogBuffer } from './buffer';
import { LogLines } from './LogLines';
import { LogSearchBox } from './LogSearchBox';
import { firstErrorRow, LogSearch } from './search';
import type { StreamState } from './stream';

const STATE_TEXT: Record<StreamState, string> = {
  loading: 'loading…',
  live: 'live',
  complete: 'complete',
  reconnecting: 'reconnecting…',
  failed: 'connection lost, retrying…',
};

type Focus = { kind: 'line'; number: number; id: number } | { kind: 'match'; index: number; id: number };
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function lineFromHash(hash: string): number | null {
  const m = /^#L(\d+)$/.exec(hash);
  return m === null ? null : Number(m[1]);
}

interface Props {
  build: BuildDetail;
  buffer: LogBuffer;
  version: number;
  state: StreamState;
  error: unknown;
  /** `stage/step` shown alone, or null for every step. */
  stepKey: string | null;
}

/**
 * The log of a build: every step interleaved or one step, followed live, searchable, with
 * permalinks (`#L120`), a jump to the first error and the raw text for download.
 */
export function LogViewer({ build, buffer, version, state, error, stepKey }: Props) {
  const api = useApi();
  const { pathname, search, hash } = useLocation();
  const stepIndex = stepKey === null ? null : (buffer.stepIndex(stepKey) ?? -1);
  const view = useMemo(() => new LogView(buffer, stepIndex), [buffer, stepIndex]);
  const selectedNumber = lineFromHash(hash);
  // A finished build's log has nothing more to follow: it opens at the top.
  const [follow, setFollow] = useState(selectedNumber === null && !isFinal(build));
  // One that finishes while watched keeps following until its last line is in.
  const over = isFinal(build) && state === 'complete';
  const following = follow && !over;
  const [needle, setNeedle] = useState('');
  const [current, setCurrent] = useState(0);
  const [note, setNote] = useState<string | null>(null);
  // What to bring into view: a line by number (permalink, first error) or a search hit. Set by
  // handlers; resolved to a row here on every render, since the row may still be streaming in.
  const [focus, setFocus] = useState<Focus | null>(() =>
    selectedNumber === null ? null : { kind: 'line', number: selectedNumber, id: 0 },
  );
  const download = useAction();
  // A permalink followed later (clicked, typed, back/forward) is brought into view as well.
  const [seenHash, setSeenHash] = useState(hash);
  if (hash !== seenHash) {
    setSeenHash(hash);
    if (selectedNumber !== null) {
      setFollow(false);
      setFocus({ kind: 'line', number: selectedNumber, id: (focus?.id ?? 0) + 1 });
    }
  }

  const finder = useMemo(() => new LogSearch(view, needle), [view, needle]);
  const matches = finder.update();
  const matchCount = matches.length;
  const currentIndex = Math.min(current, Math.max(0, matchCount - 1));
  const currentRow = matchCount > 0 ? (matches[currentIndex] ?? null) : null;

  const target =
    focus === null
      ? null
      : {
          id: focus.id,
          row: focus.kind === 'line' ? view.rowOf(focus.number) : (matches[focus.index] ?? -1),
        };

  const show = (next: DistributiveOmit<Focus, 'id'>) => {
    setFollow(false);
    setFocus({ ...next, id: (focus?.id ?? 0) + 1 });
  };

  const goToMatch = (index: number) => {
    if (matchCount === 0) return;
    const wrapped = ((index % matchCount) + matchCount) % matchCount;
    setCurrent(wrapped);
    show({ kind: 'match', index: wrapped });
  };

  const find = (text: string) => {
    setNeedle(text.toLowerCase());
    setCurrent(0);
    setNote(null);
    if (text !== '') show({ kind: 'match', index: 0 });
  };

  const firstError = () => {
    const row = firstErrorRow(view, culprits(build));
    if (row < 0) {
      setNote('No error lines (stderr, or "error"/"fail") in this log.');
      return;
    }
    setNote(null);
    const number = view.numberOf(view.line(row));
    navigate(`#L${number}`, { replace: true });
    show({ kind: 'line', number });
  };

  const step = stepKey === null ? null : splitStepKey(stepKey);
  // The server's own lines have no step route.
  const raw = step !== null && step.stage !== '' ? step : null;
  const canDownload = stepKey === null || raw !== null;
  const downloadRaw = () => {
    const base = `${build.project.replace('/', '_')}-${build.number}`;
    if (stepKey === null) {
      void download.run(async () => saveBlob(await api.buildLog(build.id), `${base}.log`));
      return;
    }
    if (raw === null) return;
    void download.run(async () =>
      saveBlob(await api.stepLog(build.id, raw.stage, raw.step), `${base}-${raw.stage}-${raw.step}.log`),
    );
  };

  const steps = build.stages.flatMap((s) => s.steps.map((t) => `${s.name}/${t.name}`));
  // Allowed failures say so in the step list too: they did not fail the build.
  const allowed = new Set(
    build.stages.flatMap((s) =>
      s.steps.filter((t) => t.allowFailure && t.status === 'failure').map((t) => `${s.name}/${t.name}`),
    ),
  );
  for (const key of buffer.steps) if (!steps.includes(key)) steps.push(key);

  return (
    <section className="log-viewer" aria-labelledby="log-title">
      <div className="log-toolbar">
        <h2 id="log-title">Log</h2>
        <label className="visually-hidden" htmlFor="log-step">
          Show the log of
        </label>
        <select
          id="log-step"
          value={stepKey ?? ''}
          onChange={(e) =>
            navigate(
              withQuery(pathname, { ...Object.fromEntries(search), step: e.target.value || undefined }),
            )
          }
        >
          <option value="">All steps</option>
          {steps.map((key) => (
            <option key={key} value={key}>
              {allowed.has(key) ? `${stepLabel(key)} (failure, allowed)` : stepLabel(key)}
            </option>
          ))}
        </select>
        <span className={`log-state state-${state}`} aria-live="polite">
          {STATE_TEXT[state]} · {view.count.toLocaleString()} lines
        </span>
        <LogSearchBox
          onSearch={find}
          matchCount={matchCount}
          current={matchCount === 0 ? 0 : currentIndex + 1}
          onNext={() => goToMatch(currentIndex + 1)}
          onPrevious={() => goToMatch(currentIndex - 1)}
        />
        <div className="log-actions">
          <button type="button" onClick={firstError}>
            First error
          </button>
          <button
            type="button"
            onClick={downloadRaw}
            disabled={!canDownload || download.busy}
            title={
              !canDownload
                ? "The server's own notes have no raw log of their own: pick All steps"
                : stepKey === null
                  ? 'The whole build, each line prefixed with [stage/step]'
                  : undefined
            }
          >
            Download raw
          </button>
          <button
            type="button"
            aria-pressed={following}
            title={over ? 'The build is over: this goes to its last line' : undefined}
            onClick={() => {
              // Nothing more comes: the button only takes one to where following would be.
              if (over) {
                if (view.count > 0) show({ kind: 'line', number: view.numberOf(view.line(view.count - 1)) });
              } else setFollow(!following);
            }}
          >
            {following ? 'Following' : 'Follow'}
          </button>
        </div>
      </div>
      {note !== null && (
        <p className="note muted" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={error ?? download.error} />
      {stepIndex === -1 ? (
        <p className="note muted">No output from {stepKey} yet.</p>
      ) : (
        <LogLines
          view={view}
          version={version}
          needle={needle}
          currentRow={currentRow}
          selectedNumber={selectedNumber}
          follow={following}
          onFollowChange={(next) => {
            if (!over) setFollow(next);
          }}
          target={target}
        />
      )}
    </section>
  );
}

/** The steps that failed the build, in plan order: failed or errored and not allowed to fail. */
function culprits(build: BuildDetail): string[] {
  return build.stages.flatMap((stage) =>
    stage.steps
      .filter((s) => (s.status === 'failure' || s.status === 'error') && !s.allowFailure)
      .map((s) => `${stage.name}/${s.name}`),
  );
}
