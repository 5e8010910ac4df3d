import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { verify as verifyGithub } from '@octokit/webhooks-methods';
import type { Verdict } from './forges/types.js';

/**
 * Signature checks of each forge, all over the raw body bytes and in constant time.
 * - GitHub `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>` (checked by `@octokit/webhooks-methods`);
 * - Slipway's generic hook and `/hooks/scripts`: `X-Slipway-Signature`, same format;
 * - Gitea/Forgejo/Gogs `X-Gitea-Signature` (`X-Forgejo-Signature`, `X-Gogs-Signature`): bare hex HMAC-SHA256;
 * - GitLab `X-Gitlab-Token`: the secret itself.
 */

/** `sha256=<hex>` as GitHub sends it. */
export async function checkGithubSignature(
  signature: string | undefined,
  raw: Buffer,
  secret: string,
): Promise<Verdict> {
  if (signature === undefined) return 'missing';
  if (!/^sha256=[0-9a-f]{64}$/i.test(signature)) return 'bad';
  // The library signs a string: bytes that are not UTF-8 would not survive the round trip, so
  // such a body cannot match and is refused rather than verified over altered text.
  const body = raw.toString('utf8');
  if (!Buffer.from(body, 'utf8').equals(raw)) return 'bad';
  return (await verifyGithub(secret, body, signature.toLowerCase())) ? 'ok' : 'bad';
}

/** `sha256=<hex>` (generic hooks) over the raw bytes. */
export function checkPrefixedHmac(signature: string | undefined, raw: Buffer, secret: string): Verdict {
  if (signature === undefined) return 'missing';
  const match = /^sha256=([0-9a-f]{64})$/i.exec(signature);
  if (!match) return 'bad';
  return sameBytes(Buffer.from(match[1]!.toLowerCase(), 'hex'), hmac(secret, raw)) ? 'ok' : 'bad';
}

/** Bare hex HMAC-SHA256, as Gitea, Forgejo and Gogs send it. */
export function checkHexHmac(signature: string | undefined, raw: Buffer, secret: string): Verdict {
  if (signature === undefined) return 'missing';
  if (!/^[0-9a-f]{64}$/i.test(signature)) return 'bad';
  return sameBytes(Buffer.from(signature.toLowerCase(), 'hex'), hmac(secret, raw)) ? 'ok' : 'bad';
}

/** GitLab's token header: the secret, compared without leaking its length or contents by timing. */
export function checkToken(token: string | undefined, secret: string): Verdict {
  if (token === undefined) return 'missing';
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(token), digest(secret)) ? 'ok' : 'bad';
}

/** `sha256=<hex HMAC-SHA256 of body>`: what a generic sender puts in `X-Slipway-Signature`. */
export function signBody(secret: string, raw: Buffer | string): string {
  return `sha256=${hmac(secret, typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw).toString('hex')}`;
}

function hmac(secret: string, raw: Buffer): Buffer {
  return createHmac('sha256', secret).update(raw).digest();
}

function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
