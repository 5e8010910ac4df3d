import type { Build } from '../../api/types';
import { BuildActions, isFinal } from '../../components/BuildActions';
import { StatusBadge } from '../../components/Status';
import { CommitLine, ForgeLink, forgeState, linksOf } from '../../components/CommitInfo';
import { elapsed, formatAgo, formatDuration, shortSha } from '../../lib/format';
import { useNow } from '../../lib/hooks';
import { buildPath, Link } from '../../lib/router';

/** `push`, `manual by alice`, `pull_request via rerun by bob`: the event, and who or what started it. */
export function sourceText(build: Build): string {
  const via = build.trigger !== build.event ? ` via ${build.trigger}` : '';
  const by = build.triggeredBy !== null ? ` by ${build.triggeredBy}` : '';
  return `${build.event}${via}${by}`;
}

/** For a build waiting at an approval stage: whether it waits for a person or for a slot. */
function ApprovalNote({ build }: { build: Build }) {
  const open = build.approvals?.find((a) => a.decision === 'waiting' || a.resumedAt === null);
  const text =
    open === undefined || open.decision === 'waiting'
      ? `${open ? `${open.stage}: ` : ''}waiting for approval`
      : `${open.stage}: ${open.decision}, waiting for a running slot`;
  return <span className="approval-note">{text}</span>;
}

/** The builds of one page as rows: number, status, branch, commit, source, age, duration, actions. */
export function BuildRows({
  builds,
  onChanged,
  repoUrl,
}: {
  builds: Build[];
  onChanged: () => void;
  /** The project's repository URL, for links to the forge. */
  repoUrl?: string | undefined;
}) {
  const now = useNow(builds.some((b) => !isFinal(b)));
  return (
    <ul className="rows builds" aria-label="Builds" data-forge={forgeState(repoUrl)}>
      {builds.map((build) => {
        const took = elapsed(build, now);
        const links = linksOf(build, repoUrl);
        const ref = links.tag ?? links.branch;
        return (
          <li key={build.id} className="row build-row" data-build={build.number} data-status={build.status}>
            <span className="build-cell">
              <Link to={buildPath(build.project, build.number)} className="build-link">
                <span className="num">#{build.number}</span>
                <StatusBadge status={build.status} />
              </Link>
              {build.status === 'waiting' && <ApprovalNote build={build} />}
            </span>
            <span className="branch" title="branch">
              {ref === undefined ? (
                (build.tag ?? build.branch)
              ) : (
                <ForgeLink href={ref} label={`${build.tag !== null ? 'tag' : 'branch'} on the forge`}>
                  {build.tag ?? build.branch}
                </ForgeLink>
              )}
            </span>
            <code className="commit" title={build.commit ?? 'commit not resolved yet'}>
              {links.commit === undefined ? (
                shortSha(build.commit)
              ) : (
                <ForgeLink href={links.commit} label={`commit ${build.commit ?? ''} on the forge`}>
                  {shortSha(build.commit)}
                </ForgeLink>
              )}
            </code>
            <span className="muted source">{sourceText(build)}</span>
            <span className="muted when">{formatAgo(build.createdAt, now)}</span>
            <span className="duration">{took !== null ? formatDuration(took) : '—'}</span>
            <BuildActions build={build} onChanged={onChanged} />
            <CommitLine build={build} links={links} />
          </li>
        );
      })}
    </ul>
  );
}
