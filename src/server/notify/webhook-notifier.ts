import { formatDuration } from '../../contract/duration.js';
import { redactRepoUrl } from '../secrets/repo-credentials.js';
import { messageOf, sleep } from './delivery.js';
import type { BuildNotice, Notifier } from './types.js';

export interface WebhookNotifierOptions {
  url: string;
  /** Post Slack's `{text, attachments}` instead of Slipway's JSON. */
  slack?: boolean;
  /** Which notices to post; default both. `failed` posts `finished` notices of builds that did not succeed. */
  events?: readonly ('started' | 'finished' | 'failed')[];
  /** Per attempt; default 5 s. */
  timeoutMs?: number;
  /** Further attempts after a failed one (network error, timeout, 408, 429, 5xx); default 2. */
  retries?: number;
  /** Wait before the first retry, doubled for each next one; default 500 ms. */
  retryDelayMs?: number;
  /** Stops retrying (server shutdown); an attempt under way still ends by itself or by its timeout. */
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/** A post that failed for good, with what the receiver said. */
export class NotifyError extends Error {
  override readonly name = 'NotifyError';

  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Posts each notice as JSON to a URL: Slipway's own shape (`event`, `project`, `build`,
 * `status`, `url`) or, with `slack`, an incoming-webhook message that Slack, Mattermost and
 * Rocket.Chat display. Each attempt has a timeout; transient failures are retried with
 * growing delays; a 4xx other than 408/429 is final.
 */
export class WebhookNotifier implements Notifier {
  readonly name: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: WebhookNotifierOptions) {
    this.name = `webhook ${redact(options.url)}`;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  buildStarted(notice: BuildNotice): Promise<void> {
    return this.wants(notice) ? this.post(notice) : Promise.resolve();
  }

  buildFinished(notice: BuildNotice): Promise<void> {
    return this.wants(notice) ? this.post(notice) : Promise.resolve();
  }

  private wants(notice: BuildNotice): boolean {
    const events = this.options.events ?? ['started', 'finished'];
    if (notice.event === 'started') return events.includes('started');
    return events.includes('finished') || (events.includes('failed') && notice.build.status !== 'success');
  }

  private async post(notice: BuildNotice): Promise<void> {
    const body = JSON.stringify(this.options.slack ? slackPayload(notice) : webhookPayload(notice));
    const retries = this.options.retries ?? 2;
    let delay = this.options.retryDelayMs ?? 500;
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.attempt(body);
      if (outcome === 'ok') return;
      if (!outcome.retry || attempt >= retries || this.options.signal?.aborted) throw outcome.error;
      await sleep(delay, this.options.signal);
      delay *= 2;
    }
  }

  private async attempt(body: string): Promise<'ok' | { retry: boolean; error: NotifyError }> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 5000);
    try {
      const response = await this.fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Slipway' },
        body,
        signal: timeout,
        redirect: 'error',
      });
      await response.body?.cancel().catch(() => undefined);
      if (response.ok) return 'ok';
      const retry = response.status === 408 || response.status === 429 || response.status >= 500;
      return { retry, error: new NotifyError(`${this.name} answered ${response.status}`, response.status) };
    } catch (cause) {
      const why = timeout.aborted ? `timed out after ${this.options.timeoutMs ?? 5000} ms` : messageOf(cause);
      return { retry: true, error: new NotifyError(`${this.name} failed: ${why}`, undefined, { cause }) };
    }
  }
}

/** Slipway's notification JSON. */
export function webhookPayload(notice: BuildNotice) {
  const { build, project } = notice;
  return {
    event: `build.${notice.event}`,
    project: { id: project.id, slug: project.slug, repoUrl: redactRepoUrl(project.repoUrl) },
    build: {
      id: build.id,
      number: build.number,
      status: build.status,
      reason: build.reason,
      branch: build.branch,
      tag: build.tag,
      commit: build.commitSha,
      event: build.event,
      trigger: build.trigger,
      triggeredBy: build.triggeredBy,
      createdAt: build.createdAt,
      startedAt: build.startedAt,
      finishedAt: build.finishedAt,
      durationMs: build.durationMs,
      // Times in epoch ms like the rest; `at` is when it was decided.
      approvals: (notice.approvals ?? []).map((a) => ({
        stage: a.stage,
        decision: a.decision,
        by: a.by,
        at: a.at,
        comment: a.comment,
      })),
    },
    status: build.status,
    url: notice.url,
  };
}

const SLACK_LOOK: Record<string, { emoji: string; verb: string; color: string }> = {
  running: { emoji: ':arrow_forward:', verb: 'started', color: '#439FE0' },
  pending: { emoji: ':arrow_forward:', verb: 'started', color: '#439FE0' },
  success: { emoji: ':white_check_mark:', verb: 'succeeded', color: 'good' },
  failure: { emoji: ':x:', verb: 'failed', color: 'danger' },
  error: { emoji: ':warning:', verb: 'errored', color: 'danger' },
  cancelled: { emoji: ':no_entry_sign:', verb: 'was cancelled', color: 'warning' },
  lost: { emoji: ':grey_question:', verb: 'was lost', color: 'warning' },
  skipped: { emoji: ':fast_forward:', verb: 'was skipped', color: '#cccccc' },
};

/** A Slack incoming-webhook message: a one-line `text` plus an attachment with the details. */
export function slackPayload(notice: BuildNotice) {
  const { build, project } = notice;
  const look =
    notice.event === 'started'
      ? SLACK_LOOK.running!
      : (SLACK_LOOK[build.status] ?? { emoji: '', verb: build.status, color: '#cccccc' });
  const name = `${project.slug} #${build.number}`;
  const ref = build.tag ? `tag ${build.tag}` : build.branch;
  const commit = build.commitSha ? build.commitSha.slice(0, 12) : null;
  const link = notice.url ? `<${notice.url}|${escape(name)}>` : escape(name);
  const fields = [
    { title: build.tag ? 'Tag' : 'Branch', value: escape(build.tag ?? build.branch), short: true },
    ...(commit ? [{ title: 'Commit', value: commit, short: true }] : []),
    { title: 'Event', value: build.event, short: true },
    ...(notice.event === 'finished' && build.durationMs !== null
      ? [{ title: 'Duration', value: formatDuration(build.durationMs, 'wide'), short: true }]
      : []),
    ...(notice.approvals ?? [])
      .filter((a) => a.decision !== 'waiting')
      .map((a) => ({
        title: `Approval (${escape(a.stage)})`,
        value: escape(`${a.decision} by ${a.by ?? 'someone'}${a.comment ? ` — "${a.comment}"` : ''}`),
        short: false,
      })),
  ];
  return {
    text: `${look.emoji} ${link} ${look.verb} (${escape(ref)}${commit ? ` @ ${commit}` : ''})`.trim(),
    attachments: [
      {
        fallback: `${name} ${look.verb}`,
        color: look.color,
        title: name,
        ...(notice.url && { title_link: notice.url }),
        ...(build.reason &&
          notice.event === 'finished' &&
          build.status !== 'success' && { text: escape(build.reason.message) }),
        fields,
        footer: 'Slipway',
        ts: Math.floor((build.finishedAt ?? build.startedAt ?? build.createdAt) / 1000),
      },
    ],
  };
}

/** Slack's three control characters in message text. */
function escape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Hides credentials and tokens in paths (Slack webhook URLs are secrets) for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? '/…' : '/'}`;
  } catch {
    return 'invalid URL';
  }
}
