import type { Kysely } from 'kysely';
import { StoreError } from './errors.js';
import { runKept } from './kept-query.js';
import type { Database } from './schema.js';
import type { NotifyTargetRow } from './schema-hooks.js';

/** When a target is told: a build started, finished (any status), or finished without success. */
export const NOTIFY_EVENTS = ['started', 'finished', 'failed'] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

/** Where build notifications are posted. */
export interface NotifyTarget {
  id: number;
  /** Null: every project's builds. */
  projectId: number | null;
  url: string;
  /** Post a Slack-compatible `{text, attachments}` payload (Slack, Mattermost, Rocket.Chat incoming webhooks). */
  slack: boolean;
  events: NotifyEvent[];
  createdAt: number;
}

export interface NewNotifyTarget {
  projectId: number | null;
  url: string;
  slack?: boolean;
  /** Default: started and finished. */
  events?: NotifyEvent[];
}

/** Adds a target. Throws `StoreError('invalid')` for a URL that is not http(s) or an unknown event. */
export async function addNotifyTarget(
  db: Kysely<Database>,
  input: NewNotifyTarget,
  now: number = Date.now(),
): Promise<NotifyTarget> {
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new StoreError('invalid', `notification URL "${input.url}" is not a URL`, {
      details: { field: 'url' },
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new StoreError('invalid', `notification URL "${input.url}" must be http:// or https://`, {
      details: { field: 'url' },
    });
  }
  const events = input.events ?? ['started', 'finished'];
  const unknown = events.filter((e) => !(NOTIFY_EVENTS as readonly string[]).includes(e));
  if (events.length === 0 || unknown.length > 0) {
    throw new StoreError('invalid', `notification events must be some of ${NOTIFY_EVENTS.join(', ')}`, {
      details: { field: 'events' },
    });
  }
  const row = await db
    .insertInto('notify_targets')
    .values({
      project_id: input.projectId,
      url: input.url,
      slack: input.slack ? 1 : 0,
      events: [...new Set(events)].join(','),
      created_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return toTarget(row);
}

/** The targets of a project's builds: its own and the global ones. */
export async function listNotifyTargets(db: Kysely<Database>, projectId: number): Promise<NotifyTarget[]> {
  const { rows } = await runKept(db, 'listNotifyTargets', [projectId], ([id]) =>
    db
      .selectFrom('notify_targets')
      .selectAll()
      .where((eb) => eb.or([eb('project_id', '=', id), eb('project_id', 'is', null)]))
      .orderBy('id'),
  );
  return rows.map(toTarget);
}

/** Removes a target; false when there was none with this id. */
export async function removeNotifyTarget(db: Kysely<Database>, id: number): Promise<boolean> {
  const result = await db.deleteFrom('notify_targets').where('id', '=', id).executeTakeFirst();
  return result.numDeletedRows > 0n;
}

function toTarget(row: NotifyTargetRow): NotifyTarget {
  return {
    id: row.id,
    projectId: row.project_id,
    url: row.url,
    slack: row.slack === 1,
    events: row.events
      .split(',')
      .filter((e): e is NotifyEvent => (NOTIFY_EVENTS as readonly string[]).includes(e)),
    createdAt: row.created_at,
  };
}
