/**
 * `watchPods`: client-node's `Watch` inside a list-and-watch loop of our own, because its 1.4
 * `Watch` reports a `410 Gone` as an event followed by `done(null)`, reconnects never, and sets
 * no timeout (a half-open connection hangs forever). Here: `timeoutSeconds` on the server, a
 * watchdog on our side (nothing, not even a bookmark, for `watchdogMs`: abandon and re-list), a
 * re-list after 410, an ERROR event or a failed connection, and a plain re-watch from the last
 * resourceVersion (bookmarks keep it fresh) when the server ends the watch at its timeout.
 */
import type { Agent } from 'node:http';
import { Watch } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Pod, PodChange } from '../kube-api.js';
import { backoff, sleep } from './timing.js';

export interface WatchContext {
  kc: KubeConfig;
  namespace: string;
  list(labelSelector: string, signal: AbortSignal): Promise<{ items: Pod[]; resourceVersion: string }>;
}

/** How one watch request ended. */
type Outcome =
  /** The server ended it (its `timeoutSeconds`): watch again from the last resourceVersion. */
  | 'closed'
  /** 410 Gone: the resourceVersion is too old; list again at once. */
  | 'expired'
  /** An ERROR event or a failed connection: list again after a back-off. */
  | 'failed'
  /** The watchdog: nothing arrived for `watchdogMs`; list again at once. */
  | 'idle'
  | 'aborted';

export async function watchPods(
  context: WatchContext,
  labelSelector: string,
  onChange: (change: PodChange) => void,
  signal: AbortSignal,
  watchdogMs: number,
): Promise<void> {
  let resourceVersion: string | undefined;
  let waitingMs = 0;
  while (!signal.aborted) {
    if (resourceVersion === undefined) {
      let list: { items: Pod[]; resourceVersion: string };
      try {
        list = await context.list(labelSelector, signal);
      } catch {
        if (signal.aborted) return;
        waitingMs = backoff(waitingMs, 5000);
        await sleep(waitingMs, signal);
        continue;
      }
      if (signal.aborted) return;
      resourceVersion = list.resourceVersion;
      onChange({ type: 'SYNC', pods: list.items });
    }
    const result = await watchOnce(context, labelSelector, resourceVersion, onChange, signal, watchdogMs);
    resourceVersion = result.resourceVersion;
    if (result.lines > 0) waitingMs = 0;
    switch (result.outcome) {
      case 'aborted':
        return;
      case 'closed':
        // A server that ends watches at once would spin: back off when it sent nothing.
        if (result.lines === 0) {
          waitingMs = backoff(waitingMs, 5000);
          await sleep(waitingMs, signal);
        }
        break;
      case 'expired':
      case 'idle':
        resourceVersion = undefined;
        break;
      case 'failed':
        resourceVersion = undefined;
        waitingMs = backoff(waitingMs, 5000);
        await sleep(waitingMs, signal);
        break;
    }
  }
}

/** One watch request from `resourceVersion`, until it ends one way or another. */
function watchOnce(
  context: WatchContext,
  labelSelector: string,
  resourceVersion: string,
  onChange: (change: PodChange) => void,
  signal: AbortSignal,
  watchdogMs: number,
): Promise<{ outcome: Outcome; resourceVersion: string; lines: number }> {
  return new Promise((resolve) => {
    let rv = resourceVersion;
    let lines = 0;
    let settled = false;
    let controller: AbortController | undefined;
    // `Watch` creates the request's agent through `applyToFetchOptions`; keeping it lets us
    // destroy the connection even before the answer's headers arrive (its AbortController only
    // exists after them).
    let agent: Agent | undefined;
    const kc = Object.create(context.kc) as KubeConfig;
    kc.applyToFetchOptions = async (options) => {
      const init = await context.kc.applyToFetchOptions(options);
      agent = init.agent as Agent | undefined;
      return init;
    };

    const end = (outcome: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(watchdog);
      signal.removeEventListener('abort', onAbort);
      controller?.abort();
      agent?.destroy();
      resolve({ outcome, resourceVersion: rv, lines });
    };
    const onAbort = (): void => end('aborted');
    let watchdog = setTimeout(() => end('idle'), watchdogMs);
    signal.addEventListener('abort', onAbort, { once: true });

    const path = `/api/v1/namespaces/${encodeURIComponent(context.namespace)}/pods`;
    // ~5 minutes, spread so that many watchers do not all re-watch at once.
    const timeoutSeconds = 270 + Math.floor(Math.random() * 60);
    const query = { labelSelector, resourceVersion: rv, allowWatchBookmarks: true, timeoutSeconds };
    new Watch(kc)
      .watch(
        path,
        query,
        (type: string, object: unknown) => {
          if (settled) return;
          lines += 1;
          clearTimeout(watchdog);
          watchdog = setTimeout(() => end('idle'), watchdogMs);
          if (type === 'ERROR') {
            const code = (object as { code?: unknown } | null)?.code;
            end(code === 410 ? 'expired' : 'failed');
            return;
          }
          const pod = object as Pod;
          const version = pod?.metadata?.resourceVersion;
          if (version) rv = version;
          if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED') return;
          try {
            onChange({ type, pod });
          } catch {
            // `Watch` would swallow it and go on as if the change had been taken; a re-list
            // (a fresh SYNC) is the way back to a consistent view.
            end('failed');
          }
        },
        (error: unknown) => {
          // `Watch` answers 410 at the request as an error with `statusCode`.
          if ((error as { statusCode?: unknown } | null)?.statusCode === 410) end('expired');
          else end(error ? 'failed' : 'closed');
        },
      )
      .then(
        (c) => {
          controller = c;
          if (settled) c.abort();
        },
        () => end('failed'),
      );
  });
}
