/**
 * Step caches on the docker executor (`Executor.cacheFiles`): copies between the workspace
 * volume and a host directory through the engine's archive endpoints of a never-started helper
 * container that mounts the volume, as artifacts and the seed do.
 */
import { randomBytes } from 'node:crypto';
import { join, posix } from 'node:path';
import { Pack } from 'tar';
import { CopyBudget, unpackWithin } from '../cache-unpack.js';
import { ExecutorError } from '../types.js';
import type { DockerBuild, DockerContext } from './build.js';
import type { DockerContainer } from './client.js';
import { engineCall } from './util.js';

async function withHelper<T>(
  ctx: DockerContext,
  build: DockerBuild,
  readOnly: boolean,
  use: (helper: DockerContainer) => Promise<T>,
): Promise<T> {
  if (build.destroyed || !build.volume)
    throw new ExecutorError('workspace', `build ${build.spec.buildId} is not prepared`);
  const image = build.helperImage();
  if (!image)
    throw new ExecutorError('workspace', 'no image to reach the workspace with: set image on the pipeline');
  const missing = await ctx.images.ensure(build.images, image);
  if (missing) throw new ExecutorError('image_unavailable', missing.message);
  const helper = await engineCall(ctx.engine, 'create the cache container', 'workspace', () =>
    ctx.client.createContainer({
      name: `${build.prefix}-cache-${randomBytes(2).toString('hex')}`,
      Image: image,
      Cmd: ['/bin/true'],
      Labels: build.labels('collect'),
      HostConfig: {
        Mounts: [{ Type: 'volume', Source: build.volume ?? '', Target: ctx.workspace, ReadOnly: readOnly }],
      },
    }),
  );
  try {
    return await use(helper);
  } finally {
    await helper.remove({ force: true }).catch(() => undefined);
  }
}

/** Copies the workspace-relative `paths` that exist into `dir`; resolves with those copied. */
export async function copyOut(
  ctx: DockerContext,
  build: DockerBuild,
  paths: readonly string[],
  dir: string,
  limits: { maxBytes: number; maxEntries: number },
  signal?: AbortSignal,
): Promise<string[]> {
  return withHelper(ctx, build, true, async (helper) => {
    const copied: string[] = [];
    const budget = new CopyBudget(limits);
    for (const path of paths) {
      let archive: NodeJS.ReadableStream;
      try {
        archive = await helper.getArchive({ path: `${ctx.workspace}/${path}` });
      } catch (error) {
        if ((error as { statusCode?: unknown } | null)?.statusCode === 404) continue;
        throw error;
      }
      // The engine names the entries after the path's last segment: put them under its parent.
      await unpackWithin(archive, join(dir, posix.dirname(path)), budget, signal);
      copied.push(path);
    }
    return copied;
  });
}

/** Copies the contents of `dir` into the workspace (merged; its files win). */
export async function copyIn(
  ctx: DockerContext,
  build: DockerBuild,
  dir: string,
  signal?: AbortSignal,
): Promise<void> {
  await withHelper(ctx, build, false, async (helper) => {
    const pack = new Pack({ cwd: dir, portable: true, follow: false });
    pack.add('.');
    pack.end();
    signal?.throwIfAborted();
    await helper.putArchive(pack as unknown as NodeJS.ReadableStream, { path: ctx.workspace });
  });
}
