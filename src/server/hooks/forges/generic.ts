import { HookError } from '../errors.js';
import { checkPrefixedHmac } from '../signatures.js';
import { deletion, field, header, pushAction, text, urls } from './payload.js';
import type { ForgeAdapter, HookAction } from './types.js';

/**
 * Slipway's own webhook format, for forges and tools not listed. POST JSON to
 * `/hooks/generic` (optionally `?project=owner/name`) with:
 * - `X-Slipway-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed with the project's webhook secret>`
 * - `X-Slipway-Delivery: <unique id>` (optional; a repeated id starts no second build)
 * - body `{ "repository": "<clone URL>", "ref": "refs/heads/main" | "refs/tags/v1",
 *   "commit": "<sha>", "event": "push" | "tag" | "pull_request" | "ping", "fork": false,
 *   "deleted": false, "sender": "<who>" }`; `branch` or `tag` may replace `ref`. Without
 *   `repository` the project must be named by `?project=` or a `project` field.
 */
export const generic: ForgeAdapter = {
  name: 'generic',
  eventName: (_headers, payload) =>
    text(payload, 'event') ??
    (text(payload, 'tag') !== undefined || text(payload, 'ref')?.startsWith('refs/tags/') ? 'tag' : 'push'),
  deliveryId: (headers) => header(headers, 'x-slipway-delivery'),
  repoUrls: (payload) => urls(payload, [['repository'], ['repository', 'url'], ['repository', 'clone_url']]),
  verify: (headers, raw, secret) =>
    Promise.resolve(checkPrefixedHmac(header(headers, 'x-slipway-signature'), raw, secret)),
  parse(event, payload): HookAction {
    if (event === 'ping') return { kind: 'ping' };
    if (!['push', 'tag', 'pull_request'].includes(event)) {
      throw new HookError(
        400,
        'invalid_request',
        `event "${event}" is not one of push, tag, pull_request, ping`,
        'invalid_payload',
        { field: 'event' },
      );
    }
    const ref = refOf(payload, event);
    if (field(payload, 'deleted') === true) return deletion(ref);
    const sender = text(payload, 'sender');
    const action = pushAction(ref, text(payload, 'commit'), sender);
    if (action.kind !== 'build' || event !== 'pull_request') return action;
    if (action.event !== 'push')
      return { kind: 'ignore', why: `a pull request's ref must be a branch, not ${ref}` };
    // Only an explicit `"fork": false` makes a pull request trusted.
    return { ...action, event: 'pull_request', fork: field(payload, 'fork') !== false };
  },
};

function refOf(payload: unknown, event: string): string {
  const ref = text(payload, 'ref');
  if (ref !== undefined)
    return ref.startsWith('refs/') ? ref : `refs/${event === 'tag' ? 'tags' : 'heads'}/${ref}`;
  const tag = text(payload, 'tag');
  if (tag !== undefined) return `refs/tags/${tag}`;
  const branch = text(payload, 'branch');
  if (branch !== undefined) return `refs/heads/${branch}`;
  throw new HookError(
    400,
    'invalid_request',
    'the payload names no ref: give "ref", "branch" or "tag"',
    'invalid_payload',
    { field: 'ref' },
  );
}
