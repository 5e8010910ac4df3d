import { lchownSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `chown -hR`: symlinks themselves, never what they point to. For trees no build has touched
 * yet (a checkout, a cache's private staging directory), so plain synchronous calls (a syscall
 * each, where the async ones cost a thread-pool round trip each on the main thread), yielding
 * every {@link CHOWN_SLICE} entries so that a large tree does not stall the event loop.
 */
export async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  lchownSync(path, uid, gid);
  const dirs = [path];
  let done = 0;
  for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      lchownSync(full, uid, gid);
      if (entry.isDirectory()) dirs.push(full);
      if (++done % CHOWN_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

const CHOWN_SLICE = 512;
