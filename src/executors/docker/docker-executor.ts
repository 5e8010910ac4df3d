/**
 * The `docker` executor: every step in a fresh container, through the Docker Engine API, so the
 * same code drives a Docker daemon or Podman's compatible socket.
 *
 * Per build it creates:
 *   - a volume, mounted at {@link DEFAULT_WORKSPACE} in every container and the steps' working
 *     directory; seeded from `BuildSpec.sourceDir` with a tar stream (`workspace.ts`);
 *   - when the pipeline has services, an *infra* container that owns one network namespace;
 *     services and steps join it, so a service is `localhost:<port>` for every step
 *     (`services.ts`). Builds without services skip it and use the engine's default network;
 *   - one container per step attempt, running `/bin/sh -e -c <commands>` under a tiny init, so
 *     SIGTERM reaches the shell and cancel is prompt (`steps.ts`). The engine owns it: its
 *     output, exit and the container itself outlive the server, which re-attaches by its id.
 *   - when a step has `~/` cache paths, a second volume where they are staged between the
 *     server and the step's HOME (`cache-files.ts`).
 * Everything carries the labels in {@link LABELS}; `destroy`, `removeResources`,
 * `listResources`, `resumeBuild` and `findStep` work from labels alone (`resources.ts`), so
 * they also work after a crash of Slipway. Images and the pull policy: `images.ts`.
 */
import { randomBytes } from 'node:crypto';
import type {
  BuildHandle,
  BuildSpec,
  Executor,
  ExecutorResource,
  OutputPosition,
  OutputSink,
  StepEvents,
  StepExit,
  StepRef,
  StepSpec,
  StepStart,
  WorkspaceEntry,
} from '../types.js';
import { ExecutorError } from '../types.js';
import { DockerBuild, type DockerContext } from './build.js';
import type { DockerClient } from './client.js';
import { collectVolumeFiles } from './collect-files.js';
import { copyIn, copyOut } from './cache-files.js';
import type { DiscoverOptions, EngineInfo } from './engine.js';
import { clientFor, discoverEngine } from './engine.js';
import { EngineWatch } from './engine-watch.js';
import { Images, type PullPolicy } from './images.js';
import { listResources, removeResources } from './resources.js';
import { findServices, startServices } from './services.js';
import { StepContainers } from './steps.js';
import { destroyStream, engineCall } from './util.js';
import { createWorkspace, findWorkspace, seedWorkspace } from './workspace.js';

export { ENGINE_CHECK_MISSES } from './engine-watch.js';
export { PULL_POLICIES, type PullPolicy } from './images.js';
export { LABELS } from './resources.js';
export { exitOf } from './steps.js';

/** Where the workspace volume is mounted in every container. */
export const DEFAULT_WORKSPACE = '/workspace';

export interface DockerExecutorOptions {
  /** The engine client (a dockerode instance, or anything with the {@link DockerClient} subset). */
  client: DockerClient;
  /** The engine it talks to, for messages. */
  engine?: EngineInfo;
  pull?: PullPolicy;
  /** Between SIGTERM and SIGKILL when a step is stopped; default 2000 ms. */
  stopGraceMs?: number;
  /** Path of the workspace inside containers; default `/workspace`. */
  workspace?: string;
  /** Bound on waiting for a service's `wait_for` port; default 60 s. */
  serviceTimeoutMs?: number;
  /** Bound on one image pull; default 10 min. */
  pullTimeoutMs?: number;
  /**
   * Image of the infra container that holds a build's network namespace when it has services,
   * run with its own command (e.g. a `pause` image). Default: the pipeline image, else the
   * first service image, kept alive by a `/bin/sh` builtin, so no extra image is needed.
   */
  infraImage?: string;
  /** Run steps under the engine's init (tini / catatonit); default true. */
  init?: boolean;
  /**
   * How often the engine is pinged while steps are followed; {@link ENGINE_CHECK_MISSES} failed
   * pings in a row end the followed steps with an `engine_unavailable` error (an engine that
   * died may leave their connections open). Default 5 s.
   */
  engineCheckMs?: number;
  /**
   * Bound on one health ping while steps run. A loaded engine answers late, not never: a
   * ping slower than the check interval is not a miss. Default the larger of 10 s and
   * `engineCheckMs`.
   */
  engineTimeoutMs?: number;
}

