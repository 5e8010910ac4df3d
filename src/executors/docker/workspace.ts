/**
 * The build's workspace: one volume, mounted at the same path in every container, seeded from
 * the checkout with a tar stream into a never-started helper container.
 */
import { spawn } from 'node:child_process';
import { ExecutorError } from '../types.js';
import { listSeed, tarFileList, WHOLE_DIRECTORY, type SeedList } from '../workspace-seed.js';
import type { DockerBuild, DockerContext } from './build.js';
import { isOfBuild, LABELS, labelFilter } from './resources.js';
import { engineCall, errorText } from './util.js';

/** Creates the build's workspace volume. */
export async function createWorkspace(ctx: DockerContext, build: DockerBuild): Promise<void> {
  const volume = `${build.prefix}-workspace`;
  await engineCall(ctx.engine, 'create the workspace volume', 'workspace', () =>
    ctx.client.createVolume({ Name: volume, Labels: build.labels('workspace') }),
  );
  build.volume = volume;
}

/**
 * Finds the workspace volume of a build an earlier process prepared, whether it was seeded
 * (the seeding helper is kept, never started, as the mark) and its caches volume, if a step
 * made one. Undefined when the workspace volume is gone.
 */
export async function findWorkspace(
  ctx: DockerContext,
  buildId: string,
): Promise<{ volume: string; seeded: boolean; caches?: string } | undefined> {
  const ofBuild = labelFilter(`${LABELS.managed}=true`, `${LABELS.build}=${buildId}`);
  const [volumes, seeds] = await Promise.all([
    engineCall(ctx.engine, 'list the workspace volumes', 'workspace', () =>
      ctx.client.listVolumes({ filters: ofBuild }),
    ),
    engineCall(ctx.engine, 'list the seeding containers', 'workspace', () =>
      ctx.client.listContainers({ all: true, filters: ofBuild }),
    ),
  ]);
  const volume = (volumes.Volumes ?? []).find((v) => isOfBuild(v.Labels, buildId, 'workspace'));
  if (!volume) return undefined;
  const caches = (volumes.Volumes ?? []).find((v) => isOfBuild(v.Labels, buildId, 'caches'));
  return {
    volume: volume.Name,
    seeded: seeds.some((c) => isOfBuild(c.Labels, buildId, 'seed')),
    ...(caches ? { caches: caches.Name } : {}),
  };
}

/**
 * Copies the files of `sourceDir` that `listSeed` selects into the workspace volume: `tar`
 * of exactly that list on the host, extracted by the engine into a never-started helper
 * container that mounts the volume. The helper stays (it costs nothing but a record) so that
 * a later process knows the workspace is seeded; `destroy` removes it with the rest.
 */
export async function seedWorkspace(ctx: DockerContext, build: DockerBuild, image: string): Promise<void> {
  const sourceDir = build.spec.sourceDir;
  if (!sourceDir) return;
  let list: SeedList;
  try {
    list = await listSeed(sourceDir, build.spec.sourceSeed ?? WHOLE_DIRECTORY);
  } catch (error) {
    throw new ExecutorError('workspace', `cannot copy ${sourceDir} into the workspace: ${errorText(error)}`, {
      cause: error,
    });
  }
  const missing = await ctx.images.ensure(build.images, image);
  if (missing) {
    throw new ExecutorError(
      missing.code === 'engine_unavailable' ? 'engine_unavailable' : 'image_unavailable',
      missing.message,
    );
  }
  const helper = await engineCall(ctx.engine, 'create the workspace seeding container', 'workspace', () =>
    ctx.client.createContainer({
      name: `${build.prefix}-seed`,
      Image: image,
      Cmd: ['/bin/true'],
      Labels: build.labels('seed'),
      HostConfig: { Mounts: [{ Type: 'volume', Source: build.volume ?? '', Target: ctx.workspace }] },
    }),
  );
  let seeded = false;
  try {
    // The listed names only (directories included, never recursed into), read from stdin.
    const tar = spawn('tar', ['-C', sourceDir, '--null', '--no-recursion', '-T', '-', '-cf', '-'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    tar.stdin.on('error', () => undefined); // tar gone early: its exit code tells why
    tar.stdin.end(tarFileList(list.entries));
    let stderr = '';
    tar.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const tarExit = new Promise<number | null>((resolve) => {
      tar.on('error', (error) => {
        stderr += error.message;
        resolve(-1);
      });
      tar.on('close', (code) => resolve(code));
    });
    try {
      await helper.putArchive(tar.stdout, { path: ctx.workspace });
    } catch (error) {
      tar.kill();
      throw new ExecutorError(
        'workspace',
        `cannot copy ${sourceDir} into the workspace: ${errorText(error)}`,
        {
          cause: error,
        },
      );
    }
    const code = await tarExit;
    if (code !== 0) {
      throw new ExecutorError(
        'workspace',
        `cannot copy ${sourceDir} into the workspace: tar: ${stderr.trim()}`,
      );
    }
    seeded = true;
  } finally {
    if (!seeded) await helper.remove({ force: true }).catch(() => undefined);
  }
}
