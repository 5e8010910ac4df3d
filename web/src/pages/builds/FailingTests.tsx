import { testLabel } from '../../../../src/contract/tests-api.js';
import { useApi } from '../../api/session';
import { usePoll } from '../../lib/hooks';
import { buildPath, Link } from '../../lib/router';

const POLL_MS = 30_000;

/**
 * The project's tests that failed or were flaky in its last builds (test reports), most
 * failures first: how often each failed of the builds it ran in, and the latest such build.
 * Shown only when there are some.
 */
export function FailingTests({ slug }: { slug: string }) {
  const api = useApi();
  const list = usePoll((signal) => api.projectTests(slug, signal), `tests:${slug}`, POLL_MS);
  const data = list.data;
  if (data === undefined || data === null || data.tests.length === 0) return null;
  return (
    <section className="card failing-tests" aria-label="Failing tests">
      <h2>Failing tests</h2>
      <p className="muted">Tests that failed or were flaky in the last {data.builds} builds.</p>
      <ul className="test-cases">
        {data.tests.map((t) => (
          <li key={t.key} className="test-case">
            <span className="test-name">{testLabel(t)}</span>{' '}
            <span>
              failed in {t.failures} of {t.runs} {t.runs === 1 ? 'build' : 'builds'}
            </span>
            {t.flaky > 0 && <span className="test-flaky"> · flaky in {t.flaky}</span>} ·{' '}
            <Link to={buildPath(slug, t.lastBuild)}>#{t.lastBuild}</Link>
          </li>
        ))}
      </ul>
    </section>
  );
}
