/**
 * What Slipway told the outside world about one build — the commit statuses posted to the
 * forge and the e-mails sent — as the build page reads them. Apart from the TypeBox schemas
 * (src/server/commit-status/routes.ts, src/contract/email.ts) so that the web UI takes these
 * calls without TypeBox; the server's answers never carry a token or a password.
 */
import { projectPath, type Endpoint } from './api.js';
import type { EmailDeliveryDto } from './email.js';

/** One post of a commit status (`GET …/builds/{number}/commit-statuses`), oldest first. */
export interface CommitStatusDeliveryDto {
  /** `status`: a commit status; `check`: a GitHub check run (absent from older servers: `status`). */
  kind?: 'status' | 'check';
  /** `github`, `gitlab`, `gitea`, or `unknown` when it could not be told. */
  forge: string;
  context: string;
  /** As the forge names it (GitHub has no `running`: `pending`; a check run: its status or conclusion). */
  state: string;
  outcome: 'delivered' | 'failed';
  httpStatus: number | null;
  attempts: number;
  /** Why it failed: the forge's answer, worded by the notifier. */
  message: string | null;
  /** Epoch ms. */
  at: number;
}

export type { EmailDeliveryDto };

export const notificationEndpoints = {
  commitStatuses: (slug: string, number: number): Endpoint<CommitStatusDeliveryDto[]> => ({
    method: 'GET',
    path: `${projectPath(slug)}/builds/${number}/commit-statuses`,
  }),
  /** The build's e-mails, newest first. */
  emailDeliveries: (slug: string, number: number): Endpoint<EmailDeliveryDto[]> => ({
    method: 'GET',
    path: `${projectPath(slug)}/email/deliveries?build=${number}`,
  }),
} as const;
