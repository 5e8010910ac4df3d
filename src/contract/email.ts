import { Type, type Static } from '@sinclair/typebox';
import { projectPath, type Endpoint } from './api.js';

/**
 * A project's e-mail notifications in the API (`/projects/{owner}/{name}/email`): when to
 * mail, to whom, and what became of each message.
 */

/** When a project's builds are mailed. */
export const EMAIL_WHEN = ['failure', 'fixed', 'always', 'never'] as const;
export type EmailWhen = (typeof EMAIL_WHEN)[number];

/** One address, without a display name: what SMTP's RCPT TO takes. */
const Address = Type.String({
  minLength: 3,
  maxLength: 254,
  pattern: '^[^\\s@<>,;"()\\[\\]\\\\]+@[^\\s@<>,;"()\\[\\]\\\\]+$',
  description: 'an e-mail address such as dev@example.com',
});

const When = Type.Union(
  EMAIL_WHEN.map((w) => Type.Literal(w)),
  {
    description:
      'failure: builds that end failure, error or lost; fixed: those, and the first success after one on the ' +
      'same branch; always: every finished build; never: none',
  },
);

export const EmailSettingsSchema = Type.Object(
  {
    when: When,
    toAuthor: Type.Optional(
      Type.Boolean({
        description: "Mail the commit's author when the build knows the address; default true",
      }),
    ),
    recipients: Type.Optional(Type.Array(Address, { maxItems: 50, description: 'Mailed for every notice' })),
  },
  { additionalProperties: false, title: 'EmailSettings' },
);
export type EmailSettingsUpdate = Static<typeof EmailSettingsSchema>;

export const EmailSettingsViewSchema = Type.Object(
  {
    when: When,
    toAuthor: Type.Boolean(),
    recipients: Type.Array(Type.String()),
    smtpConfigured: Type.Boolean({
      description:
        'Whether this server has an SMTP server (slipway server --smtp-host); without one nothing is sent',
    }),
  },
  { title: 'EmailSettingsView' },
);
export type EmailSettingsView = Static<typeof EmailSettingsViewSchema>;

export const EmailDeliverySchema = Type.Object(
  {
    build: Type.Integer({ description: 'The build number' }),
    recipients: Type.Array(Type.String()),
    subject: Type.String(),
    outcome: Type.Union([Type.Literal('sent'), Type.Literal('failed'), Type.Literal('skipped')]),
    attempts: Type.Integer(),
    message: Type.Union([Type.String(), Type.Null()], {
      description: "Why it failed (the SMTP server's last answer) or was skipped",
    }),
    at: Type.String({ format: 'date-time' }),
  },
  { title: 'EmailDelivery' },
);
export type EmailDeliveryDto = Static<typeof EmailDeliverySchema>;

/** The e-mail routes, for clients. */
export const emailEndpoints = {
  get: (slug: string): Endpoint<EmailSettingsView> => ({ method: 'GET', path: `${projectPath(slug)}/email` }),
  set: (slug: string, body: EmailSettingsUpdate): Endpoint<EmailSettingsView> => ({
    method: 'PUT',
    path: `${projectPath(slug)}/email`,
    body,
  }),
  deliveries: (slug: string): Endpoint<EmailDeliveryDto[]> => ({
    method: 'GET',
    path: `${projectPath(slug)}/email/deliveries`,
  }),
} as const;

/** How the server reaches its SMTP server (`slipway server --smtp-*`): read by the CLI, used by the server. */
export interface SmtpConfig {
  host: string;
  port: number;
  /**
   * `tls`: TLS from the first byte (port 465, `smtps://`); `starttls`: plain connection
   * upgraded with STARTTLS, refused when the server does not offer it (port 587); `none`: no
   * TLS at all (a relay on the same host or network).
   */
  tls: SmtpTls;
  user?: string;
  /** From `SLIPWAY_SMTP_PASSWORD` or `--smtp-password-file`: never an option's value. */
  password?: string;
  /** The From address: `Slipway <ci@example.com>` or `ci@example.com`. */
  from: string;
  /** Bound on connecting, the greeting and each answer; default 20 s. */
  timeoutMs?: number;
}

export const SMTP_TLS = ['tls', 'starttls', 'none'] as const;
export type SmtpTls = (typeof SMTP_TLS)[number];
