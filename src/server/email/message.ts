import { formatDuration } from '../../contract/duration.js';
import { printable } from '../notify/step-tail.js';
import type { BuildNotice } from '../notify/types.js';

// Shared with the GitHub check runs' output (src/server/commit-status).
export { failingStep, stepTail, TAIL_LINES } from '../notify/step-tail.js';

/** What a message says, before it is addressed. */
export interface EmailContent {
  subject: string;
  text: string;
}

const VERB: Record<string, string> = {
  success: 'succeeded',
  failure: 'failed',
  error: 'errored',
  lost: 'was lost',
  cancelled: 'was cancelled',
  skipped: 'was skipped',
};

/**
 * The message of a finished build: subject `[slipway] acme/web #42 failed on main (a1b2c3d)`
 * (`fixed` for a success after a failure), and a plain-text body with the build page's link,
 * the reason, and the failing step's last lines as stored (masked).
 */
export function composeEmail(
  notice: BuildNotice,
  details: { fixed: boolean; tail?: { stage: string; step: string; lines: string[] } },
): EmailContent {
  const { build, project } = notice;
  const verb = details.fixed ? 'fixed' : (VERB[build.status] ?? build.status);
  const ref = build.tag !== null ? `tag ${build.tag}` : build.branch;
  const short = build.commitSha?.slice(0, 7);
  const subject = oneLine(
    `[slipway] ${project.slug} #${build.number} ${verb} on ${ref}${short ? ` (${short})` : ''}`,
  );
  const rows: [string, string | null][] = [
    ['Build', notice.url ?? `${project.slug} #${build.number} (the server has no --public-url for a link)`],
    ['Status', details.fixed ? `${build.status} (fixed)` : build.status],
    ['Reason', build.status === 'success' || build.reason === null ? null : build.reason.message],
    [build.tag !== null ? 'Tag' : 'Branch', build.tag ?? build.branch],
    ['Commit', build.commitSha],
    ['Author', build.commitAuthor],
    ['Trigger', `${build.event}${build.triggeredBy ? ` by ${build.triggeredBy}` : ''}`],
    ['Duration', build.durationMs === null ? null : formatDuration(build.durationMs, 'wide')],
  ];
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const lines = [
    `${project.slug} #${build.number} ${verb} on ${ref}${short ? ` (${short})` : ''}`,
    '',
    ...rows
      .filter(([, value]) => value !== null)
      .map(([label, value]) => `${`${label}:`.padEnd(width)}${oneLine(value!)}`),
  ];
  if (details.tail !== undefined) {
    const { stage, step, lines: tail } = details.tail;
    lines.push('', `Last ${tail.length} line(s) of ${stage}/${step}:`, '');
    lines.push(...(tail.length > 0 ? tail.map((line) => `    ${printable(line)}`) : ['    (no output)']));
  }
  lines.push('', '-- ', 'Slipway');
  return { subject, text: `${lines.join('\n')}\n` };
}

/** A header value or table cell: no line breaks or control characters. */
function oneLine(text: string): string {
  return printable(text).replace(/\s+/g, ' ').trim();
}
