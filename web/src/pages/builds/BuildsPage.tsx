import { useState } from 'react';
import { STATUSES } from '../../../../src/contract/status.js';
import type { Status } from '../../api/types';
import { isAdmin, useApi, useSession } from '../../api/session';
import { Empty, ErrorNote, Loading } from '../../components/Feedback';
import { usePoll } from '../../lib/hooks';
import { Link, navigate, projectPath, useLocation, withQuery } from '../../lib/router';
import { useTitle } from '../../lib/title';
import { BuildRows } from './BuildRows';
import { BadgePanel } from './BadgePanel';
import { BuildFilters } from './BuildFilters';
import { Schedules } from './Schedules';
import { FailingTests } from './FailingTests';
import { TriggerForm } from './TriggerForm';

const POLL_MS = 2000;
const PAGE_SIZE = 25;

function statusParam(value: string | null): Status | undefined {
  return STATUSES.find((s) => s === value);
}

/**
 * A project's builds, newest first, refreshed every 2 s (statuses change without a reload);
 * filters and the page cursor live in the URL so back/forward and links work.
 */
export function BuildsPage({ slug }: { slug: string }) {
  useTitle(slug);
  const api = useApi();
  const { me } = useSession();
  const { search } = useLocation();
  const branch = search.get('branch') ?? undefined;
  const status = statusParam(search.get('status'));
  const before = search.get('before') ?? undefined;
  const [triggering, setTriggering] = useState(false);

  const project = usePoll((signal) => api.getProject(slug, signal), `project:${slug}`);
  const builds = usePoll(
    (signal) => api.listBuilds(slug, { branch, status, before, limit: PAGE_SIZE }, signal),
    `builds:${slug}:${branch}:${status}:${before}`,
    POLL_MS,
  );

  const go = (params: {
    branch?: string | undefined;
    status?: string | undefined;
    before?: string | undefined;
  }) => navigate(withQuery(projectPath(slug), { branch, status, ...params }));

  return (
    <section>
      <div className="page-head">
        <div>
          <h1>{slug}</h1>
          {project.data !== undefined && <p className="muted repo">{project.data.repoUrl}</p>}
        </div>
        <div className="actions">
          <button
            type="button"
            className="primary"
            aria-expanded={triggering}
            aria-controls="trigger-form"
            onClick={() => setTriggering((t) => !t)}
          >
            Trigger build
          </button>
          {isAdmin(me) && (
            <Link to={`${projectPath(slug)}/settings`} className="button">
              Settings
            </Link>
          )}
        </div>
      </div>
      <ErrorNote error={project.error} />
      <BadgePanel slug={slug} />
      {triggering && (
        <TriggerForm
          slug={slug}
          defaultBranch={builds.data?.items[0]?.branch ?? 'main'}
          onClose={() => setTriggering(false)}
        />
      )}
      <BuildFilters
        key={branch ?? ''}
        branch={branch ?? ''}
        status={status}
        onChange={(next) => go({ ...next, before: undefined })}
      />
      <ErrorNote error={builds.error} />
      {builds.data === undefined ? (
        builds.error === undefined && <Loading what="builds" />
      ) : builds.data.items.length === 0 ? (
        <Empty>
          {branch !== undefined || status !== undefined ? 'No builds match these filters.' : 'No builds yet.'}
        </Empty>
      ) : (
        <BuildRows builds={builds.data.items} onChanged={builds.reload} repoUrl={project.data?.repoUrl} />
      )}
      <nav className="pager" aria-label="Pages of builds">
        {before !== undefined && (
          <button type="button" onClick={() => go({ before: undefined })}>
            ← Newest
          </button>
        )}
        {builds.data?.nextCursor != null && (
          <button type="button" onClick={() => go({ before: builds.data?.nextCursor ?? undefined })}>
            Older →
          </button>
        )}
      </nav>
      <FailingTests slug={slug} />
      <Schedules slug={slug} />
    </section>
  );
}
