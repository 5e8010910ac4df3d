import { createRequire } from 'node:module';
import type Nodemailer from 'nodemailer';
import type { SmtpConfig } from '../../contract/email.js';

export { SMTP_TLS } from '../../contract/email.js';
export type { SmtpConfig, SmtpTls } from '../../contract/email.js';

/** One message as handed to the transport. */
export interface MailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
}

/** The subset of a nodemailer transporter the notifier needs (tests and other transports fit). */
export interface MailTransport {
  /** Resolves once the SMTP server accepted the message for every recipient it took. */
  sendMail(message: MailMessage): Promise<unknown>;
  close(): void;
}

/**
 * nodemailer, loaded when a transport is made: servers without `--smtp-host` never need it.
 * CommonJS through `require`, so that making a transport stays synchronous.
 */
const load = createRequire(import.meta.url);

/** A nodemailer SMTP transport for the config; connects only when a message is sent. */
export function createSmtpTransport(config: SmtpConfig): MailTransport {
  const nodemailer = load('nodemailer') as typeof Nodemailer;
  const timeout = config.timeoutMs ?? 20_000;
  const transporter = nodemailer.createTransport({
    host: config.host,
    port: config.port,
    secure: config.tls === 'tls',
    requireTLS: config.tls === 'starttls',
    ignoreTLS: config.tls === 'none',
    ...(config.user !== undefined && {
      auth: { user: config.user, ...(config.password !== undefined && { pass: config.password }) },
    }),
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    // nodemailer's own logger would print the conversation, AUTH included.
    logger: false,
    debug: false,
  });
  return {
    sendMail: (message) => transporter.sendMail(message),
    close: () => transporter.close(),
  };
}
