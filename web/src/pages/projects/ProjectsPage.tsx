import type { Project } from '../../api/types';
import { isAdmin, useApi, useSession } from '../../api/session';
import { Empty, ErrorNote, Loading } from '../../components/Feedback';
import { StatusBadge } from '../../components/Status';
import { elapsed, formatAgo, formatDuration } from '../../lib/format';
import { usePoll, useNow } from '../../lib/hooks';
import { buildPath, Link, projectPath } from '../../lib/router';
import { useTitle } from '../../lib/title';

const POLL_MS = 3000;

function LastBuild({ project, now }: { project: Project; now: number }) {
  const build = project.lastBuild;
  if (build === undefined || build === null) return <span className="muted">no builds yet</span>;
  const took = elapsed(build, now);
  return (
    <>
      <Link to={buildPath(project.slug, build.number)} className="build-link">
        <StatusBadge status={build.status} /> <span className="num">#{build.number}</span>
      </Link>
      <span className="branch" title="branch">
        {build.branch}
      </span>
      <span className="duration" title="duration">
        {took !== null ? formatDuration(took) : '—'}
      </span>
      <span className="muted when">{formatAgo(build.createdAt, now)}</span>
    </>
  );
}

/** Every project with its last build (status, branch, duration), refreshed while open. */
export function ProjectsPage() {
  useTitle('Projects');
  const api = useApi();
  const { me } = useSession();
  const projects = usePoll((signal) => api.listProjects(undefined, signal), 'projects', POLL_MS);
  const items = projects.data?.items;
  const now = useNow(items?.some((p) => p.lastBuild?.finishedAt === null) ?? false);

  return (
    <section>
      <div className="page-head">
        <h1>Projects</h1>
        {isAdmin(me) && (
          <Link to="/projects/new" className="button primary">
            New project
          </Link>
        )}
      </div>
      <ErrorNote error={projects.error} />
      {items === undefined ? (
        projects.error === undefined && <Loading what="projects" />
      ) : items.length === 0 ? (
        <Empty>No projects yet.{isAdmin(me) ? ' Create one to start building.' : ''}</Empty>
      ) : (
        <ul className="rows projects" aria-label="Projects">
          {items.map((project) => (
            <li key={project.id} className="row">
              <div className="row-main">
                <Link to={projectPath(project.slug)} className="slug">
                  {project.slug}
                </Link>
                <span className="muted repo">{project.repoUrl}</span>
              </div>
              <div className="row-last">
                <LastBuild project={project} now={now} />
              </div>
            </li>
          ))}
        </ul>
      )}
      {projects.data !== undefined && projects.data.nextCursor !== null && (
        <p className="muted">Showing the first {items?.length} projects.</p>
      )}
    </section>
  );
}
