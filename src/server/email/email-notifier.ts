import type { Kysely } from 'kysely';
import { getBuildRecords, type Build, type Database, type Status } from '../../store/index.js';
import {
  getEmailSettings,
  previousVerdict,
  recordEmailDelivery,
  type EmailSettings,
} from '../../store/email.js';
import type { LogStore } from '../logs/types.js';
import { sleep } from '../notify/delivery.js';
import type { BuildNotice, Notifier } from '../notify/types.js';
import { composeEmail, failingStep, stepTail } from './message.js';
import type { MailTransport } from './smtp.js';

export interface EmailNotifierOptions {
  db: Kysely<Database>;
  /** Where the failing step's tail is read from: stored lines, secrets already masked. */
  logs: LogStore;
  transport: MailTransport;
  from: string;
  /** Further attempts after a refused or failed one; default 3. */
  retries?: number;
  /** Wait before the first retry, doubled for each next one; default 2 s. */
  retryDelayMs?: number;
  /** Words never to show in a message or log (the SMTP password), whatever the server answers. */
  redact?: readonly string[];
}

/** A message that could not be sent after its retries: what the SMTP server said last. */
export class EmailError extends Error {
  override readonly name = 'EmailError';
}

/** Builds that went wrong: mailed on `failure`, and make the next success "fixed". */
const BROKEN: readonly Status[] = ['failure', 'error', 'lost'];

/**
 * Mails finished builds to the commit's author and/or a list, as each project's e-mail
 * settings say (`project_email`; no row: nothing). The hub calls it off the build's path, so
 * an SMTP server that refuses or does not answer delays no build: the message is retried
 * with growing delays, then given up. Every outcome (sent, failed with the server's answer,
 * skipped for want of a recipient) is stored in `email_deliveries` for the project's people;
 * a failure also rejects, which the hub writes to the server log.
 */
export class EmailNotifier implements Notifier {
  readonly name = 'e-mail';
  private readonly controller = new AbortController();

  constructor(private readonly options: EmailNotifierOptions) {}

  buildStarted(): Promise<void> {
    return Promise.resolve();
  }

  async buildFinished(notice: BuildNotice): Promise<void> {
    const { db } = this.options;
    const { build, project } = notice;
    const settings = await getEmailSettings(db, project.id);
    if (settings === null || settings.when === 'never') return;
    const broken = BROKEN.includes(build.status);
    const fixed =
      build.status === 'success' && BROKEN.includes((await previousVerdict(db, build)) ?? 'success');
    if (!wanted(settings, broken, fixed)) return;

    const failing = broken ? failingStep(await getBuildRecords(db, build.id)) : null;
    const content = composeEmail(notice, {
      fixed,
      ...(failing !== null && {
        tail: { ...failing, lines: await stepTail(this.options.logs, build.id, failing.stage, failing.step) },
      }),
    });
    const recipients = recipientsOf(settings, build);
    const record = (outcome: 'sent' | 'failed' | 'skipped', attempts: number, message: string | null) =>
      recordEmailDelivery(db, {
        buildId: build.id,
        projectId: project.id,
        recipients,
        subject: content.subject,
        outcome,
        attempts,
        message,
      });
    if (recipients.length === 0) {
      await record(
        'skipped',
        0,
        settings.toAuthor
          ? "nobody to mail: the commit author's e-mail address is not known and the list is empty"
          : 'nobody to mail: the list is empty',
      );
      return;
    }

    const retries = this.options.retries ?? 3;
    let delay = this.options.retryDelayMs ?? 2000;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.transport.sendMail({ from: this.options.from, to: recipients, ...content });
        await record('sent', attempt, null);
        return;
      } catch (error) {
        const why = this.describe(error);
        if (attempt > retries || this.controller.signal.aborted) {
          const message = `the SMTP server did not take the message after ${attempt} attempt(s): ${why}`;
          await record('failed', attempt, message);
          throw new EmailError(`e-mail to ${recipients.join(', ')}: ${message}`);
        }
      }
      await sleep(delay, this.controller.signal);
      delay *= 2;
    }
  }

  /** Stops waiting between retries (server shutdown): the next failure is the last. */
  close(): void {
    this.controller.abort();
    this.options.transport.close();
  }

  /** The SMTP server's answer or the network error, on one line, without a password in it. */
  private describe(error: unknown): string {
    let text = error instanceof Error ? error.message : String(error);
    for (const word of this.options.redact ?? [])
      if (word.length > 0) text = text.replaceAll(word, '********');
    return text.replace(/\s+/g, ' ').trim();
  }
}

function wanted(settings: EmailSettings, broken: boolean, fixed: boolean): boolean {
  switch (settings.when) {
    case 'always':
      return true;
    case 'failure':
      return broken;
    case 'fixed':
      return broken || fixed;
    case 'never':
      return false;
  }
}

/** The list, then the commit's author when asked for and known; each address once. */
export function recipientsOf(settings: EmailSettings, build: Build): string[] {
  const all = [...settings.recipients];
  if (settings.toAuthor) {
    const author = authorAddress(build.commitAuthor);
    if (author !== null) all.push(author);
  }
  const seen = new Set<string>();
  return all.filter((address) => {
    const key = address.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The address in git's `Name <e-mail>`; null when there is none. */
export function authorAddress(author: string | null): string | null {
  const address = author === null ? undefined : /<([^<>\s@]+@[^<>\s@]+)>\s*$/.exec(author)?.[1];
  return address ?? null;
}
