/**
 * `slipway server`'s SMTP options, for e-mail notifications. The password is never an option's
 * value (any user can read a process's command line): it comes from `SLIPWAY_SMTP_PASSWORD` or
 * from a file named by `--smtp-password-file`.
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { SMTP_TLS, type SmtpConfig, type SmtpTls } from '../contract/email.js';
import { UsageError } from './errors.js';

export interface SmtpCliOptions {
  smtpUrl?: string;
  smtpHost?: string;
  smtpPort?: string;
  smtpTls?: SmtpTls;
  smtpUser?: string;
  smtpPasswordFile?: string;
  smtpFrom?: string;
}

export const SMTP_PASSWORD_ENV = 'SLIPWAY_SMTP_PASSWORD';

/** Adds the SMTP options to a command (`server`). */
export function withSmtpOptions(command: Command): Command {
  return command
    .addOption(
      new Option(
        '--smtp-url <url>',
        'e-mail: the SMTP server as smtp://[user@]host[:port] or smtps://… (instead of --smtp-host and --smtp-port; no password in it)',
      ).env('SLIPWAY_SMTP_URL'),
    )
    .addOption(
      new Option('--smtp-host <host>', 'e-mail: the SMTP server (unset: no e-mail)').env('SLIPWAY_SMTP_HOST'),
    )
    .addOption(
      new Option(
        '--smtp-port <port>',
        'e-mail: its port (default 465 with --smtp-tls tls, 25 with none, else 587)',
      ).env('SLIPWAY_SMTP_PORT'),
    )
    .addOption(
      new Option(
        '--smtp-tls <mode>',
        'e-mail: tls (TLS from the start), starttls (required upgrade), none (default: tls for smtps:// or port 465, else starttls)',
      )
        .choices([...SMTP_TLS])
        .env('SLIPWAY_SMTP_TLS'),
    )
    .addOption(new Option('--smtp-user <user>', 'e-mail: user to log in as').env('SLIPWAY_SMTP_USER'))
    .addOption(
      new Option(
        '--smtp-password-file <file>',
        `e-mail: file holding the password (or the env ${SMTP_PASSWORD_ENV}; never on the command line)`,
      ).env('SLIPWAY_SMTP_PASSWORD_FILE'),
    )
    .addOption(
      new Option('--smtp-from <address>', 'e-mail: the From address, e.g. "Slipway <ci@example.com>"').env(
        'SLIPWAY_SMTP_FROM',
      ),
    );
}

/**
 * The SMTP settings the options and environment describe; undefined when no SMTP server is
 * named (the server then sends no e-mail). A wrong or incomplete setting is a usage error.
 * `SLIPWAY_SMTP_PASSWORD` is removed from `env` once read.
 */
export function smtpConfigFrom(
  options: SmtpCliOptions,
  env: NodeJS.ProcessEnv = process.env,
): SmtpConfig | undefined {
  let host = options.smtpHost;
  let port = options.smtpPort;
  let user = options.smtpUser;
  let tls = options.smtpTls;
  if (options.smtpUrl !== undefined) {
    if (host !== undefined) throw new UsageError('--smtp-url or --smtp-host, not both');
    let url: URL;
    try {
      url = new URL(options.smtpUrl);
    } catch {
      throw new UsageError(
        `--smtp-url "${options.smtpUrl}": expected smtp://host[:port] or smtps://host[:port]`,
      );
    }
    if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:')
      throw new UsageError(`--smtp-url: expected smtp:// or smtps://, not ${url.protocol}//`);
    if (url.password !== '')
      throw new UsageError(
        `--smtp-url holds a password: any user can read a command line; put it in ${SMTP_PASSWORD_ENV} or a file named by --smtp-password-file`,
      );
    if (url.hostname === '') throw new UsageError('--smtp-url: no host');
    host = url.hostname.replace(/^\[|\]$/g, '');
    port ??= url.port !== '' ? url.port : undefined;
    if (url.username !== '') user ??= decodeURIComponent(url.username);
    tls ??= url.protocol === 'smtps:' ? 'tls' : undefined;
  }
  const password = passwordFrom(options, env);
  if (host === undefined || host.trim() === '') {
    const stray = [
      [options.smtpPort, '--smtp-port'],
      [options.smtpUser, '--smtp-user'],
      [options.smtpFrom, '--smtp-from'],
      [password, options.smtpPasswordFile !== undefined ? '--smtp-password-file' : SMTP_PASSWORD_ENV],
    ].find(([value]) => value !== undefined);
    if (stray !== undefined)
      throw new UsageError(`${stray[1]} needs an SMTP server: give --smtp-host or --smtp-url`);
    return undefined;
  }
  const portNumber = port === undefined ? undefined : Number(port);
  if (portNumber !== undefined && (!Number.isInteger(portNumber) || portNumber < 1 || portNumber > 65535))
    throw new UsageError(`--smtp-port "${port}": expected 1-65535`);
  tls ??= portNumber === 465 ? 'tls' : 'starttls';
  if (options.smtpFrom === undefined || options.smtpFrom.trim() === '')
    throw new UsageError('--smtp-from is needed with an SMTP server: the address messages come from');
  if (!/@[^\s@>]+>?\s*$/.test(options.smtpFrom))
    throw new UsageError(
      `--smtp-from "${options.smtpFrom}": expected an address such as "Slipway <ci@example.com>"`,
    );
  if (password !== undefined && user === undefined)
    throw new UsageError('an SMTP password needs a user: give --smtp-user');
  return {
    host,
    port: portNumber ?? (tls === 'tls' ? 465 : tls === 'none' ? 25 : 587),
    tls,
    ...(user !== undefined && { user }),
    ...(password !== undefined && { password }),
    from: options.smtpFrom.trim(),
  };
}

/** From the file, else the environment; one trailing newline of the file is not part of it. */
function passwordFrom(options: SmtpCliOptions, env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = env[SMTP_PASSWORD_ENV];
  if (options.smtpPasswordFile !== undefined) {
    if (fromEnv !== undefined) throw new UsageError(`--smtp-password-file or ${SMTP_PASSWORD_ENV}, not both`);
    let text: string;
    try {
      text = readFileSync(options.smtpPasswordFile, 'utf8');
    } catch (error) {
      throw new UsageError(
        `--smtp-password-file "${options.smtpPasswordFile}": cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    const password = text.replace(/\r?\n$/, '');
    if (password === '') throw new UsageError(`--smtp-password-file "${options.smtpPasswordFile}" is empty`);
    return password;
  }
  // Read once, then gone from the environment: no child process (git, a local build) inherits it.
  delete env[SMTP_PASSWORD_ENV];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}
