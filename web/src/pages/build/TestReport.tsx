import type { BuildDetail } from '../../api/types';
import type { BuildTests, TestCaseDto } from '../../../../src/contract/tests.js';
import { testLabel } from '../../../../src/contract/tests-api.js';
import { useApi } from '../../api/session';
import { isFinal } from '../../components/BuildActions';
import { formatDuration } from '../../lib/format';
import { usePoll } from '../../lib/hooks';

/**
 * The build's test reports (`reports:` of its steps): totals, files that could not be read,
 * and each failed, errored or flaky test with its message, its output folded. Shown only when
 * a step had reports; read again once the build is over (reports are stored after each attempt).
 */
export function TestReport({ build }: { build: BuildDetail }) {
  const api = useApi();
  const final = isFinal(build);
  const report = usePoll((signal) => api.buildTests(build.id, signal), `tests:${build.id}:${final}`);
  const data = report.data;
  if (data === undefined || data === null || data.steps.length === 0) return null;
  const problems = data.steps.flatMap((s) => s.problems.map((p) => `${s.step}: ${p}`));
  return (
    <section className="tests" aria-labelledby="tests-title">
      <h2 id="tests-title">Tests</h2>
      <Totals totals={data.totals} />
      {problems.length > 0 && (
        <ul className="test-problems">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
      {data.failed.length > 0 && (
        <ul className="test-cases">
          {data.failed.map((c) => (
            <TestCase key={`${c.step}/${c.key}`} test={c} />
          ))}
        </ul>
      )}
      {data.more && (
        <p className="muted">More failed tests than shown here: `slipway tests` lists them all.</p>
      )}
    </section>
  );
}

function Totals({ totals: t }: { totals: BuildTests['totals'] }) {
  return (
    <p className="test-totals">
      <span>{t.tests} tests</span>
      <span className={t.failures > 0 ? 'test-bad' : undefined}>{t.failures} failed</span>
      {t.errors > 0 && <span className="test-bad">{t.errors} errors</span>}
      {t.skipped > 0 && <span>{t.skipped} skipped</span>}
      {t.flaky > 0 && <span className="test-flaky">{t.flaky} flaky</span>}
      <span className="muted">{formatDuration(t.timeMs)}</span>
    </p>
  );
}

function TestCase({ test }: { test: TestCaseDto }) {
  const mark = test.flaky ? 'flaky' : test.status === 'error' ? 'error' : 'failed';
  const head = (
    <>
      <span className={`test-mark test-mark-${mark}`}>{mark}</span>{' '}
      <span className="test-name">{testLabel(test)}</span> <span className="muted">{test.step}</span>
      {test.message !== null && <span className="test-message">{test.message}</span>}
    </>
  );
  return (
    <li className="test-case">
      {test.output === null ? (
        <div className="test-head">{head}</div>
      ) : (
        <details>
          <summary className="test-head">{head}</summary>
          <pre className="test-output">{test.output}</pre>
        </details>
      )}
    </li>
  );
}
