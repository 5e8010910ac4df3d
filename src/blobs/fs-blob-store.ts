import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobError } from './errors.js';
import { checkKey, checkPrefix, compareKeys } from './keys.js';
import { SizeCheck, toStream } from './size-check.js';
import type { BlobInfo, BlobStore, PutOptions } from './types.js';

/** Temp files older than this are leftovers of a crashed put. */
const STALE_TMP_MS = 60 * 60 * 1000;

/**
 * Blobs as files: `<root>/objects/<key>`. A put writes `<root>/tmp/<random>`, syncs it and
 * renames it into place, so a reader (or a crash) never sees half an object; the two
 * directories share a filesystem, which keeps the rename atomic.
 */
export class FsBlobStore implements BlobStore {
  readonly description: string;
  private readonly objects: string;
  private readonly tmp: string;
  private swept = false;

  constructor(root: string) {
    const absolute = resolve(root);
    this.description = `fs:${absolute}`;
    this.objects = join(absolute, 'objects');
    this.tmp = join(absolute, 'tmp');
  }

  async put(key: string, body: Readable | Buffer | string, options: PutOptions = {}): Promise<void> {
    checkKey(key);
    await this.sweepOnce();
    const target = this.pathOf(key);
    await mkdir(this.tmp, { recursive: true });
    const temp = join(this.tmp, `${Date.now()}-${randomBytes(8).toString('hex')}`);
    try {
      const handle = await open(temp, 'wx', 0o600);
      try {
        await pipeline(
          toStream(body),
          new SizeCheck(options.size, key),
          async (chunks: AsyncIterable<Buffer>) => {
            for await (const chunk of chunks) await handle.write(chunk);
          },
          ...(options.signal ? [{ signal: options.signal }] : []),
        );
        await handle.datasync();
      } finally {
        await handle.close();
      }
      await this.moveIntoPlace(temp, target, key);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw asBlobError(error, `cannot store ${key} in ${this.description}`);
    }
  }

  async get(key: string): Promise<Readable | undefined> {
    checkKey(key);
    let handle;
    try {
      handle = await open(this.pathOf(key), 'r');
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw asBlobError(error, `cannot read ${key} from ${this.description}`);
    }
    // A directory opens fine on Linux; it is a prefix, not an object.
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      return undefined;
    }
    return handle.createReadStream();
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    checkKey(key);
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { key, size: info.size, modifiedAt: info.mtimeMs } : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw asBlobError(error, `cannot read ${key} from ${this.description}`);
    }
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    checkPrefix(prefix);
    const slash = prefix.lastIndexOf('/');
    const base = slash === -1 ? '' : prefix.slice(0, slash);
    const found: BlobInfo[] = [];
    await this.walk(base, prefix, found);
    found.sort((a, b) => compareKeys(a.key, b.key));
    yield* found;
  }

  async deletePrefix(prefix: string): Promise<number> {
    checkPrefix(prefix);
    let removed = 0;
    const dirs = new Set<string>();
    for await (const blob of this.list(prefix)) {
      try {
        await unlink(this.pathOf(blob.key));
        removed += 1;
      } catch (error) {
        if (!isMissing(error)) throw asBlobError(error, `cannot delete ${blob.key} from ${this.description}`);
      }
      dirs.add(dirname(blob.key));
    }
    // Deepest first, so a parent is tried after its children are gone.
    for (const dir of [...dirs].sort((a, b) => b.length - a.length)) await this.pruneDirs(dir);
    return removed;
  }

  private async walk(relDir: string, prefix: string, into: BlobInfo[]): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(relDir === '' ? this.objects : this.pathOf(relDir), { withFileTypes: true });
    } catch (error) {
      if (isMissing(error)) return;
      throw asBlobError(error, `cannot list ${prefix} in ${this.description}`);
    }
    for (const entry of entries) {
      const key = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      if (entry.isDirectory()) {
        // The walk starts at the prefix's last `/`, so below it either every key matches or none.
        if (`${key}/`.startsWith(prefix)) await this.walk(key, prefix, into);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        try {
          const info = await stat(this.pathOf(key));
          into.push({ key, size: info.size, modifiedAt: info.mtimeMs });
        } catch (error) {
          if (!isMissing(error)) throw asBlobError(error, `cannot list ${prefix} in ${this.description}`);
        }
      }
    }
  }

  /** Renames the finished temp file to its key; retries once if a delete pruned the parent meanwhile. */
  private async moveIntoPlace(temp: string, target: string, key: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await mkdir(dirname(target), { recursive: true });
        await rename(temp, target);
        return;
      } catch (error) {
        if (attempt === 0 && (error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        if (
          (error as NodeJS.ErrnoException).code === 'ENOTDIR' ||
          (error as NodeJS.ErrnoException).code === 'EEXIST'
        ) {
          throw new BlobError('storage', `cannot store ${key}: a parent of it is an object itself`, {
            cause: error,
          });
        }
        throw error;
      }
    }
  }

  /** Removes now-empty directories from `relDir` up to (not including) the objects root. */
  private async pruneDirs(relDir: string): Promise<void> {
    for (let dir = relDir; dir !== '.' && dir !== ''; dir = dirname(dir)) {
      try {
        await rmdir(this.pathOf(dir));
      } catch {
        return; // not empty (or already gone): the parents are not empty either
      }
    }
  }

  /** Removes temp files a crashed put left behind; once per store instance. */
  private async sweepOnce(): Promise<void> {
    if (this.swept) return;
    this.swept = true;
    let names: string[];
    try {
      names = await readdir(this.tmp);
    } catch {
      return;
    }
    const cutoff = Date.now() - STALE_TMP_MS;
    for (const name of names) {
      const started = Number(name.split('-')[0]);
      if (Number.isFinite(started) && started < cutoff)
        await rm(join(this.tmp, name), { force: true }).catch(() => undefined);
    }
  }

  private pathOf(key: string): string {
    return join(this.objects, ...key.split('/'));
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function asBlobError(error: unknown, what: string): BlobError {
  if (error instanceof BlobError) return error;
  if ((error as Error | null)?.name === 'AbortError') {
    return new BlobError('storage', `${what}: aborted`, { cause: error });
  }
  return new BlobError('storage', `${what}: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
}
