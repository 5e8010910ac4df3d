import type * as client from 'openid-client';
import type { OidcSettings } from './settings.js';

let library: typeof client | undefined;

/** openid-client, imported at the first sign-in: a server without `--oidc-issuer` never loads it. */
export async function openidClient(): Promise<typeof client> {
  library ??= await import('openid-client');
  return library;
}

/** openid-client if a sign-in has imported it; before that no error can be one of its classes. */
export function importedOpenidClient(): typeof client | undefined {
  return library;
}

/**
 * The OpenID Provider as Slipway talks to it: its metadata read (discovery) at the first
 * sign-in rather than at start-up, so the server starts while the IdP is down, and read again
 * after a failure instead of caching the failure.
 */
export class OidcProvider {
  private configuration: Promise<client.Configuration> | undefined;

  constructor(readonly settings: OidcSettings) {}

  /** The discovered configuration; rejects with why the IdP could not be read. */
  config(): Promise<client.Configuration> {
    this.configuration ??= this.discover().catch((error: unknown) => {
      this.configuration = undefined;
      throw error;
    });
    return this.configuration;
  }

  private async discover(): Promise<client.Configuration> {
    const { issuer, clientId, clientSecret } = this.settings;
    const client = await openidClient();
    const auth = clientSecret === undefined ? client.None() : client.ClientSecretBasic(clientSecret);
    const config = await client.discovery(
      issuer,
      clientId,
      { redirect_uris: [this.settings.redirectUrl.href], response_types: ['code'] },
      auth,
      // Plain http only for an IdP on this machine (tests, a local Dex); checked at start-up.
      issuer.protocol === 'http:'
        ? { execute: [client.allowInsecureRequests], timeout: 15 }
        : { timeout: 15 },
    );
    // The id_token's signature is checked against the IdP's keys too, not only its claims
    // (OIDC lets a client skip that for a token fetched over TLS; a compromised or misrouted
    // token endpoint would then go unnoticed).
    client.enableNonRepudiationChecks(config);
    return config;
  }
}
