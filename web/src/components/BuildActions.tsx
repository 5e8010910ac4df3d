import { isTerminalStatus } from '../../../src/contract/status.js';
import type { Build } from '../api/types';
import { useApi } from '../api/session';
import { useAction } from '../lib/hooks';
import { buildPath, navigate } from '../lib/router';
import { ErrorNote } from './Feedback';

export function isFinal(build: Pick<Build, 'status'>): boolean {
  return isTerminalStatus(build.status);
}

/**
 * Cancel (while a build is not finished) and re-run (once it is), with "re-run failed" beside
 * it when the build did not succeed (the server's rule: it ended, not in success, with a
 * commit). Shown to every role: the server decides, and a viewer's 403 is explained next to
 * the buttons.
 */
export function BuildActions({
  build,
  onChanged,
  openRerun = false,
}: {
  build: Build;
  onChanged: () => void;
  /** Go to the new build's page after a re-run (the build page does; the list stays). */
  openRerun?: boolean;
}) {
  const api = useApi();
  const action = useAction();
  const label = `${build.project} #${build.number}`;

  const cancel = () =>
    void action.run(async () => {
      await api.cancel(build.id);
      onChanged();
    });
  const rerun = (failedOnly: boolean) =>
    void action.run(async () => {
      const next = await api.rerun(build.id, failedOnly);
      if (openRerun) navigate(buildPath(next.project, next.number));
      else onChanged();
    });

  return (
    <span className="build-actions">
      {isFinal(build) ? (
        <>
          <button
            type="button"
            onClick={() => rerun(false)}
            disabled={action.busy}
            aria-label={`Re-run ${label}`}
          >
            Re-run
          </button>
          {build.status !== 'success' && build.commit !== null && (
            <button
              type="button"
              onClick={() => rerun(true)}
              disabled={action.busy}
              aria-label={`Re-run failed steps of ${label}`}
              title="Run only the steps that did not succeed, what needs them and later stages; reuse the rest"
            >
              Re-run failed
            </button>
          )}
        </>
      ) : (
        <button
          type="button"
          className="danger"
          onClick={cancel}
          disabled={action.busy}
          aria-label={`Cancel ${label}`}
        >
          Cancel
        </button>
      )}
      <ErrorNote error={action.error} />
    </span>
  );
}
