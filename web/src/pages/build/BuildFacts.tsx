import type { ReactNode } from 'react';
import type { BuildDetail } from '../../api/types';
import { ForgeLink, forgeState, linksOf } from '../../components/CommitInfo';
import { useApi } from '../../api/session';
import { elapsed, formatDuration, formatTime } from '../../lib/format';
import { useNow, usePoll } from '../../lib/hooks';
import { buildPath, Link } from '../../lib/router';
import { isFinal } from '../../components/BuildActions';

/** Commit, branch or tag, event, what triggered it, and when. */
export function BuildFacts({ build, repoUrl }: { build: BuildDetail; repoUrl?: string | undefined }) {
  const now = useNow(!isFinal(build));
  const took = elapsed(build, now);
  const links = linksOf(build, repoUrl);
  const linked = (href: string | undefined, label: string, text: ReactNode) =>
    href === undefined ? (
      text
    ) : (
      <ForgeLink href={href} label={label}>
        {text}
      </ForgeLink>
    );
  return (
    <dl className="facts" data-forge={forgeState(repoUrl)}>
      <div>
        <dt>Branch</dt>
        <dd className="branch">
          {linked(links.branch, `branch ${build.branch} on the forge`, build.branch)}
        </dd>
      </div>
      {build.tag !== null && (
        <div>
          <dt>Tag</dt>
          <dd>{linked(links.tag, `tag ${build.tag} on the forge`, build.tag)}</dd>
        </div>
      )}
      {build.event === 'pull_request' && build.pullRequest != null && (
        <div>
          <dt>Pull request</dt>
          <dd>
            {linked(
              links.pullRequest,
              `pull request #${build.pullRequest} on the forge`,
              `#${build.pullRequest}`,
            )}
          </dd>
        </div>
      )}
      <div>
        <dt>Commit</dt>
        <dd>
          {build.commit !== null ? (
            linked(
              links.commit,
              `commit ${build.commit} on the forge`,
              <code title={build.commit}>{build.commit.slice(0, 12)}</code>,
            )
          ) : (
            <span className="muted" data-testid="no-commit">
              {noCommit(build)}
            </span>
          )}
        </dd>
      </div>
      {build.commitAuthor != null && (
        <div>
          <dt>Author</dt>
          <dd data-testid="commit-author">{build.commitAuthor}</dd>
        </div>
      )}
      <div>
        <dt>Event</dt>
        <dd>{build.event}</dd>
      </div>
      <div>
        <dt>Triggered</dt>
        <dd>
          {build.trigger}
          {build.triggeredBy !== null && ` by ${build.triggeredBy}`}
          {build.rerunOf !== null && <RerunOf id={build.rerunOf} failedOnly={build.rerunFailed === true} />}
        </dd>
      </div>
      <div>
        <dt>Created</dt>
        <dd>{formatTime(build.createdAt)}</dd>
      </div>
      <div>
        <dt>Duration</dt>
        <dd className="duration">{took !== null ? formatDuration(took) : '—'}</dd>
      </div>
    </dl>
  );
}

/** Why a build has no commit: not checked out yet, or what ended it before. */
function noCommit(build: BuildDetail): string {
  if (!isFinal(build)) return 'not resolved yet';
  if (build.reason?.code === 'checkout') return 'none: the checkout failed';
  if (build.startedAt === null) return `none: the build ended (${build.status}) before it started`;
  return `none: the build ended (${build.status}) before its checkout${build.reason !== null ? `: ${build.reason.message}` : ''}`;
}

function RerunOf({ id, failedOnly }: { id: number; failedOnly: boolean }) {
  const api = useApi();
  const original = usePoll((signal) => api.getBuildById(id, signal), `build-id:${id}`);
  const what = failedOnly ? 're-run of what failed in' : 're-run of';
  if (original.data === undefined) return <> ({what.replace(/ (of|in)$/, '')})</>;
  return (
    <>
      {' '}
      ({what} <Link to={buildPath(original.data.project, original.data.number)}>#{original.data.number}</Link>
      )
    </>
  );
}
