/**
 * The stand-in's etcd: objects per resource, one cluster-wide revision counter (resourceVersion
 * is the revision of an object's last change, as with etcd), and per resource a window of the
 * last changes that watches replay from a resourceVersion. A resourceVersion older than the
 * window is "too old" (410 Expired), as the real watch cache answers.
 */
import { randomUUID } from 'node:crypto';
import type { Pod } from '../../kube-api.js';

type ObjectMeta = NonNullable<Pod['metadata']>;

export type Resource = 'pods' | 'secrets' | 'configmaps' | 'events';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta & { name: string; namespace: string; uid: string; resourceVersion: string };
  [field: string]: unknown;
}

export interface Change {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The object after the change (for DELETED: as it was, with the deletion's resourceVersion). */
  object: KubeObject;
  /** The object before the change (MODIFIED only): a watch with a selector needs both. */
  old?: KubeObject;
  rv: number;
}

export type ChangeListener = (resource: Resource, change: Change) => void;

export class Store {
  private revision = 1;
  private readonly objects = new Map<Resource, Map<string, KubeObject>>();
  private readonly history = new Map<Resource, Change[]>();
  /** Per resource: a watch from a resourceVersion below this is 410 Expired. */
  private readonly oldestWatchable = new Map<Resource, number>();
  private readonly listeners = new Set<ChangeListener>();

  constructor(private readonly window: number) {}

  get resourceVersion(): number {
    return this.revision;
  }

  onChange(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(resource: Resource, name: string): KubeObject | undefined {
    const o = this.map(resource).get(name);
    return o && structuredClone(o);
  }

  list(resource: Resource): KubeObject[] {
    return [...this.map(resource).values()].map((o) => structuredClone(o));
  }

  /** Stores a new object: uid, creationTimestamp and resourceVersion set here. */
  create(resource: Resource, object: KubeObject): KubeObject {
    const stored = structuredClone(object);
    stored.metadata.uid = randomUUID();
    stored.metadata.creationTimestamp = nowSeconds();
    stored.metadata.resourceVersion = String(++this.revision);
    this.map(resource).set(stored.metadata.name, stored);
    this.emit(resource, { type: 'ADDED', object: stored, rv: this.revision });
    return structuredClone(stored);
  }

  /** Replaces an existing object (the caller made the change); a no-op change is not stored. */
  update(resource: Resource, object: KubeObject): KubeObject {
    const old = this.map(resource).get(object.metadata.name);
    if (!old) throw new Error(`update of a missing ${resource} ${object.metadata.name}`);
    const stored = structuredClone(object);
    stored.metadata.resourceVersion = old.metadata.resourceVersion;
    if (JSON.stringify(stored) === JSON.stringify(old)) return structuredClone(old);
    stored.metadata.resourceVersion = String(++this.revision);
    this.map(resource).set(stored.metadata.name, stored);
    this.emit(resource, { type: 'MODIFIED', object: stored, old, rv: this.revision });
    return structuredClone(stored);
  }

  remove(resource: Resource, name: string): KubeObject | undefined {
    const old = this.map(resource).get(name);
    if (!old) return undefined;
    this.map(resource).delete(name);
    const gone = structuredClone(old);
    gone.metadata.resourceVersion = String(++this.revision);
    this.emit(resource, { type: 'DELETED', object: gone, rv: this.revision });
    return structuredClone(gone);
  }

  /**
   * The changes after `rv`, in order, or 'expired' when some of them are no longer kept.
   */
  changesSince(resource: Resource, rv: number): Change[] | 'expired' {
    if (rv < (this.oldestWatchable.get(resource) ?? 0)) return 'expired';
    return (this.history.get(resource) ?? []).filter((c) => c.rv > rv);
  }

  /** Forgets every change so far: a watch from any older resourceVersion is 410 Expired. */
  expireHistory(): void {
    for (const resource of ['pods', 'secrets', 'configmaps', 'events'] as const) {
      this.history.set(resource, []);
      this.oldestWatchable.set(resource, this.revision);
    }
  }

  private map(resource: Resource): Map<string, KubeObject> {
    let m = this.objects.get(resource);
    if (!m) this.objects.set(resource, (m = new Map<string, KubeObject>()));
    return m;
  }

  private emit(resource: Resource, change: Change): void {
    let h = this.history.get(resource);
    if (!h) this.history.set(resource, (h = []));
    h.push(change);
    while (h.length > this.window) {
      const dropped = h.shift()!;
      this.oldestWatchable.set(resource, dropped.rv);
    }
    for (const l of this.listeners) l(resource, change);
  }
}

/** A timestamp as the API serializes metav1.Time: RFC 3339, whole seconds, UTC. */
export function nowSeconds(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}
