import type { Readable } from 'node:stream';

/**
 * What the blob store knows about one object. `key` is the store-relative key (never with the
 * store's own prefix); `size` in bytes.
 */
export interface BlobInfo {
  key: string;
  size: number;
  /** Epoch ms of the last write, when the store knows it. */
  modifiedAt?: number;
}

export interface PutOptions {
  /**
   * Bytes the body must have. A body that ends shorter or runs longer fails the put and
   * leaves no object behind (an upload cut off halfway is never mistaken for the whole file).
   */
  size?: number;
  contentType?: string;
  signal?: AbortSignal;
}

/**
 * Where logs and artifacts live: a flat namespace of immutable-once-written objects under
 * `/`-separated keys (`artifacts/42/dist/app.tgz`, `logs/42/…`). Contract for every store:
 *
 *   - keys are relative, `/`-separated, without empty, `.` or `..` segments (see `keys.ts`);
 *     anything else is refused with a `BlobError('invalid_key')` before any I/O;
 *   - `put` is atomic: readers see the old object or the whole new one, never a part; when it
 *     fails (body error, size mismatch, abort) nothing new is visible under the key;
 *   - `get` and `head` answer `undefined` for a missing key, never throw for it;
 *   - `list` yields the objects whose key starts with `prefix` (a plain string prefix, not
 *     necessarily a whole segment), in no particular order (not every S3-compatible store
 *     lists in key order): callers that need an order sort;
 *   - `deletePrefix` removes every such object; removing nothing is not an error.
 * A key may not be both an object and the parent of another (`a/b` and `a/b/c`): a
 * filesystem cannot hold that, so no caller may rely on it.
 */
export interface BlobStore {
  /** `fs:<root>` or `s3://bucket/prefix`, for messages and logs. */
  readonly description: string;
  put(key: string, body: Readable | Buffer | string, options?: PutOptions): Promise<void>;
  get(key: string): Promise<Readable | undefined>;
  head(key: string): Promise<BlobInfo | undefined>;
  list(prefix: string): AsyncIterable<BlobInfo>;
  /** Removes every object whose key starts with `prefix`; resolves to how many were removed. */
  deletePrefix(prefix: string): Promise<number>;
}
