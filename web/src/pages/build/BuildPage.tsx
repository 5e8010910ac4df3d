import { useCallback } from 'react';
import type { BuildDetail } from '../../api/types';
import { useApi } from '../../api/session';
import { BuildActions, isFinal } from '../../components/BuildActions';
import { ErrorNote, Loading } from '../../components/Feedback';
import { StatusBadge } from '../../components/Status';
import { usePoll } from '../../lib/hooks';
import { Link, projectPath, useLocation } from '../../lib/router';
import { useTitle } from '../../lib/title';
import { buildTabTitle, useStatusFavicon } from '../../lib/tab-status';
import { CommitMessage } from '../../components/CommitInfo';
import { LogViewer } from '../../log/LogViewer';
import { useLogStream } from '../../log/stream';
import { ApprovalPanel } from './ApprovalPanel';
import { Artifacts } from './Artifacts';
import { BuildFacts } from './BuildFacts';
import { NotificationsPanel } from './NotificationsPanel';
import { Progress } from './Progress';
import { StageGraph } from './StageGraph';
import { TestReport } from './TestReport';

const POLL_MS = 2000;

/** One build: what it is, where it is (graph, progress), what it printed (log). */
export function BuildPage({ slug, number }: { slug: string; number: number }) {
  const api = useApi();
  // Stages change while the build runs: reload every 2 s, and at once when the log says so.
  const detail = usePoll<BuildDetail>(
    (signal) => api.getBuild(slug, number, signal),
    `build:${slug}:${number}`,
    (build) => (isFinal(build) ? undefined : POLL_MS),
  );
  // Its repository URL gives the links to the forge.
  const project = usePoll((signal) => api.getProject(slug, signal), `project:${slug}`);
  const status = detail.data?.status;
  useTitle(status === undefined ? `${slug} #${number}` : buildTabTitle(status, slug, number));
  useStatusFavicon(status);
  if (detail.data === undefined) {
    return detail.error !== undefined ? <ErrorNote error={detail.error} /> : <Loading what="the build" />;
  }
  return (
    <LoadedBuild build={detail.data} slug={slug} reload={detail.reload} repoUrl={project.data?.repoUrl} />
  );
}

function LoadedBuild({
  build,
  slug,
  reload,
  repoUrl,
}: {
  build: BuildDetail;
  slug: string;
  reload: () => void;
  repoUrl: string | undefined;
}) {
  const api = useApi();
  const { search } = useLocation();
  const stepKey = search.get('step');
  const onStatus = useCallback(() => reload(), [reload]);
  const log = useLogStream(api, build.id, onStatus);
  const final = isFinal(build);

  return (
    <article className="build-page">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/">Projects</Link> / <Link to={projectPath(slug)}>{slug}</Link> /
      </nav>
      <div className="page-head">
        <h1>
          Build #{build.number} <StatusBadge status={build.status} />
        </h1>
        <BuildActions build={build} onChanged={reload} openRerun />
      </div>
      {build.reason !== null && (
        <p className={`note ${final ? 'note-error' : 'note-warn'}`}>{build.reason.message}</p>
      )}
      {build.commitMessage != null && <CommitMessage message={build.commitMessage} />}
      <BuildFacts build={build} repoUrl={repoUrl} />
      {!final && build.status !== 'waiting' && <Progress build={build} />}
      <ApprovalPanel build={build} onChanged={reload} />
      <StageGraph build={build} selected={stepKey} />
      <TestReport build={build} />
      <Artifacts build={build} />
      <NotificationsPanel build={build} slug={slug} />
      <LogViewer
        key={stepKey ?? ''}
        build={build}
        buffer={log.buffer}
        version={log.version}
        state={log.state}
        error={log.error}
        stepKey={stepKey}
      />
    </article>
  );
}
