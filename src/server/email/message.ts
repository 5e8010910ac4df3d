import { formatDuration } from '../../contract/duration.js';
import type { StageRecord } from '../../store/index.js';
import type { LogStore } from '../logs/types.js';
import type { BuildNotice } from '../notify/types.js';

/** Lines of the failing step quoted in a message. */
export const TAIL_LINES = 20;
/** A quoted line longer than this is cut: a minified bundle on one line is no help in a mail. */
const LINE_CHARS = 400;
/** Lines read from the store at a time while looking for the tail. */
const PAGE = 2000;

/** What a message says, before it is addressed. */
export interface EmailContent {
  subject: string;
  text: string;
}

/** The step a failure message quotes: the first that failed (or errored) and was not allowed to. */
export function failingStep(records: readonly StageRecord[]): { stage: string; step: string } | null {
  const steps = records.flatMap((stage) => stage.steps.map((step) => ({ stage: stage.name, step })));
  const failed = (allowed: boolean) =>
    steps.find(
      ({ step }) => (step.status === 'failure' || step.status === 'error') && step.allowFailure === allowed,
    );
  const found = failed(false) ?? failed(true);
  return found === undefined ? null : { stage: found.stage, step: found.step.name };
}

/**
 * The last `count` stored lines of one step. Read from the log store, where secrets were
 * already masked before anything was written: never from live output. Pages through the log
 * keeping only a ring of `count` lines, so a 100k-line log costs time, not memory.
 */
export async function stepTail(
  logs: LogStore,
  buildId: number,
  stage: string,
  step: string,
  count = TAIL_LINES,
): Promise<string[]> {
  const tail: string[] = [];
  let after = 0;
  for (;;) {
    const page = await logs.read(buildId, after, PAGE);
    if (page.length === 0) return tail;
    for (const line of page) {
      if (line.stage !== stage || line.step !== step) continue;
      tail.push(line.text.length > LINE_CHARS ? `${line.text.slice(0, LINE_CHARS)}…` : line.text);
      if (tail.length > count) tail.shift();
    }
    after = page[page.length - 1]!.seq;
  }
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

/** Control characters (ANSI colours of a log line, say) are dropped; tabs stay. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex -- these are exactly what is removed
  return text.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
}
