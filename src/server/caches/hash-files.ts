/**
 * `hashFiles('glob', …)` of cache keys, evaluated on the checkout before the build starts:
 * a SHA-256 over the sorted workspace-relative paths of the regular files that match (the
 * patterns of artifacts: `*`, `**`, a directory takes what is below it) and each one's
 * SHA-256. `.git` is never read; symlinks are not followed. Nothing matching gives the empty
 * string, as GitHub Actions does, and the caller logs it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { compileArtifactPatterns } from '../../executors/workspace-files.js';
import type { CacheKeyPart } from '../../pipeline/types.js';

/** Files a hashFiles call may read; a checkout with more matching is refused (the key is not made). */
export const MAX_HASHED_FILES = 50_000;

/** The matching files' digest, or '' when nothing matches. */
export async function hashFiles(
  dir: string,
  patterns: readonly string[],
  signal?: AbortSignal,
): Promise<string> {
  const { set, problems } = compileArtifactPatterns(patterns);
  if (problems.length > 0) throw new Error(`hashFiles('${problems[0]!.pattern}'): ${problems[0]!.reason}`);
  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      signal?.throwIfAborted();
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (rel === '' && entry.name === '.git') continue;
      if (entry.isDirectory()) {
        if (set.match(path) >= 0 || set.through(path).length > 0) await walk(path);
      } else if (entry.isFile() && set.match(path) >= 0) {
        files.push(path);
        if (files.length > MAX_HASHED_FILES)
          throw new Error(
            `hashFiles(${patterns.map((p) => `'${p}'`).join(', ')}) matches more than ${MAX_HASHED_FILES} files`,
          );
      }
    }
  };
  await walk('');
  if (files.length === 0) return '';
  files.sort();
  const all = createHash('sha256');
  for (const file of files) {
    const one = createHash('sha256');
    await pipeline(createReadStream(join(dir, file)), one, { ...(signal ? { signal } : {}) });
    all.update(`${file}\0${one.digest('hex')}\n`);
  }
  return all.digest('hex');
}

/** A key's parts put together; `empty` lists the hashFiles calls that matched nothing. */
export async function resolveCacheKey(
  parts: readonly CacheKeyPart[],
  dir: string | undefined,
  signal?: AbortSignal,
): Promise<{ key: string; empty: string[] }> {
  let key = '';
  const empty: string[] = [];
  for (const part of parts) {
    if ('text' in part) {
      key += part.text;
      continue;
    }
    const call = `hashFiles(${part.hashFiles.map((p) => `'${p}'`).join(', ')})`;
    if (dir === undefined) throw new Error(`${call} needs the checkout, and this build has none at hand`);
    const digest = await hashFiles(dir, part.hashFiles, signal);
    if (digest === '') empty.push(call);
    key += digest;
  }
  return { key, empty };
}
