import { checkGithubSignature } from '../signatures.js';
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
  ['repository', 'git_url'],
  ['repository', 'html_url'],
];

const PR_ACTIONS = new Set(['opened', 'synchronize', 'reopened']);

/** GitHub (and GitHub Enterprise) webhooks. */
export const github: ForgeAdapter = {
  name: 'github',
  eventName: (headers) => header(headers, 'x-github-event'),
  deliveryId: (headers) => header(headers, 'x-github-delivery'),
  repoUrls: (payload) => urls(payload, REPO_URLS),
  verify: (headers, raw, secret) => checkGithubSignature(header(headers, 'x-hub-signature-256'), raw, secret),
  parse(event, payload): HookAction {
    const sender = text(payload, 'sender', 'login');
    switch (event) {
      case 'ping':
        return { kind: 'ping' };
      case 'push': {
        const ref = required(event, payload, 'ref');
        const after = text(payload, 'after');
        if (field(payload, 'deleted') === true || isZeroSha(after)) return deletion(ref);
        // For an annotated tag `after` is the tag object; head_commit is the commit it points at.
        return pushAction(ref, text(payload, 'head_commit', 'id') ?? after, sender);
      }
      case 'pull_request':
        return pullRequest(payload, sender);
      case 'create':
      case 'delete':
        return { kind: 'ignore', why: `"${event}" events are not built; pushes of branches and tags are` };
      default:
        return { kind: 'ignore', why: `"${event}" events are not built` };
    }
  },
};

function pullRequest(payload: unknown, sender: string | undefined): HookAction {
  return pullRequestAction(payload, sender, {
    actions: PR_ACTIONS,
    actionNames: 'opened, synchronize, reopened',
    isFork,
  });
}

/** The head repository differs from the base one; a deleted head repository counts as a fork. */
export function isFork(payload: unknown): boolean {
  const head = field(payload, 'pull_request', 'head', 'repo');
  const base = field(payload, 'pull_request', 'base', 'repo');
  if (head === null || head === undefined) return true;
  const headId = num(head, 'id');
  const baseId = num(base, 'id');
  if (headId !== undefined && baseId !== undefined) return headId !== baseId;
  const headName = text(head, 'full_name');
  const baseName = text(base, 'full_name');
  return (
    headName === undefined || baseName === undefined || headName.toLowerCase() !== baseName.toLowerCase()
  );
}
