import type { Generated, Selectable } from 'kysely';

/**
 * Tables of e-mail notifications (migration `0013_email`); read and written by
 * `src/store/email.ts` for `src/server/email`. Booleans are integers 0/1, times epoch
 * milliseconds, as in `schema.ts`.
 */

/** A project's e-mail settings; no row: no e-mail. */
export interface ProjectEmailTable {
  project_id: number;
  /** `failure`, `fixed`, `always` or `never`. */
  notify_when: string;
  /** 1: mail the commit's author (when the build knows the author's address). */
  to_author: number;
  /** JSON array of addresses mailed for every notice. */
  recipients: string;
  updated_at: number;
}

/** One message's outcome, after its retries (or why none was sent). */
export interface EmailDeliveriesTable {
  id: Generated<number>;
  build_id: number;
  project_id: number;
  /** JSON array of the addresses (empty when there was nobody to mail). */
  recipients: string;
  subject: string;
  /** `sent`, `failed` or `skipped` (nobody to mail). */
  outcome: string;
  attempts: number;
  /** Why it failed or was skipped (the SMTP server's answer; never a password). */
  message: string | null;
  created_at: number;
}

export type ProjectEmailRow = Selectable<ProjectEmailTable>;
export type EmailDeliveryRow = Selectable<EmailDeliveriesTable>;
