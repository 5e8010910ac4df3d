import { checkHexHmac } from '../signatures.js';
import {
  deletion,
  field,
  header,
  isZeroSha,
  num,
  pullRequestAction,
  pushAction,
  required,
  text,
  urls,
} from './payload.js';
import type { ForgeAdapter, HookAction } from './types.js';

const REPO_URLS = [
  ['repository', 'clone_url'],
  ['repository', 'ssh_url'],
  ['repository', 'html_url'],
];

/** `synchronized` is Gitea's and Gogs' word for GitHub's `synchronize`. */
const PR_ACTIONS = new Set(['opened', 'synchronized', 'synchronize', 'reopened']);

/** Gitea, Forgejo and Gogs webhooks ("Gitea"/"Forgejo"/"Gogs" type), signed with a hex HMAC. */
export const gitea: ForgeAdapter = {
  name: 'gitea',
  eventName: (headers) => header(headers, 'x-gitea-event', 'x-forgejo-event', 'x-gogs-event'),
  deliveryId: (headers) => header(headers, 'x-gitea-delivery', 'x-forgejo-delivery', 'x-gogs-delivery'),
  repoUrls: (payload) => urls(payload, REPO_URLS),
  verify: (headers, raw, secret) =>
    Promise.resolve(
      checkHexHmac(
        header(headers, 'x-gitea-signature', 'x-forgejo-signature', 'x-gogs-signature'),
        raw,
        secret,
      ),
    ),
  parse(event, payload): HookAction {
    const sender = text(payload, 'sender', 'login') ?? text(payload, 'sender', 'username');
    switch (event) {
      case 'push': {
        const ref = required(event, payload, 'ref');
        const after = text(payload, 'after');
        if (isZeroSha(after)) return deletion(ref);
        return pushAction(ref, after, sender);
      }
      case 'pull_request':
        return pullRequest(payload, sender);
      case 'create':
      case 'delete':
        return { kind: 'ignore', why: `"${event}" events are not built; pushes of branches and tags are` };
      case 'ping':
        return { kind: 'ping' };
      default:
        return { kind: 'ignore', why: `"${event}" events are not built` };
    }
  },
};

function pullRequest(payload: unknown, sender: string | undefined): HookAction {
  return pullRequestAction(payload, sender, {
    actions: PR_ACTIONS,
    actionNames: 'opened, synchronized, reopened',
    isFork,
  });
}

/** Gitea names the head and base repositories by `repo_id` (and `repo`); unknown counts as a fork. */
function isFork(payload: unknown): boolean {
  const headId =
    num(payload, 'pull_request', 'head', 'repo_id') ?? num(payload, 'pull_request', 'head', 'repo', 'id');
  const baseId =
    num(payload, 'pull_request', 'base', 'repo_id') ?? num(payload, 'pull_request', 'base', 'repo', 'id');
  if (headId !== undefined && baseId !== undefined) return headId !== baseId;
  const head = text(payload, 'pull_request', 'head', 'repo', 'full_name');
  const base =
    text(payload, 'pull_request', 'base', 'repo', 'full_name') ?? text(payload, 'repository', 'full_name');
  if (field(payload, 'pull_request', 'head', 'repo') === null) return true;
  return head === undefined || base === undefined || head.toLowerCase() !== base.toLowerCase();
}
