import type { IncomingHttpHeaders } from 'node:http';
import { HookError } from '../errors.js';
import type { HookAction } from './types.js';

/** Internal helpers for reading untrusted payloads without trusting their shape. */

export function field(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

export function text(value: unknown, ...path: string[]): string | undefined {
  const v = field(value, ...path);
  return typeof v === 'string' && v !== '' ? v : undefined;
}

export function num(value: unknown, ...path: string[]): number | undefined {
  const v = field(value, ...path);
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** A string field the event must have; a 400 naming it otherwise. */
export function required(event: string, value: unknown, ...path: string[]): string {
  const v = text(value, ...path);
  if (v === undefined) {
    throw new HookError(
      400,
      'invalid_request',
      `${event} payload has no ${path.join('.')} (expected a non-empty string)`,
      'invalid_payload',
      {
        field: path.join('.'),
      },
    );
  }
  return v;
}

export function header(headers: IncomingHttpHeaders, ...names: string[]): string | undefined {
  for (const name of names) {
    const v = headers[name.toLowerCase()];
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined && first.trim() !== '') return first.trim();
  }
  return undefined;
}

/** Distinct non-empty strings found at the given paths. */
export function urls(payload: unknown, paths: string[][]): string[] {
  const found = new Set<string>();
  for (const path of paths) {
    const v = text(payload, ...path);
    if (v !== undefined) found.add(v);
  }
  return [...found];
}

const ZERO_SHA = /^0+$/;

export function isZeroSha(sha: string | undefined): boolean {
  return sha !== undefined && ZERO_SHA.test(sha);
}

/**
 * A pushed ref as a build request: `refs/heads/x` builds branch x, `refs/tags/v` tag v; other
 * refs (notes, merge-request refs) are ignored.
 */
export function pushAction(ref: string, commit: string | undefined, sender: string | undefined): HookAction {
  const who = sender === undefined ? {} : { sender };
  const sha = commit === undefined || isZeroSha(commit) ? {} : { commit };
  if (ref.startsWith('refs/heads/')) {
    return { kind: 'build', event: 'push', branch: ref.slice('refs/heads/'.length), ...sha, ...who };
  }
  if (ref.startsWith('refs/tags/')) {
    const tag = ref.slice('refs/tags/'.length);
    return { kind: 'build', event: 'tag', branch: tag, tag, ...sha, ...who };
  }
  return { kind: 'ignore', why: `ref ${ref} is neither a branch nor a tag` };
}

export function deletion(ref: string): HookAction {
  return { kind: 'ignore', why: `${ref} was deleted; deletions are not built` };
}

/**
 * A pull request event in the shape GitHub and Gitea share (`action`, `pull_request.head.ref`
 * and `.sha`): a build of the head for the actions that bring new code, else ignored.
 */
export function pullRequestAction(
  payload: unknown,
  sender: string | undefined,
  forge: { actions: ReadonlySet<string>; actionNames: string; isFork: (payload: unknown) => boolean },
): HookAction {
  const action = required('pull_request', payload, 'action');
  if (!forge.actions.has(action)) {
    return {
      kind: 'ignore',
      why: `pull_request action "${action}" is not built (only ${forge.actionNames})`,
    };
  }
  return {
    kind: 'build',
    event: 'pull_request',
    branch: required('pull_request', payload, 'pull_request', 'head', 'ref'),
    commit: required('pull_request', payload, 'pull_request', 'head', 'sha'),
    fork: forge.isFork(payload),
    ...(sender !== undefined && { sender }),
  };
}