/** Creates a docker executor for the first engine that answers (see {@link discoverEngine}). */
export async function createDockerExecutor(
  options: Omit<DockerExecutorOptions, 'client' | 'engine'> & DiscoverOptions = {},
): Promise<DockerExecutor> {
  const engine = await discoverEngine(options);
  const { engineTimeoutMs, ...rest } = options;
  // `--engine-timeout` bounds the health ping too, but never below the built-in floor.
  const healthTimeout =
    engineTimeoutMs !== undefined ? { engineTimeoutMs: Math.max(engineTimeoutMs, 10_000) } : {};
  return new DockerExecutor({ ...rest, ...healthTimeout, client: clientFor(engine), engine });
}

export class DockerExecutor implements Executor {
  readonly name = 'docker' as const;
  private readonly ctx: DockerContext;
  private readonly steps: StepContainers;
  private readonly serviceTimeoutMs: number;
  private readonly builds = new Map<string, DockerBuild>();

  constructor(private readonly options: DockerExecutorOptions) {
    const client = options.client;
    this.ctx = {
      client,
      ...(options.engine ? { engine: options.engine } : {}),
      images: new Images(client, options.pull ?? 'missing', options.pullTimeoutMs ?? 10 * 60_000),
      workspace: options.workspace ?? DEFAULT_WORKSPACE,
    };
    const engineCheckMs = options.engineCheckMs ?? 5000;
    const health = new EngineWatch(
      client,
      engineCheckMs,
      options.engineTimeoutMs ?? Math.max(10_000, engineCheckMs),
      options.engine,
    );
    this.steps = new StepContainers(this.ctx, health, {
      init: options.init ?? true,
      stopGraceMs: options.stopGraceMs ?? 2000,
    });
    this.serviceTimeoutMs = options.serviceTimeoutMs ?? 60_000;
  }

  /** The engine this executor talks to, when it was discovered. */
  get engine(): EngineInfo | undefined {
    return this.options.engine;
  }

  workspacePath(_buildId: string): string {
    return this.ctx.workspace;
  }

  async prepare(spec: BuildSpec, signal?: AbortSignal): Promise<BuildHandle> {
    const build = new DockerBuild(spec, this.ctx.workspace);
    // Registered first: if anything below throws, destroy() still finds the build's state.
    this.builds.set(spec.buildId, build);
    const checkAborted = () => {
      if (signal?.aborted) throw new ExecutorError('internal', 'cancelled while preparing the build');
    };
    await createWorkspace(this.ctx, build);
    checkAborted();
    // Seed now when an image is known (errors surface before any step, and services see the
    // files too); otherwise the first step seeds it with its own image.
    const seedImage = spec.image ?? spec.services.find((s) => s.image)?.image;
    if (seedImage && !build.seeded) {
      build.seeded = seedWorkspace(this.ctx, build, seedImage);
      await build.seeded;
    }
    checkAborted();
    if (spec.services.length > 0) {
      await startServices(
        this.ctx,
        build,
        {
          ...(this.options.infraImage ? { infraImage: this.options.infraImage } : {}),
          serviceTimeoutMs: this.serviceTimeoutMs,
        },
        signal,
      );
    }
    checkAborted();
    return build;
  }

  /**
   * The build as an earlier process prepared it, from labels: its workspace volume (whether it
   * was seeded), its infra container and services. Creates and restarts nothing.
   */
  async resumeBuild(spec: BuildSpec): Promise<BuildHandle> {
    const known = this.builds.get(spec.buildId);
    if (known && !known.destroyed) return known;
    const found = await findWorkspace(this.ctx, spec.buildId);
    if (!found) {
      throw new ExecutorError(
        'gone',
        `the workspace volume of build ${spec.buildId} is gone (removed, or the engine was reset)`,
      );
    }
    const build = new DockerBuild(spec, this.ctx.workspace);
    build.volume = found.volume;
    if (found.seeded) build.seeded = Promise.resolve();
    if (found.caches) build.caches = Promise.resolve(found.caches);
    if (spec.services.length > 0) {
      await findServices(this.ctx, build);
      if (!build.infra) {
        throw new ExecutorError(
          'gone',
          `the network namespace (infra container) of build ${spec.buildId} is gone: its services went with it`,
        );
      }
    }
    this.builds.set(spec.buildId, build);
    return build;
  }

