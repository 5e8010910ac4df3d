/**
 * Unpacks a tar stream a container executor read out of a build (a step's cache paths) into a
 * host directory, within a budget shared by all the streams of one save: what a step leaves
 * behind (a sparse terabyte, a million empty files) must not fill the server's disk. Only
 * files, directories and links are kept (node-tar refuses `..` and absolute paths itself);
 * devices and FIFOs are left behind, and no owner is kept.
 */
import { mkdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Unpack, type ReadEntry } from 'tar';
import { ExecutorError } from './types.js';

/** Entry types a copy out keeps; anything else (devices, FIFOs) is left behind. */
const KEPT = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/** What one save may still copy; shared by its streams. */
export class CopyBudget {
  private bytes = 0;
  private entries = 0;

  constructor(private readonly limits: { maxBytes: number; maxEntries: number }) {}

  /** Counts an entry; says why it is over the budget, if it is. */
  take(type: string, size: number): string | undefined {
    this.bytes += type === 'Directory' || type === 'SymbolicLink' || type === 'Link' ? 0 : size;
    this.entries += 1;
    if (this.bytes > this.limits.maxBytes) return `more than ${this.limits.maxBytes} bytes`;
    if (this.entries > this.limits.maxEntries) return `more than ${this.limits.maxEntries} entries`;
    return undefined;
  }
}

/**
 * Unpacks `archive` (an uncompressed tar) under `dir`; rejects with an `ExecutorError` once the
 * budget is spent (the rest is not read further).
 */
export async function unpackWithin(
  archive: NodeJS.ReadableStream,
  dir: string,
  budget: CopyBudget,
  signal?: AbortSignal,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  let over: string | undefined;
  const unpack = new Unpack({
    cwd: dir,
    preserveOwner: false,
    filter: (_path: string, entry: unknown) => {
      const { type, size } = entry as ReadEntry;
      if (!KEPT.has(type)) return false;
      over ??= budget.take(type, size ?? 0);
      if (over) unpack.abort(new ExecutorError('workspace', `the cache paths hold ${over}`));
      return over === undefined;
    },
  });
  await pipeline(archive, unpack, { ...(signal ? { signal } : {}) }).catch((error: unknown) => {
    throw over ? new ExecutorError('workspace', `the cache paths hold ${over}`) : error;
  });
}
