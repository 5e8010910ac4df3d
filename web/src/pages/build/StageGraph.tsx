import type { BuildDetail, Stage, Step } from '../../api/types';
import { isFinal } from '../../components/BuildActions';
import { StatusIcon, statusLabel } from '../../components/Status';
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
    return <p className="note muted">No stages yet: the pipeline is read when the build starts.</p>;
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
  const details = [
    statusLabel(step.status),
    step.exitCode !== null && step.exitCode !== 0 ? `exit ${step.exitCode}` : null,
    step.attempts > 1 ? `${step.attempts} attempts` : null,
    step.reason?.message ?? null,
  ].filter((d) => d !== null);
  return (
    <li className={`step step-${step.status}`} data-step={key} data-status={step.status}>
      <Link to={to} aria-current={current ? 'true' : undefined} title={details.join(' · ')}>
        <StatusIcon status={step.status} />
        <span className="step-name">{step.name}</span>
        {step.exitCode !== null && step.exitCode !== 0 && <span className="exit">exit {step.exitCode}</span>}
        <Took item={step} now={now} />
      </Link>
    </li>
  );
}
