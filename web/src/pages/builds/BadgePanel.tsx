import { badgeMarkdown } from '../../../../src/contract/badge-api.js';
import { hasRole } from '../../../../src/contract/roles.js';
import { useApi, useSession } from '../../api/session';
import { ErrorNote } from '../../components/Feedback';
import { useAction, usePoll } from '../../lib/hooks';
import './badge.css';

/**
 * The project's status badge: how it looks now, the Markdown for a README, and the switch that
 * makes it public (members and admins). The image loads with this browser's session, so a
 * private badge shows here too.
 */
export function BadgePanel({ slug }: { slug: string }) {
  const api = useApi();
  const { me } = useSession();
  const settings = usePoll((signal) => api.getBadge(slug, signal), `badge:${slug}`);
  const change = useAction();
  if (settings.data === undefined) return <ErrorNote error={settings.error} />;
  const { public: isPublic, path } = settings.data;
  const canChange = hasRole(me.role, 'member');
  return (
    <details className="badge-panel">
      <summary>Status badge</summary>
      <p className="badge-now">
        <img src={path} alt={`build status of ${slug} (main)`} height={20} />
        <span className="muted" data-testid="badge-visibility">
          {isPublic
            ? 'Public: anyone with its address sees it, no token needed.'
            : 'Private: only people and machines with a token see it.'}
        </span>
      </p>
      <label className="badge-switch">
        <input
          type="checkbox"
          checked={isPublic}
          disabled={!canChange || change.busy}
          onChange={(event) => {
            const next = event.currentTarget.checked;
            void change.run(async () => {
              await api.setBadgePublic(slug, next);
              settings.reload();
            });
          }}
        />{' '}
        Public badge {canChange ? '' : '(members and admins change this)'}
      </label>
      <label className="badge-markdown">
        Markdown for a README
        <input
          readOnly
          value={badgeMarkdown(window.location.origin, slug)}
          onFocus={(event) => event.currentTarget.select()}
        />
      </label>
      <ErrorNote error={change.error} />
    </details>
  );
}
