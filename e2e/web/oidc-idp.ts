import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** People the test OpenID Provider knows; any other login is signed in with no claims but `sub`. */
export const PEOPLE: Record<string, Record<string, unknown>> = {
  alice: { name: 'Alice Admin', email: 'alice@example.com', email_verified: true, groups: ['ci-admins'] },
  mo: { name: 'Mo Member', email: 'mo@example.com', email_verified: true, groups: ['developers'] },
  vera: { name: 'Vera Viewer', email: 'vera@example.com', email_verified: true, groups: ['staff'] },
  mallory: { name: 'Mallory', email: 'mallory@elsewhere.test', email_verified: true, groups: ['outsiders'] },
};

/**
 * How the tampering proxy changes the id_token of the next token response (stand-in: the
 * real provider never issues such tokens). `signature`: the payload changed, not re-signed;
 * the others re-signed with the provider's own key, so only the named check can catch them.
 */
export type Tamper = 'signature' | 'audience' | 'expired' | 'nonce' | 'replay';

export interface TestIdp {
  /** The issuer: `http://localhost:<port>` (another site than Slipway's 127.0.0.1). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Tamper with the next token response only. */
  tamperNext(how: Tamper): void;
  /**
   * Keeps the IdP's next answer (its redirect to Slipway's callback, with code and state) from
   * the browser, which gets a blank page instead; resolves to that answer's URL.
   */
  holdNextAnswer(): Promise<URL>;
  /** Token responses the proxy changed (each test checks its tampering happened). */
  tampered: Tamper[];
  close(): Promise<void>;
}

/**
 * A real OpenID Provider (`oidc-provider`, certified) with its development login and consent
 * pages, and in front of it a small proxy that can tamper with one token response. Slipway
 * and the browser both go through the proxy; without a tampering asked for it only relays.
 */
export async function startIdp(redirectUri: string): Promise<TestIdp> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };
  const clientId = 'slipway';
  const clientSecret = 'test-client-secret-4f1c';

  const front = createServer();
  await listen(front);
  const issuer = `http://localhost:${(front.address() as AddressInfo).port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    pkce: { required: () => true },
    jwks: { keys: [jwk] },
    cookies: { keys: ['slipway-test-cookie-key'] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    features: { devInteractions: { enabled: true } },
    findAccount: (_ctx: unknown, id: string) => ({
      accountId: id,
      claims: () => ({ sub: id, ...PEOPLE[id] }),
    }),
  });
  const back = createServer(provider.callback());
  await listen(back);
  const backPort = (back.address() as AddressInfo).port;

  let next: Tamper | undefined;
  let hold: ((url: URL) => void) | undefined;
  let lastIdToken: string | undefined;
  const tampered: Tamper[] = [];
  front.on('request', (req, res) => {
    const upstream = httpRequest(
      { host: '127.0.0.1', port: backPort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        const isToken = req.method === 'POST' && req.url?.split('?')[0] === '/token';
        const location = answer.headers.location;
        if (hold !== undefined && location?.startsWith(redirectUri)) {
          hold(new URL(location));
          hold = undefined;
          answer.resume();
          res.writeHead(200, { 'content-type': 'text/plain' }).end('held by the test');
          return;
        }
        if (!isToken || answer.statusCode !== 200) {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          return;
        }
        void readAll(answer).then((text) => {
          const body = JSON.parse(text) as { id_token: string };
          const issued = body.id_token;
          const how = next;
          next = undefined;
          if (how !== undefined) {
            body.id_token = tamper(how, issued, lastIdToken, privateKey);
            tampered.push(how);
          }
          lastIdToken = issued;
          const out = JSON.stringify(body);
          const headers = { ...answer.headers, 'content-length': String(Buffer.byteLength(out)) };
          res.writeHead(200, headers);
          res.end(out);
        });
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });

  return {
    issuer,
    clientId,
    clientSecret,
    tamperNext: (how) => {
      next = how;
    },
    tampered,
    holdNextAnswer: () => new Promise<URL>((resolve) => (hold = resolve)),
    close: async () => {
      front.closeAllConnections();
      back.closeAllConnections();
      await Promise.all([close(front), close(back)]);
    },
  };
}

function tamper(how: Tamper, idToken: string, previous: string | undefined, key: KeyObject): string {
  if (how === 'replay') {
    if (previous === undefined) throw new Error('replay needs an earlier id_token');
    return previous;
  }
  const [header, payload] = idToken.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  const now = Math.floor(Date.now() / 1000);
  if (how === 'signature') claims.sub = 'eve';
  if (how === 'audience') claims.aud = 'another-client';
  if (how === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  if (how === 'nonce') claims.nonce = 'not-the-nonce-slipway-sent';
  const body = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  if (how === 'signature') return `${body}.${idToken.split('.')[2]}`;
  return `${body}.${sign('sha256', Buffer.from(body), key).toString('base64url')}`;
}

async function readAll(stream: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

function listen(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // All interfaces: Chromium may try ::1 for `localhost` first.
    server.listen(0, () => resolve());
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}
