import type { Reason, Status } from '../../store/index.js';
import { printable } from '../notify/step-tail.js';
import { githubHeaders, type ForgeRepo } from './forges.js';

/**
 * GitHub check runs, the richer sibling of a commit status: a status that moves queued →
 * in_progress → completed, a conclusion, and an output that can quote the failing step's
 * last lines. Only a GitHub App's installation token may create them; a personal access
 * token gets 403. Pure functions, no I/O.
 *
 * - Create: `POST /repos/{owner}/{repo}/check-runs` (`checks/create`).
 * - Update: `PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}` (`checks/update`).
 *   https://docs.github.com/en/rest/checks/runs
 */

export type CheckRunStatus = 'queued' | 'in_progress' | 'completed';
export type CheckConclusion = 'success' | 'failure' | 'cancelled' | 'timed_out' | 'skipped';

/** GitHub's limit on `output.summary` and `output.text`, each. */
export const MAX_OUTPUT = 65_535;
/** Lines of the failing step quoted in a check run (the e-mail quotes fewer). */
export const CHECK_TAIL_LINES = 50;

/**
 * A context's Slipway status as a check run's: queued until it runs, in progress while it
 * runs or waits for an approval (a conclusion would end the run), then a conclusion. A step
 * past its timeout is `timed_out`; `error` (the executor could not run it) is a failure; a
 * lost build (its server stopped) did not finish, like a cancelled one. `neutral` is not
 * used: nothing Slipway ends with is "neither passed nor failed".
 */
export function checkRunState(
  status: Status,
  reason: Reason | null,
): { status: CheckRunStatus; conclusion?: CheckConclusion } {
  switch (status) {
    case 'queued':
    case 'pending':
      return { status: 'queued' };
    case 'running':
    case 'waiting':
      return { status: 'in_progress' };
    case 'success':
      return { status: 'completed', conclusion: 'success' };
    case 'skipped':
      return { status: 'completed', conclusion: 'skipped' };
    case 'failure':
    case 'error':
      return { status: 'completed', conclusion: reason?.code === 'timeout' ? 'timed_out' : 'failure' };
    case 'cancelled':
    case 'lost':
      return { status: 'completed', conclusion: 'cancelled' };
  }
}

export interface CheckRunPost {
  /** The check run's name: the same context a status would have (`slipway`, `slipway/<stage>`). */
  context: string;
  status: Status;
  reason: Reason | null;
  /** One line (the status's description). */
  title: string;
  /** Longer words: the reason in full. */
  summary: string;
  /** The build's page; null when the server has no public URL. */
  detailsUrl: string | null;
  buildId: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** The failing step's last stored (masked) lines, on a failure. */
  tail?: { stage: string; step: string; lines: string[] };
}

/**
 * The request that creates (no `id`) or updates a check run. The token goes only in
 * `headers`; `name` and `head_sha` are sent on creation only.
 */
export function checkRunRequest(
  repo: ForgeRepo,
  sha: string,
  token: string,
  run: CheckRunPost,
  id?: number,
): { method: 'POST' | 'PATCH'; url: string; headers: Record<string, string>; body: Record<string, unknown> } {
  const [owner, name] = repo.path.split('/') as [string, string];
  const base = `${repo.apiUrl}/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/check-runs`;
  const state = checkRunState(run.status, run.reason);
  const output: Record<string, string> = {
    title: run.title,
    summary: capped(run.summary, MAX_OUTPUT),
  };
  if (run.tail !== undefined) output.text = tailText(run.tail);
  const body: Record<string, unknown> = {
    ...(id === undefined && { name: run.context, head_sha: sha }),
    external_id: String(run.buildId),
    ...(run.detailsUrl !== null && { details_url: run.detailsUrl }),
    status: state.status,
    ...(state.status !== 'queued' && run.startedAt !== null && { started_at: isoSeconds(run.startedAt) }),
    ...(state.conclusion !== undefined && {
      conclusion: state.conclusion,
      completed_at: isoSeconds(run.finishedAt ?? Date.now()),
    }),
    output,
  };
  return {
    method: id === undefined ? 'POST' : 'PATCH',
    url: id === undefined ? base : `${base}/${id}`,
    headers: githubHeaders(token),
    body,
  };
}

/**
 * The step's last lines in a fenced block, longer than any run of backticks in them so that
 * a log line cannot close it; the oldest lines go first when the whole would pass GitHub's limit.
 */
export function tailText(tail: { stage: string; step: string; lines: string[] }): string {
  const lines = tail.lines.map(printable);
  const longest = Math.max(
    0,
    ...lines.map((l) => Math.max(0, ...(l.match(/`+/g) ?? []).map((r) => r.length))),
  );
  const fence = '`'.repeat(Math.max(3, longest + 1));
  let kept = lines;
  const wrap = (body: string[]) =>
    `Last ${body.length} line(s) of ${tail.stage}/${tail.step}:\n\n${fence}text\n${body.join('\n')}\n${fence}\n`;
  let text = wrap(kept);
  while (text.length > MAX_OUTPUT && kept.length > 1) {
    kept = kept.slice(1);
    text = wrap(kept);
  }
  return capped(text, MAX_OUTPUT);
}

function capped(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** `YYYY-MM-DDTHH:MM:SSZ`, as GitHub's documentation writes it. */
function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
