import { findRef, redactUrl, type RefKind } from './git-checkout.js';

/**
 * What a trigger learns about the ref it is asked to build:
 * - `exists`: the repository has it, at `commit` (the trigger builds that commit when the
 *   caller named none, so a push after the trigger does not change what is built);
 * - `missing`: the repository answered without it (refuse the trigger: the build could never
 *   check it out);
 * - `unknown`: the repository could not be asked (not reachable in time, not readable with
 *   the server's credentials). The trigger goes ahead with `warning`: the build's checkout is
 *   the authority, and a remote that is down now may answer when the build starts; if not,
 *   the build ends `error` with the same reason.
 */
export type RefCheck =
  | { outcome: 'exists'; commit: string }
  | { outcome: 'missing'; message: string }
  | { outcome: 'unknown'; warning: string };

/** At most this many `git ls-remote` at once: triggers must not fork without bound. */
const MAX_CONCURRENT = 4;
let running = 0;
const waiting: Array<() => void> = [];

async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
  else running += 1;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  }
}

/** Asks `repoUrl` (bounded: `timeoutMs`, default 30 s) whether the branch or tag to build exists. */
export async function checkRefExists(
  repoUrl: string,
  ref: string,
  kind: RefKind,
  timeoutMs = 30_000,
): Promise<RefCheck> {
  const found = await limited(() => findRef({ repoUrl, ref, kind, timeoutMs }));
  if (found.found) return { outcome: 'exists', commit: found.commit };
  if (found.why === 'ref')
    return { outcome: 'missing', message: `${kind} "${ref}" does not exist in ${redactUrl(repoUrl)}` };
  return {
    outcome: 'unknown',
    warning: `could not check that ${kind} "${ref}" exists: ${found.message}; the build will try`,
  };
}
