import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smtpConfigFrom } from './smtp-options.js';

describe('slipway server --smtp-* options', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-smtp-'));
    await writeFile(join(dir, 'password'), 'from-a-file\n');
    await writeFile(join(dir, 'empty'), '');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const from = 'Slipway <ci@example.com>';

  it('no SMTP server: no e-mail', () => {
    expect(smtpConfigFrom({}, {})).toBeUndefined();
  });

  it('host, port and TLS mode, with defaults per mode', () => {
    expect(smtpConfigFrom({ smtpHost: 'mail.example.com', smtpFrom: from }, {})).toEqual({
      host: 'mail.example.com',
      port: 587,
      tls: 'starttls',
      from,
    });
    expect(smtpConfigFrom({ smtpHost: 'm', smtpPort: '465', smtpFrom: from }, {})).toMatchObject({
      port: 465,
      tls: 'tls',
    });
    expect(smtpConfigFrom({ smtpHost: 'm', smtpTls: 'none', smtpFrom: from }, {})).toMatchObject({
      port: 25,
      tls: 'none',
    });
    expect(smtpConfigFrom({ smtpUrl: 'smtps://ci%40x@mail.example.com', smtpFrom: from }, {})).toEqual({
      host: 'mail.example.com',
      port: 465,
      tls: 'tls',
      user: 'ci@x',
      from,
    });
    expect(smtpConfigFrom({ smtpUrl: 'smtp://mail.example.com:2525', smtpFrom: from }, {})).toMatchObject({
      port: 2525,
      tls: 'starttls',
    });
  });

  it('the password from the environment or a file, never from an option', () => {
    const env: NodeJS.ProcessEnv = { SLIPWAY_SMTP_PASSWORD: 'from-env', HOME: '/root' };
    expect(smtpConfigFrom({ smtpHost: 'm', smtpUser: 'ci', smtpFrom: from }, env)).toMatchObject({
      user: 'ci',
      password: 'from-env',
    });
    // Gone from the environment children inherit.
    expect(env).toEqual({ HOME: '/root' });
    expect(
      smtpConfigFrom(
        { smtpHost: 'm', smtpUser: 'ci', smtpFrom: from, smtpPasswordFile: join(dir, 'password') },
        {},
      ),
    ).toMatchObject({ password: 'from-a-file' });
    expect(() => smtpConfigFrom({ smtpUrl: 'smtp://ci:hunter2@m', smtpFrom: from }, {})).toThrow(
      /--smtp-url holds a password: .*SLIPWAY_SMTP_PASSWORD or a file named by --smtp-password-file/,
    );
  });

  it.each([
    [{ smtpHost: 'm' }, /--smtp-from is needed/],
    [{ smtpHost: 'm', smtpFrom: 'nobody' }, /--smtp-from "nobody": expected an address/],
    [{ smtpHost: 'm', smtpFrom: from, smtpPort: '99999' }, /--smtp-port "99999": expected 1-65535/],
    [{ smtpUrl: 'http://m', smtpFrom: from }, /expected smtp:\/\/ or smtps:\/\/, not http:/],
    [{ smtpUrl: 'smtp://m', smtpHost: 'm', smtpFrom: from }, /--smtp-url or --smtp-host, not both/],
    [{ smtpFrom: from }, /--smtp-from needs an SMTP server/],
    [{ smtpHost: 'm', smtpFrom: from, smtpPasswordFile: '/nonexistent/pw' }, /cannot read it \(ENOENT\)/],
  ])('refuses %j', (options, message) => {
    expect(() => smtpConfigFrom(options, {})).toThrow(message);
  });

  it('refuses a password without a user, an empty file, and two sources', () => {
    expect(() => smtpConfigFrom({ smtpHost: 'm', smtpFrom: from }, { SLIPWAY_SMTP_PASSWORD: 'x' })).toThrow(
      /needs a user/,
    );
    expect(() =>
      smtpConfigFrom(
        { smtpHost: 'm', smtpUser: 'ci', smtpFrom: from, smtpPasswordFile: join(dir, 'empty') },
        {},
      ),
    ).toThrow(/is empty/);
    expect(() =>
      smtpConfigFrom(
        { smtpHost: 'm', smtpUser: 'ci', smtpFrom: from, smtpPasswordFile: join(dir, 'password') },
        { SLIPWAY_SMTP_PASSWORD: 'x' },
      ),
    ).toThrow(/not both/);
  });
});
