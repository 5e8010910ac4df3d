import type { Kysely } from 'kysely';
import { EMAIL_WHEN, type EmailWhen } from '../contract/email.js';
import type { Database } from './schema.js';
import type { EmailDeliveryRow } from './schema-email.js';
import type { Build, Status } from './types.js';

/**
 * Rows of e-mail notifications (`src/server/email` sends them): each project's settings, the
 * status a branch had before a build (for "fixed"), and each message's outcome.
 */

export { EMAIL_WHEN, type EmailWhen };

export interface EmailSettings {
  /**
   * `failure`: builds that end failure, error or lost; `fixed`: those, and a success after one
   * of those on the same branch; `always`: every finished build; `never`: none (kept settings).
   */
  when: EmailWhen;
  /** Mail the commit's author, when the build knows the author's address. */
  toAuthor: boolean;
  /** Addresses mailed for every notice. */
  recipients: string[];
}

export interface EmailDelivery {
  id: number;
  buildId: number;
  buildNumber: number;
  recipients: string[];
  subject: string;
  outcome: 'sent' | 'failed' | 'skipped';
  attempts: number;
  message: string | null;
  createdAt: number;
}

export type NewEmailDelivery = Omit<EmailDelivery, 'id' | 'buildNumber' | 'createdAt'> & {
  projectId: number;
};

/** A project's e-mail settings; null when it has none (nothing is mailed). */
export async function getEmailSettings(
  db: Kysely<Database>,
  projectId: number,
): Promise<EmailSettings | null> {
  const row = await db
    .selectFrom('project_email')
    .selectAll()
    .where('project_id', '=', projectId)
    .executeTakeFirst();
  if (row === undefined) return null;
  return {
    when: (EMAIL_WHEN as readonly string[]).includes(row.notify_when)
      ? (row.notify_when as EmailWhen)
      : 'never',
    toAuthor: row.to_author === 1,
    recipients: parseList(row.recipients),
  };
}

/** Sets (replaces) a project's e-mail settings. */
export async function setEmailSettings(
  db: Kysely<Database>,
  projectId: number,
  settings: EmailSettings,
): Promise<void> {
  const values = {
    notify_when: settings.when,
    to_author: settings.toAuthor ? 1 : 0,
    recipients: JSON.stringify(settings.recipients),
    updated_at: Date.now(),
  };
  await db
    .insertInto('project_email')
    .values({ project_id: projectId, ...values })
    .onConflict((oc) => oc.column('project_id').doUpdateSet(values))
    .execute();
}

/** Statuses that say something about the code: cancelled and skipped builds say nothing. */
const VERDICTS: readonly Status[] = ['success', 'failure', 'error', 'lost'];

/**
 * The final status of the branch's latest build before `build` that reached a verdict
 * (success, failure, error or lost; cancelled and skipped builds are passed over); null when
 * there is none.
 */
export async function previousVerdict(db: Kysely<Database>, build: Build): Promise<Status | null> {
  const row = await db
    .selectFrom('builds')
    .select('status')
    .where('project_id', '=', build.projectId)
    .where('branch', '=', build.branch)
    .where('tag', build.tag === null ? 'is' : '=', build.tag)
    .where('id', '<', build.id)
    .where('status', 'in', [...VERDICTS])
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.status ?? null;
}

export async function recordEmailDelivery(db: Kysely<Database>, delivery: NewEmailDelivery): Promise<void> {
  await db
    .insertInto('email_deliveries')
    .values({
      build_id: delivery.buildId,
      project_id: delivery.projectId,
      recipients: JSON.stringify(delivery.recipients),
      subject: delivery.subject,
      outcome: delivery.outcome,
      attempts: delivery.attempts,
      message: delivery.message,
      created_at: Date.now(),
    })
    .execute();
}

/** A project's latest messages, newest first; with `buildId`, that build's only. */
export async function listEmailDeliveries(
  db: Kysely<Database>,
  projectId: number,
  options: { buildId?: number; limit?: number } = {},
): Promise<EmailDelivery[]> {
  let query = db
    .selectFrom('email_deliveries')
    .innerJoin('builds', 'builds.id', 'email_deliveries.build_id')
    .selectAll('email_deliveries')
    .select('builds.number as build_number')
    .where('email_deliveries.project_id', '=', projectId);
  if (options.buildId !== undefined) query = query.where('email_deliveries.build_id', '=', options.buildId);
  const rows = await query
    .orderBy('email_deliveries.id', 'desc')
    .limit(options.limit ?? 20)
    .execute();
  return rows.map((row) => toDelivery(row));
}

function toDelivery(row: EmailDeliveryRow & { build_number: number }): EmailDelivery {
  return {
    id: Number(row.id),
    buildId: Number(row.build_id),
    buildNumber: Number(row.build_number),
    recipients: parseList(row.recipients),
    subject: row.subject,
    outcome: row.outcome as EmailDelivery['outcome'],
    attempts: row.attempts,
    message: row.message,
    createdAt: Number(row.created_at),
  };
}

function parseList(json: string): string[] {
  try {
    const list: unknown = JSON.parse(json);
    return Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
