import type { Readable } from 'node:stream';
import { HookError } from './errors.js';

/**
 * Largest delivery accepted by default. Forges send far less (a GitHub push is a few KiB, a
 * pull request some tens; GitHub's own cap of 25 MB is for pathological pushes), and every
 * byte is held in memory until the signature is checked, by a caller nobody knows yet.
 */
export const DEFAULT_HOOK_BODY_LIMIT = 5 * 1024 * 1024;

/**
 * Largest delivery read as JSON before its signature is checked, when the hook URL does not
 * name the project (`?project=`): the payload must then say which repository it is about.
 * Deliveries with `?project=` are verified over the raw bytes first and never parsed unless
 * they are genuine.
 */
export const DEFAULT_UNNAMED_PARSE_LIMIT = 1024 * 1024;

const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a request body into one buffer, never holding more than `limit` bytes: a declared
 * `Content-Length` over the limit is refused before a byte is read, and a body that grows past
 * it (chunked, or lying about its length) is refused as soon as it does, the rest discarded
 * unread into memory. Rejects with `HookError` 413.
 */
export function readCapped(stream: Readable, limit: number, declared: string | undefined): Promise<Buffer> {
  const tooLarge = () =>
    new HookError(
      413,
      'payload_too_large',
      `the delivery is larger than the ${limit} bytes accepted`,
      'too_large',
    );
  const length = declared === undefined ? undefined : Number(declared);
  if (length !== undefined && Number.isFinite(length) && length > limit) {
    stream.resume();
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        stream.off('data', onData);
        // Keep draining without keeping: the answer can still reach the sender.
        stream.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    stream.on('data', onData);
    stream.once('end', () => resolve(Buffer.concat(chunks, size)));
    stream.once('error', reject);
  });
}

/**
 * The JSON object a delivery carries: strict UTF-8 (a body with other bytes is named as such,
 * never read with replacement characters), GitHub's form-encoded `payload=` field unwrapped.
 * Throws `HookError` 400 with the reason.
 */
export function decodeBody(raw: Buffer | undefined, contentType: string | undefined): object {
  if (raw === undefined || raw.length === 0)
    throw new HookError(400, 'invalid_json', 'the request body is empty', 'invalid_payload');
  let json: string;
  try {
    json = STRICT_UTF8.decode(raw);
  } catch {
    throw new HookError(400, 'invalid_json', 'the request body is not valid UTF-8 JSON', 'invalid_payload');
  }
  if (contentType?.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    // GitHub's "application/x-www-form-urlencoded" content type: the JSON is the `payload` field.
    const form = new URLSearchParams(json).get('payload');
    if (form === null)
      throw new HookError(
        400,
        'invalid_json',
        'the form-encoded body has no "payload" field',
        'invalid_payload',
      );
    json = form;
  }
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch (error) {
    throw new HookError(
      400,
      'invalid_json',
      `the request body is not valid JSON: ${(error as Error).message}`,
      'invalid_payload',
    );
  }
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new HookError(400, 'invalid_json', 'the request body must be a JSON object', 'invalid_payload');
  }
  return payload;
}
