import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

/** One message as the SMTP server received it: the envelope, and the DATA parsed minimally. */
export interface ReceivedMail {
  from: string;
  to: string[];
  /** Header names in lower case, values unfolded and decoded (RFC 2047). */
  headers: Record<string, string>;
  /** The body decoded from its transfer encoding (a single text part is all Slipway sends). */
  text: string;
  raw: string;
}

export interface SmtpPeerOptions {
  /** Refuse every recipient with this SMTP code (e.g. 550) and text; default: accept. */
  refuse?: { code: number; text: string };
  /** Require AUTH with exactly this user and password (over plain TCP: it is a test). */
  auth?: { user: string; password: string };
}

/**
 * A real SMTP server on loopback (`smtp-server`, the server side of nodemailer's authors) that
 * keeps what it is sent, or refuses it as configured. No TLS: the transport is tested with
 * `--smtp-tls none`; nodemailer's TLS is its own.
 */
export class SmtpPeer {
  readonly received: ReceivedMail[] = [];
  /** Recipients refused and logins failed, as the server answered them. */
  readonly refusals: string[] = [];
  private readonly server: SMTPServer;
  private waiters: (() => void)[] = [];

  constructor(private options: SmtpPeerOptions = {}) {
    this.server = new SMTPServer({
      authOptional: options.auth === undefined,
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth: (auth, _session, callback) => {
        const want = this.options.auth;
        if (want !== undefined && auth.username === want.user && auth.password === want.password)
          return callback(null, { user: auth.username });
        this.refusals.push(`auth ${auth.username ?? ''}`);
        callback(Object.assign(new Error('Authentication credentials invalid'), { responseCode: 535 }));
      },
      onRcptTo: (address: SMTPServerAddress, _session, callback) => {
        const refuse = this.options.refuse;
        if (refuse === undefined) return callback();
        this.refusals.push(`rcpt ${address.address}`);
        this.wake();
        callback(Object.assign(new Error(refuse.text), { responseCode: refuse.code }));
      },
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          this.received.push({
            from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
            ...parseMail(raw),
            raw,
          });
          this.wake();
          callback();
        });
      },
    });
  }

  /** Changes what the server does from the next command on. */
  configure(options: SmtpPeerOptions): void {
    this.options = options;
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.server.address() as AddressInfo).port;
  }

  /** Resolves once `count` messages arrived in all, or rejects after `limitMs`. */
  async waitForMail(count: number, limitMs = 90_000): Promise<ReceivedMail[]> {
    const deadline = Date.now() + limitMs;
    while (this.received.length < count) {
      if (Date.now() > deadline)
        throw new Error(`${this.received.length} of ${count} message(s) arrived within ${limitMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.slice(0, count);
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Headers and the decoded body of one single-part message. */
export function parseMail(raw: string): { headers: Record<string, string>; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = split === -1 ? raw : raw.slice(0, split);
  const body = split === -1 ? '' : raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers[line.slice(0, colon).trim().toLowerCase()] = decodeWords(line.slice(colon + 1).trim());
  }
  const encoding = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
  let text: string;
  if (encoding === 'base64') text = Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  else if (encoding === 'quoted-printable') text = quotedPrintable(body);
  else text = body;
  return { headers, text: text.replace(/\r\n/g, '\n') };
}

function quotedPrintable(text: string): string {
  const bytes = text
    .replace(/%/g, '=25')
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-F]{2})/gi, (_, hex: string) => `%${hex}`)
    .replace(/[^%]+/g, (run) => encodeURIComponent(run));
  return decodeURIComponent(bytes);
}

/** RFC 2047 encoded words (`=?UTF-8?Q?…?=`, `=?UTF-8?B?…?=`), as nodemailer writes them. */
function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_, _charset: string, kind: string, data: string) =>
      kind.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : quotedPrintable(data.replace(/_/g, ' ')),
    );
}
