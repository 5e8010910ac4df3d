/**
 * Where each value of the validated pipeline came from. The validator builds plain values
 * (so later passes work with ordinary typed data) and records here, for every object and
 * array it builds, the node and field path of the object itself and of each of its entries.
 */
import type { Node } from 'yaml';
import type { SourcePos } from './types.js';

/** A value's origin: its field path, its (alias-resolved) YAML node, and where it was written. */
export interface Loc {
  path: string;
  node: Node | null;
  /** Where the value is written; for an alias, the alias itself rather than its anchor. */
  pos: SourcePos;
  /** For a mapping entry: where its key is written. */
  keyPos?: SourcePos;
}

/** Origins of the values the validator built, looked up by the value's container and key. */
export class SourceIndex {
  private readonly selves = new WeakMap<object, Loc>();
  private readonly children = new WeakMap<object, Map<string | number, Loc>>();

  setSelf(value: object, loc: Loc): void {
    this.selves.set(value, loc);
  }

  /** Records an entry even when its value was invalid and left out, so `keys` still lists it. */
  setChild(container: object, key: string | number, loc: Loc): void {
    let entries = this.children.get(container);
    if (!entries) {
      entries = new Map();
      this.children.set(container, entries);
    }
    entries.set(key, loc);
  }

  self(value: object): Loc | undefined {
    return this.selves.get(value);
  }

  at(container: object, key: string | number): Loc | undefined {
    return this.children.get(container)?.get(key);
  }

  /** Every key the source gave the container, valid or not, in source order. */
  keys(container: object): (string | number)[] {
    return [...(this.children.get(container)?.keys() ?? [])];
  }
}

/** A field path one level down: `a` + `b` → `a.b`, `a` + 0 → `a[0]`. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '' ? key : `${path}.${key}`;
}
