import type { Kysely } from 'kysely';
import { formatDuration } from '../../contract/duration.js';
import {
  addCommitStatusDelivery,
  getCheckRuns,
  getCommitStatusSettings,
  listCommitStatusDeliveries,
  putCheckRun,
  type CommitStatusSettings,
  type ForgeKind,
} from '../../store/commit-status.js';
import {
  getBuildRecords,
  isTerminalStatus,
  type Build,
  type Database,
  type Reason,
  type StageRecord,
  type Status,
} from '../../store/index.js';
import { findSecretForProject } from '../../store/secrets.js';
import type { LogStore } from '../logs/types.js';
import { messageOf, sleep } from '../notify/delivery.js';
import { failingStep, stepTail } from '../notify/step-tail.js';
import type { BuildNotice, Notifier } from '../notify/types.js';
import { sealContext } from '../secrets/store.js';
import { CHECK_TAIL_LINES, checkRunRequest, checkRunState, type CheckRunPost } from './check-runs.js';
import {
  acceptsSameState,
  forgeState,
  resolveForgeRepo,
  shortDescription,
  statusRequest,
  type ForgeRepo,
  type StatusMoment,
  type StatusPost,
} from './forges.js';

export interface CommitStatusNotifierOptions {
  db: Kysely<Database>;
  /** Opens the sealed token secret (`SecretCipher`). */
  cipher: { open(sealed: string, context: string): string };
  /** Per attempt; default 10 s. */
  timeoutMs?: number;
  /** Further attempts after a 429, a 5xx, a timeout or a network error; default 3. */
  retries?: number;
  /** Wait before the first retry, doubled for each next one, unless the forge says how long; default 1 s. */
  retryDelayMs?: number;
  /** Longest wait a `Retry-After` may ask for; a longer one ends the post as failed. Default 60 s. */
  maxRetryAfterMs?: number;
  /** Where a failed check run's quoted lines are read from (stored, masked); none: no lines. */
  logs?: LogStore;
  /** How long a GitHub project whose token may not create check runs gets statuses before Checks are tried again; default 1 h. */
  checksRetryMs?: number;
  fetch?: typeof fetch;
}

/** One post that failed for good; the message names the forge, never the token. */
export class CommitStatusError extends Error {
  override readonly name = 'CommitStatusError';
}

const FORGE_NAMES: Record<ForgeKind, string> = { github: 'GitHub', gitlab: 'GitLab', gitea: 'Gitea' };

/** A context's status and the facts a check run shows beyond a status's. */
type Wanted = StatusPost & {
  status: Status;
  reason: Reason | null;
  summary: string;
  startedAt: number | null;
  finishedAt: number | null;
  /** Where its failing step is looked for: every stage for the build, its own for a stage. */
  records: StageRecord[];
};

/** A request to the forge: a status post, or a check run's creation or update. */
interface ForgeRequest {
  method: 'POST' | 'PATCH';
  url: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/**
 * Posts a build's commit statuses to its project's forge (settings in
 * `project_commit_status`): `slipway` for the build, and with `contexts: stage` also
 * `slipway/<stage>` for each stage, from queued through running to the final state.
 *
 * One instance serves every project (give it to the hub's `extra`). At each moment it works
 * out the state every context should show from the stored build and stages, and posts only
 * those that changed since its last post for the build, so a late or repeated notice never
 * sends a status back or twice. Each post's outcome is stored (`commit_status_deliveries`)
 * and shown with the build; failures also reject, for the server's log. It never touches
 * the build. The token is the value of the secret the settings name, opened here for the
 * request header and nowhere else: builds do not get it from here, responses and messages
 * never contain it.
 *
 * On GitHub with `checks: auto` each context is a check run instead (created, then updated by
 * its stored id; a failure quotes the failing step's stored lines), and no status: GitHub
 * would list both. A token that may not create check runs (403) gets statuses, see `modeOf`.
 */
export class CommitStatusNotifier implements Notifier {
  readonly name = 'commit status';
  private readonly fetch: typeof fetch;
  private readonly controller = new AbortController();
  /** What was last posted per build and context (forgotten when the build's final states are out). */
  private readonly posted = new Map<number, Map<string, string>>();
  /** Check runs or statuses, per build, kept for its whole life so a build never shows both. */
  private readonly modes = new Map<number, 'checks' | 'statuses'>();
  /** GitHub projects whose token may not create check runs, until when statuses are posted instead. */
  private readonly checksRefused = new Map<number, number>();