  startStep(
    handle: BuildHandle,
    step: StepSpec,
    signal: AbortSignal,
    events: StepEvents = {},
  ): Promise<StepStart> {
    const build = this.builds.get(handle.buildId);
    if (!build || build.destroyed) {
      return Promise.resolve({
        exit: { kind: 'error', code: 'workspace', message: `build ${handle.buildId} is not prepared` },
      });
    }
    return this.steps.start(build, step, signal, events);
  }

  findStep(handle: BuildHandle, key: string, attempt: number): Promise<StepRef | undefined> {
    return this.steps.find(handle.buildId, key, attempt);
  }

  tailStep(
    handle: BuildHandle,
    ref: StepRef,
    from: OutputPosition,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<void> {
    return this.steps.tail(handle, ref, from, sink, signal);
  }

  waitStep(handle: BuildHandle, ref: StepRef, signal: AbortSignal): Promise<StepExit | undefined> {
    return this.steps.wait(handle, ref, signal);
  }

  stopStep(handle: BuildHandle, ref: StepRef): Promise<void> {
    return this.steps.stop(handle, ref);
  }

  releaseStep(handle: BuildHandle, ref: StepRef): Promise<void> {
    return this.steps.release(handle, ref);
  }

  /**
   * Reads artifact files from the workspace volume through a never-started helper container
   * that mounts it (see `collect-files.ts`); the helper uses an image the build already has.
   */
  async *collectFiles(
    handle: BuildHandle,
    patterns: readonly string[],
    signal?: AbortSignal,
  ): AsyncGenerator<WorkspaceEntry> {
    const build = this.builds.get(handle.buildId);
    if (!build || build.destroyed || !build.volume)
      throw new ExecutorError('workspace', `build ${handle.buildId} is not prepared`);
    const image = build.helperImage();
    if (!image)
      throw new ExecutorError('workspace', 'no image to read the workspace with: set image on the pipeline');
    const missing = await this.ctx.images.ensure(build.images, image);
    if (missing) throw new ExecutorError('image_unavailable', missing.message);
    const helper = await engineCall(
      this.engine,
      'create the artifact collection container',
      'workspace',
      () =>
        this.ctx.client.createContainer({
          name: `${build.prefix}-collect-${randomBytes(2).toString('hex')}`,
          Image: image,
          Cmd: ['/bin/true'],
          Labels: build.labels('collect'),
          HostConfig: {
            Mounts: [
              { Type: 'volume', Source: build.volume ?? '', Target: this.ctx.workspace, ReadOnly: true },
            ],
          },
        }),
    );
    try {
      yield* collectVolumeFiles(helper, this.ctx.workspace, patterns, signal);
    } finally {
      await helper.remove({ force: true }).catch(() => undefined);
    }
  }

  /**
   * Step caches: copies through a helper container that mounts the workspace volume and, for
   * `~/` paths, the caches volume the step's own shell copies to and from its HOME (cache-files.ts).
   */
  readonly cacheFiles = {
    home: true,
    out: (
      handle: BuildHandle,
      step: string,
      paths: readonly string[],
      dir: string,
      limits: { maxBytes: number; maxEntries: number },
      signal?: AbortSignal,
    ) => copyOut(this.ctx, this.preparedBuild(handle), step, paths, dir, limits, signal),
    in: (handle: BuildHandle, step: string, dir: string, signal?: AbortSignal) =>
      copyIn(this.ctx, this.preparedBuild(handle), step, dir, signal),
  };

  private preparedBuild(handle: BuildHandle): DockerBuild {
    const build = this.builds.get(handle.buildId);
    if (!build) throw new ExecutorError('workspace', `build ${handle.buildId} is not prepared`);
    return build;
  }

  async destroy(handle: BuildHandle): Promise<void> {
    const build = this.builds.get(handle.buildId);
    if (build) {
      build.destroyed = true;
      for (const service of build.services) if (service.output) destroyStream(service.output);
    }
    try {
      await this.removeResources(handle.buildId);
    } finally {
      this.builds.delete(handle.buildId);
    }
  }

  listResources(): Promise<ExecutorResource[]> {
    return listResources(this.ctx.client);
  }

  removeResources(buildId: string): Promise<void> {
    return removeResources(this.ctx.client, buildId);
  }
}
