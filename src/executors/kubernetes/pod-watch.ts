/**
 * One watch per executor on every pod of its installation, kept as a cache that waiters read:
 * a step's start, exit and failures are seen when the API server tells, not by polling, and a
 * build of 100 steps costs one watch, not 100 (the API's request budget is small).
 */
import type { KubeApi, Pod, PodChange } from './kube-api.js';

/** What a waiter sees: the pod as last seen, `deleted` once the watch saw it go. */
export interface PodView {
  pod: Pod | undefined;
  deleted: boolean;
}

interface Waiter {
  name: string;
  check: (view: PodView) => boolean;
  wake: () => void;
}

export class PodWatch {
  private readonly pods = new Map<string, Pod>();
  /** Names whose deletion the watch saw (until a pod of that name is added again). */
  private readonly deleted = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  private readonly stop = new AbortController();
  private running: Promise<void> | undefined;
  private synced: Promise<void> | undefined;
  private markSynced: (() => void) | undefined;
  /** Bumped on every change: lets a caller tell whether anything happened meanwhile. */
  generation = 0;

  constructor(
    private readonly api: KubeApi,
    private readonly selector: string,
    private readonly watchdogMs?: number,
  ) {}

  /** Starts the watch on first use; resolves once the first list is in. */
  ready(): Promise<void> {
    if (!this.synced) {
      this.synced = new Promise<void>((resolve) => (this.markSynced = resolve));
      this.running = this.api
        .watchPods(this.selector, (change) => this.apply(change), this.stop.signal, {
          ...(this.watchdogMs !== undefined ? { watchdogMs: this.watchdogMs } : {}),
        })
        .catch(() => undefined);
    }
    return this.synced;
  }

  view(name: string): PodView {
    return { pod: this.pods.get(name), deleted: this.deleted.has(name) };
  }

  /**
   * Takes a pod the API returned (create, get) if the watch has not seen it yet, so that a
   * waiter does not wait for the watch to catch up on what this process just made.
   */
  offer(pod: Pod): void {
    const name = pod.metadata?.name;
    if (!name || this.pods.has(name) || this.deleted.has(name)) return;
    this.pods.set(name, pod);
    this.changed();
  }

  /**
   * Resolves with the view once `check` holds for it, re-checked on every change of any pod;
   * `undefined` when `signal` aborts first.
   */
  async until(
    name: string,
    check: (view: PodView) => boolean,
    signal?: AbortSignal,
  ): Promise<PodView | undefined> {
    await this.ready();
    for (;;) {
      if (signal?.aborted) return undefined;
      const view = this.view(name);
      if (check(view)) return view;
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.waiters.delete(waiter);
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        const waiter: Waiter = { name, check, wake };
        this.waiters.add(waiter);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  async close(): Promise<void> {
    this.stop.abort();
    for (const waiter of [...this.waiters]) waiter.wake();
    await this.running;
  }

  private apply(change: PodChange): void {
    if (change.type === 'SYNC') {
      const now = new Map(
        change.pods.flatMap((p) => (p.metadata?.name ? [[p.metadata.name, p] as const] : [])),
      );
      for (const name of this.pods.keys()) if (!now.has(name)) this.deleted.add(name);
      this.pods.clear();
      for (const [name, pod] of now) {
        this.pods.set(name, pod);
        this.deleted.delete(name);
      }
      this.markSynced?.();
    } else {
      const name = change.pod.metadata?.name;
      if (!name) return;
      if (change.type === 'DELETED') {
        this.pods.delete(name);
        this.deleted.add(name);
      } else {
        this.pods.set(name, change.pod);
        this.deleted.delete(name);
      }
    }
    this.changed();
  }

  private changed(): void {
    this.generation += 1;
    for (const waiter of [...this.waiters]) {
      if (waiter.check(this.view(waiter.name))) waiter.wake();
    }
  }
}
