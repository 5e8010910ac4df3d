/**
 * E-mail notifications: the SMTP transport (nodemailer), the notifier the hub calls for each
 * finished build, the message it sends, and the project settings' API routes.
 */
export { EmailNotifier, EmailError, authorAddress, recipientsOf } from './email-notifier.js';
export type { EmailNotifierOptions } from './email-notifier.js';
export { composeEmail, failingStep, stepTail, TAIL_LINES } from './message.js';
export { createSmtpTransport, SMTP_TLS } from './smtp.js';
export type { MailMessage, MailTransport, SmtpConfig, SmtpTls } from './smtp.js';
export { registerEmailRoutes } from './routes.js';