  constructor(private readonly options: CommitStatusNotifierOptions) {
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  buildQueued(notice: BuildNotice): Promise<void> {
    return this.sync(notice);
  }

  buildStarted(notice: BuildNotice): Promise<void> {
    return this.sync(notice);
  }

  stageChanged(notice: BuildNotice): Promise<void> {
    return this.sync(notice);
  }

  buildFinished(notice: BuildNotice): Promise<void> {
    return this.sync(notice);
  }

  /** Stops waiting between retries (server shutdown); a request under way ends by its timeout. */
  close(): void {
    this.controller.abort();
  }

  private async sync(notice: BuildNotice): Promise<void> {
    const { build, project } = notice;
    const settings = await getCommitStatusSettings(this.options.db, project.id);
    if (settings === undefined || !settings.enabled) return;
    // A build triggered without a commit learns it at checkout: the next moment posts.
    if (build.commitSha === null) return;
    const final = isTerminalStatus(build.status);
    try {
      const repo = resolveForgeRepo(project.repoUrl, settings);
      const wanted = await this.wanted(notice, settings);
      const posted = this.posted.get(build.id) ?? new Map<string, string>();
      this.posted.set(build.id, posted);
      if ('error' in repo) {
        return await this.refuse(build, settings.forge, posted, wanted, repo.error);
      }
      const token = await this.token(project.id, settings);
      if (typeof token !== 'string') {
        return await this.refuse(build, repo.forge, posted, wanted, token.error);
      }
      if ((await this.modeOf(build, repo, settings)) === 'checks') {
        const done = await this.syncChecks(notice, repo, token, wanted, posted);
        if (done) return;
      }
      const failures: string[] = [];
      for (const post of wanted) {
        const state = forgeState(repo.forge, post.moment);
        const key = acceptsSameState(repo.forge) ? `${state}|${post.description}` : state;
        if (posted.get(post.context) === key) continue;
        const request = { method: 'POST' as const, ...statusRequest(repo, build.commitSha, token, post) };
        const sent = await this.send(repo.forge, build, token, request, {
          kind: 'status',
          context: post.context,
          state: String(request.body.state),
        });
        if (sent.ok) posted.set(post.context, key);
        else failures.push(sent.message);
      }
      if (failures.length > 0) throw new CommitStatusError(failures.join('; '));
    } finally {
      // Forgotten at the `finished` moment only: the hub announces the moments that came
      // together from one read of the build, so `started` and `stage` may already see it
      // final, and forgetting then would post the final state once per moment.
      if (final && notice.event === 'finished') {
        this.posted.delete(build.id);
        this.modes.delete(build.id);
      }
    }
  }

  /**
   * Check runs or statuses for a build, decided at its first moment and kept: a GitHub project
   * with `checks: auto` tries check runs, unless its token was refused them lately. After a
   * restart a build goes on as it began: with its stored check runs, or with its statuses.
   */
  private async modeOf(
    build: Build,
    repo: ForgeRepo,
    settings: CommitStatusSettings,
  ): Promise<'checks' | 'statuses'> {
    if (repo.forge !== 'github' || settings.checks === 'off') return 'statuses';
    let mode = this.modes.get(build.id);
    if (mode === undefined) {
      const { db } = this.options;
      const refusedUntil = this.checksRefused.get(build.projectId) ?? 0;
      if ((await getCheckRuns(db, build.id)).size > 0) mode = 'checks';
      else if (refusedUntil > Date.now()) mode = 'statuses';
      else {
        const earlier = await listCommitStatusDeliveries(db, build.id);
        mode = earlier.some((d) => d.kind === 'status' && d.outcome === 'delivered') ? 'statuses' : 'checks';
      }
      this.modes.set(build.id, mode);
    }
    return mode;
  }

  /**
   * Creates or updates each context's check run; true when done (delivered or failed), false
   * when GitHub refused the token Checks: then the build and, for `checksRetryMs`, the
   * project's next builds get statuses, and the refusal is stored as the build's delivery.
   */
  private async syncChecks(
    notice: BuildNotice,
    repo: ForgeRepo,
    token: string,
    wanted: Wanted[],
    posted: Map<string, string>,
  ): Promise<boolean> {
    const { build } = notice;
    const runs = await getCheckRuns(this.options.db, build.id);
    const failures: string[] = [];
    for (const post of wanted) {
      const state = checkRunState(post.status, post.reason);
      const key = `check|${state.status}|${state.conclusion ?? ''}|${post.description}`;
      if (posted.get(post.context) === key) continue;
      const run: CheckRunPost = {
        context: post.context,
        status: post.status,
        reason: post.reason,
        title: post.description,
        summary: post.summary,
        detailsUrl: post.targetUrl,
        buildId: build.id,
        startedAt: post.startedAt,
        finishedAt: post.finishedAt,
      };
      const failing = state.conclusion === 'failure' || state.conclusion === 'timed_out';
      const step = failing && this.options.logs !== undefined ? failingStep(post.records) : null;
      if (step !== null) {
        const lines = await stepTail(this.options.logs!, build.id, step.stage, step.step, CHECK_TAIL_LINES);
        run.tail = { ...step, lines };
      }
      const id = runs.get(post.context);
      const request = checkRunRequest(repo, build.commitSha!, token, run, id);
      const sent = await this.send(
        repo.forge,
        build,
        token,
        request,
        { kind: 'check', context: post.context, state: state.conclusion ?? state.status },
        true,
      );
      if (!sent.ok && sent.refused) {
        const retryMs = this.options.checksRetryMs ?? 3_600_000;
        this.checksRefused.set(build.projectId, Date.now() + retryMs);
        this.modes.set(build.id, 'statuses');
        await addCommitStatusDelivery(this.options.db, {
          buildId: build.id,
          kind: 'check',
          forge: repo.forge,
          context: post.context,
          state: String(request.body.status),
          outcome: 'failed',
          httpStatus: 403,
          attempts: 1,
          message: redact(
            `check run refused by GitHub: ${sent.message}; commit statuses instead (check runs need a GitHub App installation token with "Checks: write"; tried again in ${Math.round(retryMs / 60_000)} min)`,
            token,
          ),
        });
        return false;
      }
      if (!sent.ok) {
        failures.push(sent.message);
        continue;
      }
      if (id === undefined) {
        const created = checkRunId(sent.text);
        if (created === undefined) {
          failures.push(
            `check run on GitHub: the answer to its creation has no id (context ${post.context})`,
          );
          continue;
        }
        await putCheckRun(this.options.db, { buildId: build.id, context: post.context, checkRunId: created });
        runs.set(post.context, created);
      }
      posted.set(post.context, key);
    }
    if (failures.length > 0) throw new CommitStatusError(failures.join('; '));
    return true;
  }

  /** Every context's state for the build as stored now: the build's, then its stages' in order. */
  private async wanted(notice: BuildNotice, settings: CommitStatusSettings): Promise<Wanted[]> {
    const { build } = notice;
    const ref = build.tag ?? build.branch;
    const records = await getBuildRecords(this.options.db, build.id);
    const words = `Build #${build.number} ${describeStatus(build.status, build.reason, build.durationMs)}`;
    const posts: Wanted[] = [
      {
        context: 'slipway',
        moment: momentOf(build.status),
        description: shortDescription(words),
        targetUrl: notice.url,
        ref,
        status: build.status,
        reason: build.reason,
        summary: words,
        startedAt: build.startedAt,
        finishedAt: build.finishedAt,
        records,
      },
    ];
    if (settings.contexts === 'stage') {
      for (const stage of records) {
        // A stage still queued when the build ended never ran: it was cut short with the build.
        const status: Status =
          isTerminalStatus(build.status) && !isTerminalStatus(stage.status) ? 'cancelled' : stage.status;
        const stageWords = `Stage ${stage.name} ${describeStatus(status, stage.reason, stage.durationMs)}`;
        posts.push({
          context: `slipway/${stage.name}`,
          moment: momentOf(status),
          description: shortDescription(stageWords),
          targetUrl: notice.url,
          ref,
          status,
          reason: stage.reason,
          summary: stageWords,
          startedAt: stage.startedAt,
          finishedAt: stage.finishedAt ?? build.finishedAt,
          records: [stage],
        });
      }
    }
    return posts;
  }

  /** The token, or why there is none (a message naming the secret, never a value). */
  private async token(
    projectId: number,
    settings: CommitStatusSettings,
  ): Promise<string | { error: string }> {
    const name = settings.tokenSecret;
    const secret = await findSecretForProject(this.options.db, projectId, name);
    if (secret === undefined) return { error: `the token secret "${name}" does not exist` };
    if (secret.allowForks) {
      // A pull request's pipeline could ask for it with from_secret: a forge token must not be
      // within reach of code from a fork.
      return {
        error: `the token secret "${name}" is given to pull requests from forks: set it again without allowForks`,
      };
    }
    try {
      return this.options.cipher.open(secret.valueSealed, sealContext(secret.scope, name));
    } catch {
      return { error: `the token secret "${name}" cannot be decrypted (another secret key?)` };
    }
  }

  /** Nothing can be posted for the build: each context that would have been posted records why, once. */
  private async refuse(
    build: Build,
    forge: ForgeKind | null,
    posted: Map<string, string>,
    wanted: StatusPost[],
    why: string,
  ): Promise<void> {
    const message = `commit status to ${forge === null ? 'the forge' : FORGE_NAMES[forge]} not sent: ${why}`;
    const first = wanted[0]!;
    if (posted.get(first.context) === `refused|${why}`) return;
    posted.set(first.context, `refused|${why}`);
    await addCommitStatusDelivery(this.options.db, {
      buildId: build.id,
      forge: forge ?? 'unknown',
      context: first.context,
      state: first.moment,
      outcome: 'failed',
      httpStatus: null,
      attempts: 0,
      message,
    });
    throw new CommitStatusError(message);
  }

  /**
   * Sends one request with retries; the outcome is stored unless it is a refusal the caller
   * words itself (`refusable`: a 403 that is not a spent rate limit). The answer's text is kept
   * for a check run's id.
   */
  private async send(
    forgeKind: ForgeKind,
    build: Build,
    token: string,
    request: ForgeRequest,
    what: { kind: 'status' | 'check'; context: string; state: string },
    refusable = false,
  ): Promise<{ ok: true; text: string } | { ok: false; message: string; refused: boolean }> {
    const body = JSON.stringify(request.body);
    const retries = this.options.retries ?? 3;
    let delay = this.options.retryDelayMs ?? 1000;
    const forge = FORGE_NAMES[forgeKind];
    const noun = what.kind === 'check' ? 'check run' : 'commit status';
    let attempts = 0;
    for (;;) {
      attempts++;
      const outcome = await this.attempt(request.method, request.url, request.headers, body);
      if (refusable && !outcome.ok && outcome.status === 403 && !outcome.retry)
        return { ok: false, message: redact(outcome.message, token), refused: true };
      const done = outcome.ok || !outcome.retry || attempts > retries || this.controller.signal.aborted;
      let wait = outcome.ok ? 0 : (outcome.retryAfterMs ?? delay);
      const tooLong = !done && wait > (this.options.maxRetryAfterMs ?? 60_000);
      if (done || tooLong) {
        const detail = outcome.ok
          ? null
          : redact(
              `${noun} to ${forge} failed: ${outcome.message}${tooLong ? ` (asked to retry after ${Math.ceil(wait / 1000)} s: given up)` : ''}${attempts > 1 ? ` after ${attempts} attempts` : ''}`,
              token,
            );
        await addCommitStatusDelivery(this.options.db, {
          buildId: build.id,
          kind: what.kind,
          forge: forgeKind,
          context: what.context,
          state: what.state,
          outcome: outcome.ok ? 'delivered' : 'failed',
          httpStatus: outcome.status ?? null,
          attempts,
          message: detail === null ? null : `${detail} (context ${what.context}, state ${what.state})`,
        });
        return outcome.ok
          ? { ok: true, text: outcome.text }
          : { ok: false, message: detail!, refused: false };
      }
      wait = Math.max(0, wait);
      await sleep(wait, this.controller.signal);
      delay *= 2;
    }
  }

  private async attempt(
    method: 'POST' | 'PATCH',
    url: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<
    | { ok: true; status: number; text: string }
    | { ok: false; retry: boolean; status?: number; message: string; retryAfterMs?: number }
  > {
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await this.fetch(url, {
        method,
        headers,
        body,
        signal: timeout,
        redirect: 'manual',
      });
    } catch (cause) {
      const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : messageOf(cause);
      return { ok: false, retry: true, message: why };
    }
    const ok = response.status >= 200 && response.status < 300;
    // A created check run's answer echoes its output (up to 2 × 64 KiB): read it whole for the id.
    const text = await readBounded(
      response,
      ok && method === 'POST' && body.includes('"head_sha"') ? 262_144 : 8192,
    );
    if (ok) return { ok: true, status: response.status, text };
    const said = forgeMessage(text);
    const message = `${response.status}${said ? ` ${said}` : ''}`;
    if (response.status >= 300 && response.status < 400) {
      return {
        ok: false,
        retry: false,
        status: response.status,
        message: `${message} (moved to ${response.headers.get('location') ?? '?'}: set apiUrl)`,
      };
    }
    const retryAfterMs = retryAfter(response.headers);
    // GitHub answers 403 (or 429) with x-ratelimit-remaining: 0 when the rate limit is spent.
    const rateLimited =
      response.status === 429 ||
      (response.status === 403 &&
        (retryAfterMs !== undefined || response.headers.get('x-ratelimit-remaining') === '0'));
    const retry = rateLimited || response.status === 408 || response.status >= 500;
    return {
      ok: false,
      retry,
      status: response.status,
      message,
      ...(retryAfterMs !== undefined && { retryAfterMs }),
    };
  }
}

function momentOf(status: Status): StatusMoment {
  switch (status) {
    case 'queued':
    case 'pending':
      return 'queued';
    case 'running':
      return 'running';
    case 'waiting':
      return 'waiting';
    default:
      return status;
  }
}

function describeStatus(status: Status, reason: Reason | null, durationMs: number | null): string {
  const took = durationMs !== null ? ` in ${formatDuration(durationMs, 'wide')}` : '';
  const why = reason ? `: ${reason.message}` : '';
  switch (status) {
    case 'queued':
    case 'pending':
      return 'queued';
    case 'running':
      return 'running';
    case 'waiting':
      return 'waiting for approval';
    case 'success':
      return `succeeded${took}`;
    case 'failure':
      return `failed${why}`;
    case 'error':
      return `errored${why}`;
    case 'cancelled':
      return `cancelled${why}`;
    case 'lost':
      return `lost${why}`;
    case 'skipped':
      return 'skipped';
  }
}

/** `Retry-After` (seconds or an HTTP date), else GitHub's `x-ratelimit-reset` when the limit is spent. */
function retryAfter(headers: Headers, now = Date.now()): number | undefined {
  const value = headers.get('retry-after');
  if (value !== null) {
    if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
    const at = Date.parse(value);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  const reset = headers.get('x-ratelimit-reset');
  if (headers.get('x-ratelimit-remaining') === '0' && reset !== null && /^\d+$/.test(reset)) {
    return Math.max(0, Number(reset) * 1000 - now);
  }
  return undefined;
}

/** At most `limit` bytes of an answer: a forge's error is short, a hostile one is cut. */
async function readBounded(response: Response, limit: number): Promise<string> {
  if (response.body === null) return '';
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size >= limit) break;
    }
  } catch {
    // The status line is what matters; a body cut short says nothing more.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, limit);
}

/** The `id` of a created check run, from GitHub's answer. */
function checkRunId(text: string): number | undefined {
  try {
    const id = (JSON.parse(text) as { id?: unknown }).id;
    return typeof id === 'number' && Number.isSafeInteger(id) && id > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The forge's own words: `message` (GitHub, Gitea, GitLab), `error` (GitLab), one line, short. */
function forgeMessage(text: string): string {
  let said: unknown = text;
  try {
    const json = JSON.parse(text) as { message?: unknown; error?: unknown };
    said = json.message ?? json.error ?? '';
  } catch {
    // Not JSON: a proxy's page; its first words do.
  }
  const line = (typeof said === 'string' ? said : JSON.stringify(said)).replace(/<[^>]*>/g, ' ');
  return shortDescription(line).slice(0, 140);
}

/** A forge that echoes what it was sent must not get the token into a message. */
function redact(text: string, token: string): string {
  return token.length > 0 ? text.replaceAll(token, '***') : text;
}
