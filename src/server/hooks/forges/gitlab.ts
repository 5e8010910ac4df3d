import { checkToken } from '../signatures.js';
import { deletion, field, header, isZeroSha, num, pushAction, required, text, urls } from './payload.js';
import type { ForgeAdapter, HookAction } from './types.js';

const REPO_URLS = [
  ['project', 'git_http_url'],
  ['project', 'git_ssh_url'],
  ['project', 'web_url'],
  ['repository', 'git_http_url'],
  ['repository', 'git_ssh_url'],
  ['repository', 'homepage'],
];

/** GitLab project and group webhooks, authenticated by the `X-Gitlab-Token` header. */
export const gitlab: ForgeAdapter = {
  name: 'gitlab',
  eventName: (headers) => header(headers, 'x-gitlab-event'),
  deliveryId(headers) {
    // The event UUID is shared by every webhook the event fires; with the webhook's own UUID
    // the pair names one delivery (a retry keeps both).
    const event = header(headers, 'x-gitlab-event-uuid');
    const hook = header(headers, 'x-gitlab-webhook-uuid');
    if (event === undefined) return hook;
    return hook === undefined ? event : `${event}/${hook}`;
  },
  repoUrls: (payload) => urls(payload, REPO_URLS),
  verify: (headers, _raw, secret) => Promise.resolve(checkToken(header(headers, 'x-gitlab-token'), secret)),
  parse(event, payload): HookAction {
    const sender = text(payload, 'user_username') ?? text(payload, 'user', 'username');
    switch (event) {
      case 'Push Hook':
      case 'Tag Push Hook': {
        const ref = required(event, payload, 'ref');
        const checkout = text(payload, 'checkout_sha');
        if (isZeroSha(text(payload, 'after')) || field(payload, 'checkout_sha') === null)
          return deletion(ref);
        // checkout_sha is the commit; for an annotated tag `after` is the tag object.
        return pushAction(ref, checkout ?? text(payload, 'after'), sender);
      }
      case 'Merge Request Hook':
        return mergeRequest(payload, sender);
      default:
        return { kind: 'ignore', why: `"${event}" events are not built` };
    }
  },
};

function mergeRequest(payload: unknown, sender: string | undefined): HookAction {
  const event = 'Merge Request Hook';
  const action = required(event, payload, 'object_attributes', 'action');
  if (action === 'update' && field(payload, 'object_attributes', 'oldrev') === undefined) {
    return { kind: 'ignore', why: 'merge request updated without new commits' };
  }
  if (!['open', 'reopen', 'update'].includes(action)) {
    return {
      kind: 'ignore',
      why: `merge request action "${action}" is not built (only open, update with new commits, reopen)`,
    };
  }
  const branch = required(event, payload, 'object_attributes', 'source_branch');
  const commit = required(event, payload, 'object_attributes', 'last_commit', 'id');
  const source = num(payload, 'object_attributes', 'source_project_id');
  const target = num(payload, 'object_attributes', 'target_project_id');
  return {
    kind: 'build',
    event: 'pull_request',
    branch,
    commit,
    fork: source === undefined || target === undefined || source !== target,
    ...(sender !== undefined && { sender }),
  };
}
