import type { BuildDetail, Stage, Step } from '../../api/types';
import { isFinal } from '../../components/BuildActions';
import { StatusIcon, statusText } from '../../components/Status';
import { elapsed, formatDuration } from '../../lib/format';
import { useNow } from '../../lib/hooks';
import { Link, useLocation, withQuery } from '../../lib/router';

/**
 * Stages left to right (top to bottom on a phone), each with its parallel steps. A step is a
 * link that shows its log below; durations tick while something runs.
 */
export function StageGraph({ build, selected }: { build: BuildDetail; selected: string | null }) {
  const now = useNow(!isFinal(build));
  if (build.stages.length === 0) {
    return (
      <p className="note muted" data-testid="no-stages">
        {isFinal(build)
          ? `No stages: the build ended before its pipeline was compiled${build.reason !== null ? ` (${build.reason.code}: ${build.reason.message})` : ''}.`
          : 'No stages yet: the pipeline is read when the build starts.'}
      </p>
    );
  }
  return (
    <section aria-labelledby="stages-title">
      <h2 id="stages-title" className="visually-hidden">
        Stages
      </h2>
      <ol className="stages">
        {build.stages.map((stage) => (
          <StageCard key={stage.name} stage={stage} now={now} selected={selected} />
        ))}
      </ol>
    </section>
  );
}

function Took({ item, now }: { item: Stage | Step; now: number }) {
  const took = elapsed(item, now);
  return <span className="duration">{took !== null ? formatDuration(took) : ''}</span>;
}

function StageCard({ stage, now, selected }: { stage: Stage; now: number; selected: string | null }) {
  return (
    <li className={`stage stage-${stage.status}`} data-stage={stage.name} data-status={stage.status}>
      <div className="stage-head">
        <StatusIcon status={stage.status} />
        <span className="stage-name">{stage.name}</span>
        <Took item={stage} now={now} />
      </div>
      {stage.reason !== null && <p className="stage-reason muted">{stage.reason.message}</p>}
      <ul className="steps">
        {stage.steps.map((step) => (
          <StepItem key={step.name} stage={stage.name} step={step} now={now} selected={selected} />
        ))}
      </ul>
    </li>
  );
}

function StepItem({
  stage,
  step,
  now,
  selected,
}: {
  stage: string;
  step: Step;
  now: number;
  selected: string | null;
}) {
  const { pathname, search } = useLocation();
  const key = `${stage}/${step.name}`;
  const current = key === selected;
  const to = withQuery(pathname, { ...Object.fromEntries(search), step: current ? undefined : key });
  const allowed = step.allowFailure && step.status === 'failure';
  const timedOut = step.reason?.code === 'timeout';
  // A timeout kills the step (exit 143 and the like): what people need is that it timed out.
  const outcome = timedOut
    ? step.reason!.message
    : step.exitCode !== null && step.exitCode !== 0
      ? `exit ${step.exitCode}`
      : null;
  const attempts = attemptText(step);
  const reused = step.reusedFrom ? `reused from #${step.reusedFrom.number}` : null;
  const details = [
    statusText(step.status, allowed),
    reused,
    outcome,
    attempts,
    !timedOut ? (step.reason?.message ?? null) : null,
  ].filter((d) => d !== null);
  return (
    <li
      className={`step step-${step.status}${allowed ? ' step-allowed' : ''}`}
      data-step={key}
      data-status={step.status}
      data-allowed={allowed ? 'true' : undefined}
      data-reused={reused !== null ? 'true' : undefined}
    >
      <Link
        to={to}
        aria-current={current ? 'true' : undefined}
        title={details.join(' · ')}
        onClick={showLogSoon}
      >
        <StatusIcon status={step.status} allowed={allowed} />
        <span className="step-name">{step.name}</span>
        {allowed && <span className="step-note allowed">allowed</span>}
        {reused !== null && <span className="step-note reused">{reused}</span>}
        {outcome !== null && <span className={timedOut ? 'exit timeout' : 'exit'}>{outcome}</span>}
        {attempts !== null && <span className="step-note attempts">{attempts}</span>}
        <Took item={step} now={now} />
      </Link>
    </li>
  );
}

/**
 * "attempt 2 of 3" while a step that may retry runs, "2 of 3 attempts" once a retried step is
 * over; null otherwise.
 */
function attemptText(step: Step): string | null {
  const of = Math.max(step.maxAttempts, step.attempts);
  if (step.status === 'running' && of > 1) return `attempt ${Math.max(1, step.attempts)} of ${of}`;
  return step.attempts > 1 ? `${step.attempts} of ${of} attempts` : null;
}

/**
 * After a step is picked (the link changes `?step=`, and navigation scrolls to the top),
 * brings the log viewer, now showing that step, into view.
 */
function showLogSoon(): void {
  requestAnimationFrame(() => document.getElementById('log-title')?.scrollIntoView({ block: 'start' }));
}
