import type { Kysely } from 'kysely';
import { formatDuration } from '../../contract/duration.js';
import {
  addCommitStatusDelivery,
  getCommitStatusSettings,
  type CommitStatusSettings,
  type ForgeKind,
} from '../../store/commit-status.js';
import {
  getBuildRecords,
  isTerminalStatus,
  type Build,
  type Database,
  type Reason,
  type Status,
} from '../../store/index.js';
import { findSecretForProject } from '../../store/secrets.js';
import { messageOf, sleep } from '../notify/delivery.js';
import type { BuildNotice, Notifier } from '../notify/types.js';
import { sealContext } from '../secrets/store.js';
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
  fetch?: typeof fetch;
}

/** One post that failed for good; the message names the forge, never the token. */
export class CommitStatusError extends Error {
  override readonly name = 'CommitStatusError';
}

const FORGE_NAMES: Record<ForgeKind, string> = { github: 'GitHub', gitlab: 'GitLab', gitea: 'Gitea' };

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
 */
export class CommitStatusNotifier implements Notifier {
  readonly name = 'commit status';
  private readonly fetch: typeof fetch;
  private readonly controller = new AbortController();
  /** What was last posted per build and context (forgotten when the build's final states are out). */
  private readonly posted = new Map<number, Map<string, string>>();

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
      const failures: string[] = [];
      for (const post of wanted) {
        const state = forgeState(repo.forge, post.moment);
        const key = acceptsSameState(repo.forge) ? `${state}|${post.description}` : state;
        if (posted.get(post.context) === key) continue;
        const failure = await this.post(repo, build, token, post);
        if (failure === undefined) posted.set(post.context, key);
        else failures.push(failure);
      }
      if (failures.length > 0) throw new CommitStatusError(failures.join('; '));
    } finally {
      if (final) this.posted.delete(build.id);
    }
  }

  /** Every context's state for the build as stored now: the build's, then its stages' in order. */
  private async wanted(notice: BuildNotice, settings: CommitStatusSettings): Promise<StatusPost[]> {
    const { build } = notice;
    const ref = build.tag ?? build.branch;
    const posts: StatusPost[] = [
      {
        context: 'slipway',
        moment: momentOf(build.status),
        description: shortDescription(
          `Build #${build.number} ${describeStatus(build.status, build.reason, build.durationMs)}`,
        ),
        targetUrl: notice.url,
        ref,
      },
    ];
    if (settings.contexts === 'stage') {
      for (const stage of await getBuildRecords(this.options.db, build.id)) {
        // A stage still queued when the build ended never ran: it was cut short with the build.
        const status: Status =
          isTerminalStatus(build.status) && !isTerminalStatus(stage.status) ? 'cancelled' : stage.status;
        posts.push({
          context: `slipway/${stage.name}`,
          moment: momentOf(status),
          description: shortDescription(
            `Stage ${stage.name} ${describeStatus(status, stage.reason, stage.durationMs)}`,
          ),
          targetUrl: notice.url,
          ref,
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

  /** Posts one status with retries; undefined when delivered, else the failure's message (also stored). */
  private async post(
    repo: ForgeRepo,
    build: Build,
    token: string,
    post: StatusPost,
  ): Promise<string | undefined> {
    const request = statusRequest(repo, build.commitSha!, token, post);
    const body = JSON.stringify(request.body);
    const retries = this.options.retries ?? 3;
    let delay = this.options.retryDelayMs ?? 1000;
    const forge = FORGE_NAMES[repo.forge];
    let attempts = 0;
    for (;;) {
      attempts++;
      const outcome = await this.attempt(request.url, request.headers, body);
      const done = outcome.ok || !outcome.retry || attempts > retries || this.controller.signal.aborted;
      let wait = outcome.ok ? 0 : (outcome.retryAfterMs ?? delay);
      const tooLong = !done && wait > (this.options.maxRetryAfterMs ?? 60_000);
      if (done || tooLong) {
        const detail = outcome.ok
          ? null
          : redact(
              `commit status to ${forge} failed: ${outcome.message}${tooLong ? ` (asked to retry after ${Math.ceil(wait / 1000)} s: given up)` : ''}${attempts > 1 ? ` after ${attempts} attempts` : ''}`,
              token,
            );
        await addCommitStatusDelivery(this.options.db, {
          buildId: build.id,
          forge: repo.forge,
          context: post.context,
          state: String(request.body.state),
          outcome: outcome.ok ? 'delivered' : 'failed',
          httpStatus: outcome.status ?? null,
          attempts,
          message:
            detail === null
              ? null
              : `${detail} (context ${post.context}, state ${String(request.body.state)})`,
        });
        return detail ?? undefined;
      }
      wait = Math.max(0, wait);
      await sleep(wait, this.controller.signal);
      delay *= 2;
    }
  }

  private async attempt(
    url: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<
    | { ok: true; status: number }
    | { ok: false; retry: boolean; status?: number; message: string; retryAfterMs?: number }
  > {
    const timeoutMs = this.options.timeoutMs ?? 10_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    try {
      response = await this.fetch(url, {
        method: 'POST',
        headers,
        body,
        signal: timeout,
        redirect: 'manual',
      });
    } catch (cause) {
      const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : messageOf(cause);
      return { ok: false, retry: true, message: why };
    }
    const text = await readBounded(response);
    if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
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

/** At most 8 KiB of an answer: a forge's error is short, a hostile one is cut. */
async function readBounded(response: Response): Promise<string> {
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
      if (size >= 8192) break;
    }
  } catch {
    // The status line is what matters; a body cut short says nothing more.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, 8192);
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
