/**
 * Step caches on the docker executor (`Executor.cacheFiles`): copies between a host directory
 * and the build's volumes through the engine's archive endpoints of a never-started helper
 * container that mounts them, as artifacts and the seed do.
 *
 * Workspace paths go to and from the workspace volume. `~/` paths only exist in the step's
 * own container, so they go through a second volume, `<prefix>-caches`, made when a step first
 * needs it and mounted at {@link CACHES_MOUNT} in the steps with `~/` cache paths: a restore
 * is staged in the step's directory there (`h/`) and the step's own shell copies it into its
 * HOME, then keeps the paths to save in `keep/` after its commands succeeded (`cacheHomeScript`,
 * ../cache-home.ts), where `copyOut` reads them.
 */
import { randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { Header, Pack } from 'tar';
import { cacheStepDir, isHomePath } from '../cache-home.js';
import { CopyBudget, unpackWithin } from '../cache-unpack.js';
import { ExecutorError } from '../types.js';
import type { DockerBuild, DockerContext } from './build.js';
import type { DockerContainer } from './client.js';
import { engineCall } from './util.js';

/** Where the caches volume is mounted in the steps that have `~/` cache paths (and in helpers). */
export const CACHES_MOUNT = '/slipway/caches';

/**
 * The build's caches volume, made at the first call. Its root is open to every user (mode
 * 1777): a step whose image runs as another user than root makes its own directory there.
 * `image` is one the build already has (the helper that sets the mode runs nothing).
 */
export function cachesVolume(ctx: DockerContext, build: DockerBuild, image: string): Promise<string> {
  const making: Promise<string> = (build.caches ??= makeCaches(ctx, build, image).catch((error: unknown) => {
    if (build.caches === making) build.caches = undefined; // a later step tries again
    throw error;
  }));
  return making;
}

async function makeCaches(ctx: DockerContext, build: DockerBuild, image: string): Promise<string> {
  const name = `${build.prefix}-caches`;
  await engineCall(ctx.engine, 'create the caches volume', 'workspace', () =>
    ctx.client.createVolume({ Name: name, Labels: build.labels('caches') }),
  );
  await withHelper(ctx, build, { readOnly: false, caches: name, image }, (helper) =>
    helper.putArchive(Readable.from([directory('.', 0o1777), Buffer.alloc(1024)]), { path: CACHES_MOUNT }),
  );
  return name;
}

async function withHelper<T>(
  ctx: DockerContext,
  build: DockerBuild,
  options: { readOnly: boolean; caches?: string | undefined; image?: string },
  use: (helper: DockerContainer) => Promise<T>,
): Promise<T> {
  if (build.destroyed || !build.volume)
    throw new ExecutorError('workspace', `build ${build.spec.buildId} is not prepared`);
  const image = options.image ?? (await helperImage(ctx, build));
  const { readOnly, caches } = options;
  const helper = await engineCall(ctx.engine, 'create the cache container', 'workspace', () =>
    ctx.client.createContainer({
      name: `${build.prefix}-cache-${randomBytes(2).toString('hex')}`,
      Image: image,
      Cmd: ['/bin/true'],
      Labels: build.labels('collect'),
      HostConfig: {
        Mounts: [
          { Type: 'volume', Source: build.volume ?? '', Target: ctx.workspace, ReadOnly: readOnly },
          ...(caches
            ? [{ Type: 'volume' as const, Source: caches, Target: CACHES_MOUNT, ReadOnly: readOnly }]
            : []),
        ],
      },
    }),
  );
  try {
    return await use(helper);
  } finally {
    await helper.remove({ force: true }).catch(() => undefined);
  }
}

async function helperImage(ctx: DockerContext, build: DockerBuild): Promise<string> {
  const image = build.helperImage();
  if (!image)
    throw new ExecutorError('workspace', 'no image to reach the workspace with: set image on the pipeline');
  const missing = await ctx.images.ensure(build.images, image);
  if (missing) throw new ExecutorError('image_unavailable', missing.message);
  return image;
}

/**
 * Copies the `paths` of step `step` that exist into `dir`: workspace paths from the workspace
 * volume into `dir/w`, `~/` paths from what the step kept in the caches volume into `dir/h`,
 * within one budget. Resolves with the paths copied, as given.
 */
export async function copyOut(
  ctx: DockerContext,
  build: DockerBuild,
  step: string,
  paths: readonly string[],
  dir: string,
  limits: { maxBytes: number; maxEntries: number },
  signal?: AbortSignal,
): Promise<string[]> {
  // No caches volume: no step of this build kept a `~/` path.
  const caches = paths.some(isHomePath) ? await build.caches?.catch(() => undefined) : undefined;
  const kept = `${cacheStepDir(CACHES_MOUNT, step)}/keep`;
  return withHelper(ctx, build, { readOnly: true, caches }, async (helper) => {
    const copied: string[] = [];
    const budget = new CopyBudget(limits);
    for (const path of paths) {
      const home = isHomePath(path);
      const relative = home ? path.slice(2) : path;
      // `~` alone (the whole HOME) is not kept by the step's script: nothing to read.
      if (home && (!caches || relative === '')) continue;
      let archive: NodeJS.ReadableStream;
      try {
        archive = await helper.getArchive({
          path: home ? `${kept}/${relative}` : `${ctx.workspace}/${path}`,
        });
      } catch (error) {
        if ((error as { statusCode?: unknown } | null)?.statusCode === 404) continue;
        throw error;
      }
      // The engine names the entries after the path's last segment: put them under its parent.
      await unpackWithin(archive, join(dir, home ? 'h' : 'w', posix.dirname(relative)), budget, signal);
      copied.push(path);
    }
    return copied;
  });
}

/**
 * Copies `dir/w` into the workspace (merged; its files win) and stages `dir/h`, if there is
 * one, in step `step`'s directory of the caches volume, for its shell to copy into its HOME.
 */
export async function copyIn(
  ctx: DockerContext,
  build: DockerBuild,
  step: string,
  dir: string,
  signal?: AbortSignal,
): Promise<void> {
  const isDirectory = (path: string) =>
    stat(path).then(
      (s) => s.isDirectory(),
      () => false,
    );
  const [workspace, home] = await Promise.all([isDirectory(join(dir, 'w')), isDirectory(join(dir, 'h'))]);
  if (!workspace && !home) return;
  const image = await helperImage(ctx, build);
  const caches = home ? await cachesVolume(ctx, build, image) : undefined;
  signal?.throwIfAborted();
  await withHelper(ctx, build, { readOnly: false, caches, image }, async (helper) => {
    if (workspace) {
      const pack = new Pack({ cwd: join(dir, 'w'), portable: true, follow: false });
      pack.add('.');
      pack.end();
      await helper.putArchive(pack as unknown as NodeJS.ReadableStream, { path: ctx.workspace });
    }
    signal?.throwIfAborted();
    if (home) {
      const name = posix.basename(cacheStepDir(CACHES_MOUNT, step));
      const archive = Readable.from(stagedHome(join(dir, 'h'), name));
      await helper.putArchive(archive, { path: CACHES_MOUNT });
    }
  });
}

/**
 * A tar of the step's directory `name` (open to every user: the step makes `keep/` there and
 * removes `h/`) holding `h/` (readable by every user) with the contents of the host's `home`.
 */
async function* stagedHome(home: string, name: string): AsyncGenerator<Buffer> {
  yield directory(`${name}/`, 0o1777);
  yield directory(`${name}/h/`, 0o755);
  const pack = new Pack({ cwd: home, prefix: `${name}/h`, portable: true, follow: false });
  for (const entry of await readdir(home)) pack.add(entry);
  pack.end();
  for await (const chunk of pack as AsyncIterable<Buffer>) yield chunk;
}

/** The tar header of a directory owned by root with `mode`. */
function directory(path: string, mode: number): Buffer {
  const header = new Header({ path, mode, type: 'Directory', size: 0, uid: 0, gid: 0, mtime: new Date() });
  header.encode();
  return header.block!;
}
