import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oidcSettingsFrom, withOidcOptions, type OidcCliOptions } from './oidc-options.js';

describe('--oidc-* options', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-oidc-opts-'));
    await writeFile(join(dir, 'secret'), 's3cret\n');
    await writeFile(join(dir, 'empty'), '\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const base: OidcCliOptions = {
    oidcIssuer: 'https://id.example.com/realms/x',
    oidcClientId: 'slipway',
    oidcAdminGroups: 'ops, ci-admins',
    oidcViewerEmails: 'a@b.example,@corp.example',
  };

  it('builds the settings, the redirect URL from the public URL, the secret from a file or the environment', () => {
    const settings = oidcSettingsFrom(
      { ...base, oidcClientSecretFile: join(dir, 'secret') },
      'https://ci.example.com/slipway/',
      {},
    )!;
    expect(settings.redirectUrl.href).toBe('https://ci.example.com/slipway/auth/oidc/callback');
    expect(settings.clientSecret).toBe('s3cret');
    expect(settings.scopes).toEqual(['openid', 'profile', 'email']);
    expect(settings.groupsClaim).toBe('groups');
    expect(settings.roles.admin.groups).toEqual(['ops', 'ci-admins']);
    expect(settings.roles.viewer.emails).toEqual(['a@b.example', '@corp.example']);
    const fromEnv = oidcSettingsFrom({ ...base, oidcScopes: 'email groups' }, 'https://ci.example.com', {
      SLIPWAY_OIDC_CLIENT_SECRET: 'env-secret',
    })!;
    expect(fromEnv.clientSecret).toBe('env-secret');
    expect(fromEnv.scopes).toEqual(['openid', 'email', 'groups']);
    expect(oidcSettingsFrom({}, undefined, {})).toBeUndefined();
  });

  it('refuses what would only fail at the first sign-in, naming the option', () => {
    const bad: Array<[OidcCliOptions, string | undefined, RegExp]> = [
      [{ oidcClientId: 'x' }, undefined, /--oidc-client-id needs --oidc-issuer/],
      [
        { ...base, oidcIssuer: 'http://id.example.com' },
        'https://ci',
        /https:\/\/ URL \(http only for this machine\)/,
      ],
      [{ ...base, oidcClientId: '' }, 'https://ci', /needs --oidc-client-id/],
      [base, undefined, /needs --public-url/],
      [{ ...base, oidcAdminGroups: undefined, oidcViewerEmails: undefined }, 'https://ci', /role mapping/],
      [
        { ...base, oidcMemberEmails: 'not-an-address' },
        'https://ci',
        /--oidc-member-emails: "not-an-address"/,
      ],
      [{ ...base, oidcClientSecretFile: join(dir, 'missing') }, 'https://ci', /ENOENT/],
      [{ ...base, oidcClientSecretFile: join(dir, 'empty') }, 'https://ci', /is empty/],
      [{ ...base, oidcRedirectUrl: 'https://ci/elsewhere' }, undefined, /must end in \/auth\/oidc\/callback/],
    ];
    for (const [options, publicUrl, message] of bad) {
      expect(() => oidcSettingsFrom(options, publicUrl, {})).toThrow(message);
    }
    expect(() =>
      oidcSettingsFrom({ ...base, oidcClientSecretFile: join(dir, 'secret') }, 'https://ci', {
        SLIPWAY_OIDC_CLIENT_SECRET: 'x',
      }),
    ).toThrow(/give the client secret once/);
    // An IdP on this machine may be plain http.
    expect(
      oidcSettingsFrom({ ...base, oidcIssuer: 'http://localhost:9000' }, 'https://ci', {}),
    ).toBeDefined();
  });

  it('offers no option for the secret itself (command lines are readable by every user)', () => {
    const names = withOidcOptions(new Command()).options.map((o) => o.long);
    expect(names).toContain('--oidc-client-secret-file');
    expect(names).not.toContain('--oidc-client-secret');
  });
});
