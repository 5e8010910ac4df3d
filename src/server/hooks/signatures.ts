import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Verdict } from './forges/types.js';

/**
 * Signature checks of each forge, all over the raw body bytes and in constant time.
 * - GitHub `X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`;
 * - Slipway's generic hook and `/hooks/scripts`: `X-Slipway-Signature`, same format;
 * - Gitea/Forgejo/Gogs `X-Gitea-Signature` (`X-Forgejo-Signature`, `X-Gogs-Signature`): bare hex HMAC-SHA256;
 * - GitLab `X-Gitlab-Token`: the secret itself.
 */

/**
 * `sha256=<hex>` as GitHub sends it, over the raw bytes: a body that is not UTF-8 but signed
 * right verifies, and is then refused for what it is (not UTF-8 JSON), not as forged.
 */
export function checkGithubSignature(
  signature: string | undefined,
  raw: Buffer,
  secret: string,
): Promise<Verdict> {
  return Promise.resolve(checkPrefixedHmac(signature, raw, secret));
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
