import { constants } from 'node:fs';
import { lstat, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Kysely } from 'kysely';
import type { BlobStore } from '../../blobs/types.js';
import { artifactPathProblem } from '../../executors/workspace-files.js';
import type { Database } from '../../store/index.js';
import { artifactKey, listArtifacts } from './store.js';

/**
 * Re-run failed: writes the artifacts a build took over from reused steps (rows whose bytes
 * are another build's, `blobBuildId`) into `dir`, the checkout that seeds its workspace, at
 * their workspace paths, so that the steps that run again find what the reused ones declared.
 * Undeclared files of reused steps are not there: they were never stored.
 *
 * The checkout is the repository's, so it may hold symlinks: nothing is written through one
 * (a path whose directory or file is a link, or a file where a directory should be, is skipped
 * with a line for the log), and nothing outside `dir`. Bounded by the artifacts' own limits
 * (a build's artifacts together are at most the collector's `maxBuildBytes`), streamed.
 * Resolves with how many files were written; `log` hears about each one skipped.
 */
export async function seedReusedArtifacts(
  deps: { db: Kysely<Database>; blobs: BlobStore },
  buildId: number,
  dir: string,
  log: (text: string) => void,
  signal?: AbortSignal,
): Promise<number> {
  let written = 0;
  for (const artifact of await listArtifacts(deps.db, buildId)) {
    if (artifact.blobBuildId === undefined) continue;
    signal?.throwIfAborted();
    const problem = artifactPathProblem(artifact.path) ?? (await pathProblem(dir, artifact.path));
    if (problem !== undefined) {
      log(`reused artifact ${artifact.path} not put in the workspace: ${problem}`);
      continue;
    }
    const body = await deps.blobs.get(artifactKey(artifact.blobBuildId, artifact.path));
    if (body === undefined) {
      log(
        `reused artifact ${artifact.path} not put in the workspace: its bytes are gone from the blob store`,
      );
      continue;
    }
    const target = join(dir, ...artifact.path.split('/'));
    // O_NOFOLLOW: a link at the file's own name is refused, not written through.
    const file = await open(
      target,
      constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW,
      0o644,
    ).catch((error: unknown) => error as NodeJS.ErrnoException);
    if (file instanceof Error) {
      body.destroy();
      // The code, not the message: that names the server's own directories.
      const why = file.code === 'ELOOP' ? 'it is a symbolic link in the checkout' : `${file.code ?? 'error'}`;
      log(`reused artifact ${artifact.path} not put in the workspace: ${why}`);
      continue;
    }
    try {
      await pipeline(body, file.createWriteStream(), signal ? { signal } : {});
      written++;
    } catch (error) {
      await rm(target, { force: true }).catch(() => undefined);
      throw error;
    }
  }
  return written;
}

/** Makes the directories of `path` under `dir`; why not when one is a link or a file. */
async function pathProblem(dir: string, path: string): Promise<string | undefined> {
  const segments = path.split('/');
  let at = dir;
  for (const segment of segments.slice(0, -1)) {
    at = join(at, segment);
    const stat = await lstat(at).catch(() => undefined);
    if (stat === undefined) {
      await mkdir(at);
      continue;
    }
    if (stat.isSymbolicLink()) return `${segment} is a symbolic link in the checkout`;
    if (!stat.isDirectory()) return `${segment} is a file in the checkout`;
  }
  const last = await lstat(join(at, segments.at(-1)!)).catch(() => undefined);
  if (last?.isDirectory()) return 'a directory of that name is in the checkout';
  return undefined;
}
