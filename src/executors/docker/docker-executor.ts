/**
 * The `docker` executor: every step in a fresh container, through the Docker Engine API, so the
 * same code drives a Docker daemon or Podman's compatible socket.
 *
 * Per build it creates:
 *   - a volume, mounted at {@link DEFAULT_WORKSPACE} in every container and the steps' working
 *     directory; seeded from `BuildSpec.sourceDir` with a tar stream (`putArchive`);
 *   - when the pipeline has services, an *infra* container that owns one network namespace;
 *     services and steps join it (`NetworkMode: container:<infra>`), so a service listening on
 *     a port is `localhost:<port>` for every step: Kubernetes pod semantics, on both engines,
 *     without Podman's pod API. Builds without services skip it (one container fewer per build)
 *     and their steps use the engine's default network;
 *   - one container per step attempt, running `/bin/sh -e -c <commands>` under a tiny init, so
 *     SIGTERM reaches the shell and cancel is prompt.
 * Everything carries the labels in {@link LABELS}; `destroy`, `removeResources` and
 * `listResources` work from labels alone, so they also clean up after a crash of Slipway.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { LineSplitter } from '../lines.js';
import type {
  BuildHandle,
  BuildSpec,
  Executor,
  ExecutorResource,
  OutputSink,
  OutputStream,
  StepExit,
  StepSpec,
  WorkspaceEntry,
} from '../types.js';
import { ExecutorError } from '../types.js';
import { listSeed, tarFileList, WHOLE_DIRECTORY, type SeedList } from '../workspace-seed.js';
import type { ServicePlan } from '../../pipeline/types.js';
import type { ContainerCreateOptions, DockerClient, DockerContainer, Labels } from './client.js';
import { collectVolumeFiles } from './collect-files.js';
import { FrameDemuxer } from './demux.js';
import type { DiscoverOptions, EngineInfo } from './engine.js';
import { clientFor, discoverEngine } from './engine.js';

/** When images are pulled: only when not present (default), before every build, or never. */
export type PullPolicy = 'missing' | 'always' | 'never';
export const PULL_POLICIES: readonly PullPolicy[] = ['missing', 'always', 'never'];

/** Where the workspace volume is mounted in every container. */
export const DEFAULT_WORKSPACE = '/workspace';

/** Label keys on everything the executor creates. */
export const LABELS = {
  managed: 'slipway.managed',
  build: 'slipway.build',
  project: 'slipway.project',
  branch: 'slipway.branch',
  /** `stage/step` of a step container; empty on build-wide resources. */
  step: 'slipway.step',
  service: 'slipway.service',
  /** workspace | infra | service | step | seed | collect */
  role: 'slipway.role',
} as const;

export interface DockerExecutorOptions {
  /** The engine client (a dockerode instance, or anything with the {@link DockerClient} subset). */
  client: DockerClient;
  /** The engine it talks to, for messages. */
  engine?: EngineInfo;
  pull?: PullPolicy;
  /** Between SIGTERM and SIGKILL when a step is aborted; default 2000 ms. */
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
   * How often the engine is pinged while steps run; {@link ENGINE_CHECK_MISSES} failed pings in
   * a row end the running steps with an `error` (an engine that died may leave their
   * connections open). Default 5 s.
   */
  engineCheckMs?: number;
  /**
   * Bound on one health ping while steps run. A loaded engine answers late, not never: a
   * ping slower than the check interval is not a miss. Default the larger of 10 s and
   * `engineCheckMs`.
   */
  engineTimeoutMs?: number;
}

/** Failed health pings in a row before running steps end with `error`: one lost answer is not a dead engine. */
export const ENGINE_CHECK_MISSES = 3;

interface ServiceRun {
  name: string;
  container: DockerContainer;
  output?: NodeJS.ReadableStream;
}

/** Per-build state; the `BuildHandle` the orchestrator holds. */
class DockerBuild implements BuildHandle {
  readonly prefix: string;
  volume: string | undefined;
  infra: DockerContainer | undefined;
  /** Whether the infra container runs our shell keep-alive (so it can run port probes). */
  infraHasShell = false;
  readonly services: ServiceRun[] = [];
  readonly images = new Map<string, Promise<string | undefined>>();
  /** Set once the workspace is seeded (or seeding started); undefined while it still needs it. */
  seeded: Promise<void> | undefined;
  /** Background removals of finished step containers; destroy waits for them. */
  readonly pending = new Set<Promise<unknown>>();
  destroyed = false;

  constructor(
    readonly spec: BuildSpec,
    readonly workspace: string,
  ) {
    this.prefix = `slipway-${slug(spec.buildId, 40)}-${randomBytes(3).toString('hex')}`;
    if (!spec.sourceDir) this.seeded = Promise.resolve();
  }

  get buildId(): string {
    return this.spec.buildId;
  }

  labels(role: string, extra: Labels = {}): Labels {
    return {
      [LABELS.managed]: 'true',
      [LABELS.build]: this.spec.buildId,
      [LABELS.project]: this.spec.project,
      [LABELS.branch]: this.spec.branch,
      [LABELS.step]: '',
      [LABELS.role]: role,
      ...extra,
    };
  }

  track(promise: Promise<unknown>): void {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(settled);
    void settled.then(() => this.pending.delete(settled));
  }
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
  private readonly client: DockerClient;
  private readonly pullPolicy: PullPolicy;
  private readonly stopGraceMs: number;
  private readonly workspace: string;
  private readonly serviceTimeoutMs: number;
  private readonly pullTimeoutMs: number;
  private readonly init: boolean;
  private readonly engineCheckMs: number;
  private readonly engineTimeoutMs: number;
  private readonly builds = new Map<string, DockerBuild>();
  private readonly watchers = new Set<(reason: string) => void>();
  private watchdog: NodeJS.Timeout | undefined;

  constructor(private readonly options: DockerExecutorOptions) {
    this.client = options.client;
    this.pullPolicy = options.pull ?? 'missing';
    if (!PULL_POLICIES.includes(this.pullPolicy)) {
      throw new RangeError(
        `pull policy must be one of ${PULL_POLICIES.join(', ')}, got "${String(options.pull)}"`,
      );
    }
    this.stopGraceMs = options.stopGraceMs ?? 2000;
    this.workspace = options.workspace ?? DEFAULT_WORKSPACE;
    this.serviceTimeoutMs = options.serviceTimeoutMs ?? 60_000;
    this.pullTimeoutMs = options.pullTimeoutMs ?? 10 * 60_000;
    this.init = options.init ?? true;
    this.engineCheckMs = options.engineCheckMs ?? 5000;
    this.engineTimeoutMs = options.engineTimeoutMs ?? Math.max(10_000, this.engineCheckMs);
  }

  /** The engine this executor talks to, when it was discovered. */
  get engine(): EngineInfo | undefined {
    return this.options.engine;
  }

  workspacePath(_buildId: string): string {
    return this.workspace;
  }

  async prepare(spec: BuildSpec, signal?: AbortSignal): Promise<BuildHandle> {
    const build = new DockerBuild(spec, this.workspace);
    // Registered first: if anything below throws, destroy() still finds the build's state.
    this.builds.set(spec.buildId, build);
    const checkAborted = () => {
      if (signal?.aborted) throw new ExecutorError('internal', 'cancelled while preparing the build');
    };

    const volume = `${build.prefix}-workspace`;
    await this.engineCall('create the workspace volume', 'workspace', () =>
      this.client.createVolume({ Name: volume, Labels: build.labels('workspace') }),
    );
    build.volume = volume;
    checkAborted();

    // Seed now when an image is known (errors surface before any step, and services see the
    // files too); otherwise the first step seeds it with its own image.
    const seedImage = spec.image ?? spec.services.find((s) => s.image)?.image;
    if (seedImage && !build.seeded) {
      build.seeded = this.seedWorkspace(build, seedImage);
      await build.seeded;
    }
    checkAborted();

    if (spec.services.length > 0) await this.startServices(build, signal);
    checkAborted();
    return build;
  }

  async runStep(
    handle: BuildHandle,
    step: StepSpec,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<StepExit> {
    const build = this.builds.get(handle.buildId);
    if (!build || build.destroyed)
      return { kind: 'error', message: `build ${handle.buildId} is not prepared` };
    if (signal.aborted) return { kind: 'aborted' };
    const image = step.image ?? build.spec.image;
    if (!image) {
      return {
        kind: 'error',
        message: `step "${step.key}" has no image: set image on the step or the pipeline`,
      };
    }

    const ready = await raceAbort(this.ensureImage(build, image), signal);
    if (ready === ABORTED) return { kind: 'aborted' };
    if (ready !== undefined) return { kind: 'error', message: ready };
    if (!build.seeded) build.seeded = this.seedWorkspace(build, image);
    try {
      if ((await raceAbort(build.seeded, signal)) === ABORTED) return { kind: 'aborted' };
    } catch (error) {
      return { kind: 'error', message: errorText(error) };
    }

    let container: DockerContainer | undefined;
    try {
      container = await this.client.createContainer(this.stepContainer(build, step, image));
      const output = await container.attach({ stream: true, stdout: true, stderr: true });
      const drained = pipeOutput(output, sink);
      if (signal.aborted) {
        destroyStream(output);
        return { kind: 'aborted' };
      }
      await container.start();
      return await this.awaitExit(container, output, drained, signal);
    } catch (error) {
      return { kind: 'error', message: `container engine: ${errorText(error)}` };
    } finally {
      if (container) build.track(container.remove({ force: true }));
    }
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
    const image =
      build.spec.image ?? [...build.images.keys()][0] ?? build.spec.services.find((s) => s.image)?.image;
    if (!image)
      throw new ExecutorError('workspace', 'no image to read the workspace with: set image on the pipeline');
    const missing = await this.ensureImage(build, image);
    if (missing) throw new ExecutorError('image_unavailable', missing);
    const helper = await this.engineCall('create the artifact collection container', 'workspace', () =>
      this.client.createContainer({
        name: `${build.prefix}-collect-${randomBytes(2).toString('hex')}`,
        Image: image,
        Cmd: ['/bin/true'],
        Labels: build.labels('collect'),
        HostConfig: {
          Mounts: [{ Type: 'volume', Source: build.volume ?? '', Target: this.workspace, ReadOnly: true }],
        },
      }),
    );
    try {
      yield* collectVolumeFiles(helper, this.workspace, patterns, signal);
    } finally {
      await helper.remove({ force: true }).catch(() => undefined);
    }
  }

  async destroy(handle: BuildHandle): Promise<void> {
    const build = this.builds.get(handle.buildId);
    if (build) {
      build.destroyed = true;
      for (const service of build.services) if (service.output) destroyStream(service.output);
      await Promise.all(build.pending);
    }
    try {
      await this.removeResources(handle.buildId);
    } finally {
      this.builds.delete(handle.buildId);
    }
  }

  async listResources(): Promise<ExecutorResource[]> {
    const filters = labelFilter(`${LABELS.managed}=true`);
    const [containers, volumes, networks] = await Promise.all([
      this.client.listContainers({ all: true, filters }),
      this.client.listVolumes({ filters }),
      this.client.listNetworks({ filters }),
    ]);
    const resources: ExecutorResource[] = [];
    const describe = (labels: Labels | null | undefined) => {
      const l = labels ?? {};
      return {
        buildId: l[LABELS.build] ?? '',
        ...(l[LABELS.project] ? { project: l[LABELS.project] } : {}),
        ...(l[LABELS.step] ? { step: l[LABELS.step] } : {}),
      };
    };
    for (const c of containers) {
      resources.push({ kind: 'container', id: c.Id, running: c.State === 'running', ...describe(c.Labels) });
    }
    for (const v of volumes.Volumes ?? []) {
      resources.push({ kind: 'volume', id: v.Name, running: false, ...describe(v.Labels) });
    }
    for (const n of networks) {
      resources.push({ kind: 'network', id: n.Id, running: false, ...describe(n.Labels) });
    }
    return resources;
  }

  async removeResources(buildId: string): Promise<void> {
    const filters = labelFilter(`${LABELS.managed}=true`, `${LABELS.build}=${buildId}`);
    const failures: string[] = [];
    const attempt = async (what: string, remove: () => Promise<unknown>) => {
      try {
        await remove();
      } catch (error) {
        if (!isGone(error)) failures.push(`${what}: ${errorText(error)}`);
      }
    };
    // Podman 4's compatible API ORs several label filters for volumes (Docker ANDs them), so
    // what comes back is checked again here: never touch another build's resources.
    const ofBuild = (r: { Labels?: Labels | null }) =>
      r.Labels?.[LABELS.managed] === 'true' && r.Labels[LABELS.build] === buildId;
    const containers = (await this.client.listContainers({ all: true, filters })).filter(ofBuild);
    // Containers that joined the infra container's network namespace go first: Podman refuses
    // to remove a container others depend on.
    const isInfra = (c: { Labels?: Labels | null }) => c.Labels?.[LABELS.role] === 'infra';
    await Promise.all(
      containers
        .filter((c) => !isInfra(c))
        .map((c) =>
          attempt(`container ${c.Id}`, () => this.client.getContainer(c.Id).remove({ force: true, v: true })),
        ),
    );
    await Promise.all(
      containers
        .filter(isInfra)
        .map((c) =>
          attempt(`container ${c.Id}`, () => this.client.getContainer(c.Id).remove({ force: true, v: true })),
        ),
    );
    const [volumes, networks] = await Promise.all([
      this.client.listVolumes({ filters }),
      this.client.listNetworks({ filters }),
    ]);
    await Promise.all([
      ...(volumes.Volumes ?? [])
        .filter(ofBuild)
        .map((v) => attempt(`volume ${v.Name}`, () => this.client.getVolume(v.Name).remove())),
      ...networks
        .filter(ofBuild)
        .map((n) => attempt(`network ${n.Name}`, () => this.client.getNetwork(n.Id).remove())),
    ]);
    if (failures.length > 0) {
      throw new ExecutorError(
        'internal',
        `could not remove everything of build ${buildId}:\n  ${failures.join('\n  ')}`,
      );
    }
  }

  private stepContainer(build: DockerBuild, step: StepSpec, image: string): ContainerCreateOptions {
    return {
      name: `${build.prefix}-${slug(step.key, 60)}-${step.attempt}-${randomBytes(2).toString('hex')}`,
      Image: image,
      Cmd: ['/bin/sh', '-e', '-c', step.commands.join('\n')],
      Env: Object.entries(step.env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: this.workspace,
      Labels: build.labels('step', { [LABELS.step]: step.key, 'slipway.attempt': String(step.attempt) }),
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      HostConfig: {
        Mounts: [{ Type: 'volume', Source: build.volume ?? '', Target: this.workspace }],
        ...(build.infra ? { NetworkMode: `container:${build.infra.id}` } : {}),
        Init: this.init,
      },
    };
  }

  /** Waits for the step's container to exit; on abort stops it (grace, then kill). */
  private async awaitExit(
    container: DockerContainer,
    output: NodeJS.ReadableStream,
    drained: OutputDrain,
    signal: AbortSignal,
  ): Promise<StepExit> {
    const done = { value: false };
    // Whichever says first: the engine's wait, or inspect after the output stream ended.
    const exited = Promise.race([
      container.wait(),
      drained.ended.then(() => this.exitAfterOutput(container, done)),
    ]);
    // Two ways an engine can leave a step hanging: it never reports the exit after a kill, or
    // it dies while its connections stay open (Podman's conmon can keep them). Both end here.
    let giveUp: NodeJS.Timeout | undefined;
    let interrupt: (why: typeof STUCK | { lost: string }) => void = () => undefined;
    const interrupted = new Promise<typeof STUCK | { lost: string }>((resolve) => {
      interrupt = resolve;
    });
    const unwatch = this.watchEngine((reason) => interrupt({ lost: reason }));
    const onAbort = () => {
      void this.stop(container, exited);
      giveUp = setTimeout(() => interrupt(STUCK), this.stopGraceMs + 15_000);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    const what = () => (signal.aborted ? 'while stopping the step' : 'while the step ran');
    try {
      let result: Awaited<typeof exited> | typeof STUCK | { lost: string };
      try {
        result = await Promise.race([exited, interrupted]);
      } catch (error) {
        destroyStream(output);
        return { kind: 'error', message: `lost the container engine ${what()}: ${errorText(error)}` };
      }
      if (result === STUCK) {
        destroyStream(output);
        return { kind: 'aborted' };
      }
      if ('lost' in result) {
        destroyStream(output);
        return { kind: 'error', message: `lost the container engine ${what()}: ${result.lost}` };
      }
      await drained.settle();
      const exitCode = result.StatusCode;
      if (signal.aborted) return { kind: 'aborted', exitCode };
      if ('Error' in result && result.Error?.Message) {
        return { kind: 'error', message: `container engine: ${result.Error.Message}` };
      }
      return { kind: 'exited', exitCode };
    } finally {
      done.value = true;
      unwatch();
      clearTimeout(giveUp);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * The exit code, read by polling inspect once the output stream has ended. Podman's `wait`
   * reports an exit some 250–900 ms late (it polls, and waits for its cleanup process); the
   * end of the attach stream marks the exit at once. Never resolves if the container is
   * still running when `done` is set; the engine's `wait` answer is used then.
   */
  private async exitAfterOutput(
    container: DockerContainer,
    done: { value: boolean },
  ): Promise<{ StatusCode: number }> {
    for (let attempt = 0; !done.value; attempt++) {
      try {
        const { State } = await container.inspect();
        if (!State.Running && State.ExitCode !== undefined && FINISHED_STATES.has(State.Status ?? '')) {
          return { StatusCode: State.ExitCode };
        }
      } catch {
        // The engine's wait (or the watchdog) reports real failures.
      }
      await delay(Math.min(20 * 2 ** attempt, 1000));
    }
    return new Promise(() => undefined);
  }

  /**
   * Calls `onLost` when the engine stops answering pings ({@link ENGINE_CHECK_MISSES} in a row,
   * each bounded by `engineTimeoutMs`) while steps run. One timer serves all running steps; a
   * tick while a ping is still out is skipped, not counted. Returns an unsubscribe.
   */
  private watchEngine(onLost: (reason: string) => void): () => void {
    this.watchers.add(onLost);
    if (!this.watchdog) {
      let failures = 0;
      let busy = false;
      this.watchdog = setInterval(() => {
        if (busy) return;
        busy = true;
        void withTimeout(
          this.client.ping(),
          this.engineTimeoutMs,
          `no answer to ping within ${this.engineTimeoutMs} ms`,
        )
          .then(
            () => {
              failures = 0;
            },
            (error: unknown) => {
              failures += 1;
              if (failures < ENGINE_CHECK_MISSES) return;
              failures = 0;
              const where = this.engine ? ` at ${this.engine.address}` : '';
              const reason = `the engine${where} stopped answering (${ENGINE_CHECK_MISSES} pings in a row failed; last: ${errorText(error)})`;
              for (const watcher of [...this.watchers]) watcher(reason);
            },
          )
          .finally(() => {
            busy = false;
          });
      }, this.engineCheckMs);
      this.watchdog.unref();
    }
    return () => {
      this.watchers.delete(onLost);
      if (this.watchers.size === 0 && this.watchdog) {
        clearInterval(this.watchdog);
        this.watchdog = undefined;
      }
    };
  }

  /** SIGTERM, then SIGKILL when the container is still there after the grace period. */
  private async stop(container: DockerContainer, exited: Promise<unknown>): Promise<void> {
    const gone = exited.then(
      () => true,
      () => true,
    );
    await container.kill({ signal: 'SIGTERM' }).catch(() => undefined);
    if (await Promise.race([gone, delay(this.stopGraceMs).then(() => false)])) return;
    await container.kill({ signal: 'SIGKILL' }).catch(() => undefined);
  }

  /** Resolves to undefined when the image is there, or to the reason it cannot be had. */
  private ensureImage(build: DockerBuild, image: string): Promise<string | undefined> {
    let ready = build.images.get(image);
    if (!ready) {
      ready = this.fetchImage(image);
      build.images.set(image, ready);
    }
    return ready;
  }

  private async fetchImage(image: string): Promise<string | undefined> {
    if (this.pullPolicy !== 'always') {
      try {
        await this.client.getImage(image).inspect();
        return undefined;
      } catch (error) {
        if (!isGone(error)) return `cannot inspect image "${image}": ${errorText(error)}`;
        if (this.pullPolicy === 'never') {
          return `image "${image}" is not present on the engine and the pull policy is "never"`;
        }
      }
    }
    try {
      await this.pull(image);
    } catch (error) {
      return `cannot pull image "${image}": ${errorText(error)}`;
    }
    return undefined;
  }

  /** Pulls an image, reading the progress stream for an in-band `{error}`; bounded in time. */
  private async pull(image: string): Promise<void> {
    const stream = await this.client.pull(image);
    await new Promise<void>((resolve, reject) => {
      let failure: string | undefined;
      let partial = '';
      const timer = setTimeout(() => {
        destroyStream(stream);
        reject(new Error(`no result within ${Math.round(this.pullTimeoutMs / 1000)} s`));
      }, this.pullTimeoutMs);
      stream.on('data', (chunk: Buffer | string) => {
        const lines = (partial + chunk.toString()).split('\n');
        partial = (lines.pop() ?? '').slice(-65536);
        for (const line of lines) failure = pullError(line) ?? failure;
      });
      stream.on('error', (error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
      stream.on('end', () => {
        clearTimeout(timer);
        failure = pullError(partial) ?? failure;
        if (failure) reject(new Error(failure));
        else resolve();
      });
    });
  }

  /**
   * Copies the files of `sourceDir` that `listSeed` selects into the workspace volume: `tar`
   * of exactly that list on the host, extracted by the engine into a never-started helper
   * container that mounts the volume.
   */
  private async seedWorkspace(build: DockerBuild, image: string): Promise<void> {
    const sourceDir = build.spec.sourceDir;
    if (!sourceDir) return;
    let list: SeedList;
    try {
      list = await listSeed(sourceDir, build.spec.sourceSeed ?? WHOLE_DIRECTORY);
    } catch (error) {
      throw new ExecutorError(
        'workspace',
        `cannot copy ${sourceDir} into the workspace: ${errorText(error)}`,
        { cause: error },
      );
    }
    const missing = await this.ensureImage(build, image);
    if (missing) throw new ExecutorError('image_unavailable', missing);
    const helper = await this.engineCall('create the workspace seeding container', 'workspace', () =>
      this.client.createContainer({
        name: `${build.prefix}-seed`,
        Image: image,
        Cmd: ['/bin/true'],
        Labels: build.labels('seed'),
        HostConfig: { Mounts: [{ Type: 'volume', Source: build.volume ?? '', Target: this.workspace }] },
      }),
    );
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
        await helper.putArchive(tar.stdout, { path: this.workspace });
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
    } finally {
      await helper.remove({ force: true }).catch(() => undefined);
    }
  }

  private async startServices(build: DockerBuild, signal: AbortSignal | undefined): Promise<void> {
    const spec = build.spec;
    const ownInfraImage = this.options.infraImage;
    const infraImage = ownInfraImage ?? spec.image ?? spec.services.find((s) => s.image)?.image;
    if (!infraImage) {
      throw new ExecutorError(
        'service',
        'services need an image: set image on each service or on the pipeline',
      );
    }
    const missing = await this.ensureImage(build, infraImage);
    if (missing) throw new ExecutorError('image_unavailable', missing);
    const infra = await this.engineCall(
      'create the build network namespace (infra container)',
      'service',
      () =>
        this.client.createContainer({
          name: `${build.prefix}-infra`,
          Image: infraImage,
          // `read` on a stdin that stays open blocks forever: a keep-alive with no binary needed.
          ...(ownInfraImage ? {} : { Cmd: ['/bin/sh', '-c', 'read _'], OpenStdin: true }),
          Labels: build.labels('infra'),
        }),
    );
    build.infra = infra;
    build.infraHasShell = !ownInfraImage;
    await this.engineCall('start the infra container', 'service', () => infra.start());

    for (const service of spec.services) {
      if (signal?.aborted) return;
      await this.startService(build, service);
    }
    for (const service of spec.services) {
      if (service.waitFor === undefined) continue;
      await this.waitForPort(build, service, service.waitFor, signal);
    }
  }

  private async startService(build: DockerBuild, service: ServicePlan): Promise<void> {
    const image = service.image ?? build.spec.image;
    if (!image) throw new ExecutorError('service', `service "${service.name}" has no image`);
    const missing = await this.ensureImage(build, image);
    if (missing) throw new ExecutorError('image_unavailable', `service "${service.name}": ${missing}`);
    const what = `service "${service.name}"`;
    const container = await this.engineCall(`create ${what}`, 'service', () =>
      this.client.createContainer({
        name: `${build.prefix}-svc-${slug(service.name, 40)}`,
        Image: image,
        ...(service.commands ? { Cmd: ['/bin/sh', '-e', '-c', service.commands.join('\n')] } : {}),
        Env: Object.entries(service.env).map(([k, v]) => `${k}=${v}`),
        Labels: build.labels('service', { [LABELS.service]: service.name }),
        AttachStdout: true,
        AttachStderr: true,
        HostConfig: {
          Mounts: [{ Type: 'volume', Source: build.volume ?? '', Target: this.workspace }],
          NetworkMode: `container:${build.infra?.id ?? ''}`,
        },
      }),
    );
    const run: ServiceRun = { name: service.name, container };
    build.services.push(run);
    const sink = build.spec.serviceSink?.(service.name);
    if (sink) {
      const output = await this.engineCall(`attach to ${what}`, 'service', () =>
        container.attach({ stream: true, stdout: true, stderr: true }),
      );
      run.output = output;
      pipeOutput(output, sink);
    }
    await this.engineCall(`start ${what}`, 'service', () => container.start());
  }

  /**
   * Waits until something listens on `port` in the build's network namespace. The probe reads
   * `/proc/net/tcp{,6}` with shell builtins only, run inside the namespace by an exec, so it
   * needs no `nc` in any image and no route from the Slipway host into the build.
   */
  private async waitForPort(
    build: DockerBuild,
    service: ServicePlan,
    port: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const run = build.services.find((s) => s.name === service.name);
    const prober = build.infraHasShell ? build.infra : run?.container;
    if (!run || !prober) return;
    const hex = port.toString(16).toUpperCase().padStart(4, '0');
    const script =
      'for f in /proc/net/tcp /proc/net/tcp6; do [ -r "$f" ] || continue; ' +
      `while read -r _ a _ s _; do case "$a" in *:${hex}) [ "$s" = 0A ] && exit 0;; esac; done < "$f"; ` +
      'done; exit 1';
    const deadline = Date.now() + this.serviceTimeoutMs;
    let lastProblem = '';
    for (;;) {
      if (signal?.aborted) throw new ExecutorError('service', 'cancelled while waiting for services');
      try {
        const exec = await prober.exec({
          Cmd: ['/bin/sh', '-c', script],
          AttachStdout: true,
          AttachStderr: true,
        });
        const stream = await exec.start({ hijack: true, stdin: false });
        await new Promise<void>((resolve) => {
          stream.on('end', resolve);
          stream.on('close', resolve);
          stream.on('error', () => resolve());
          stream.resume();
        });
        if ((await exec.inspect()).ExitCode === 0) return;
        lastProblem = '';
      } catch (error) {
        lastProblem = `; last probe failed: ${errorText(error)}`;
      }
      const state = await run.container.inspect().then(
        (i) => i.State,
        () => undefined,
      );
      if (state && !state.Running) {
        throw new ExecutorError(
          'service',
          `service "${service.name}" exited (code ${state.ExitCode ?? '?'}) before port ${port} was open`,
        );
      }
      if (Date.now() >= deadline) {
        throw new ExecutorError(
          'service',
          `service "${service.name}" did not open port ${port} within ${Math.round(this.serviceTimeoutMs / 1000)} s${lastProblem}`,
        );
      }
      await delay(200);
    }
  }

  /** Runs an engine call during prepare, turning failures into ExecutorErrors with context. */
  private async engineCall<T>(what: string, code: ExecutorError['code'], call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (error instanceof ExecutorError) throw error;
      const unreachable = isConnectionError(error);
      throw new ExecutorError(
        unreachable ? 'engine_unavailable' : code,
        `cannot ${what}: ${errorText(error)}${unreachable && this.engine ? ` (engine ${this.engine.address})` : ''}`,
        { cause: error },
      );
    }
  }
}

interface OutputDrain {
  /** Resolves when the engine ended the output stream (the container's process exited). */
  ended: Promise<void>;
  /** Resolves when the output stream ended, or went quiet after the container exited. */
  settle(): Promise<void>;
}

/**
 * Streams a multiplexed container output into a sink, line by line, as it arrives: nothing is
 * buffered beyond one unfinished line per stream.
 */
function pipeOutput(output: NodeJS.ReadableStream, sink: OutputSink): OutputDrain {
  const splitters: Record<OutputStream, LineSplitter> = {
    stdout: new LineSplitter((text, continues) => sink.line('stdout', text, continues)),
    stderr: new LineSplitter((text, continues) => sink.line('stderr', text, continues)),
  };
  const demux = new FrameDemuxer((stream, bytes) => splitters[stream].write(bytes));
  let lastData = Date.now();
  let finished = false;
  const ended = new Promise<void>((resolve) => {
    const finish = () => {
      if (finished) return;
      finished = true;
      splitters.stdout.flush();
      splitters.stderr.flush();
      resolve();
    };
    output.on('data', (chunk: Buffer) => {
      lastData = Date.now();
      demux.write(chunk);
    });
    output.on('end', finish);
    output.on('close', finish);
    output.on('error', finish);
  });
  return {
    ended,
    // Engines end the attach stream when the container exits; if one does not, stop reading
    // once it has been quiet for a while so a step never hangs on it.
    async settle() {
      while (!finished) {
        const idle = Date.now() - lastData;
        if (idle >= 2000) {
          destroyStream(output);
          // `close` may not follow a destroy on every stream implementation.
          splitters.stdout.flush();
          splitters.stderr.flush();
          finished = true;
          return;
        }
        await Promise.race([ended, delay(2000 - idle)]);
      }
    },
  };
}

const ABORTED = Symbol('aborted');
const STUCK = Symbol('stuck');
/** Container states (Docker and Podman's compat API) in which the exit code is final. */
const FINISHED_STATES = new Set(['exited', 'dead', 'stopped']);

async function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | typeof ABORTED> {
  if (signal.aborted) return ABORTED;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<typeof ABORTED>((resolve) => {
    onAbort = () => resolve(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function destroyStream(stream: NodeJS.ReadableStream): void {
  const s = stream as NodeJS.ReadableStream & { destroy?: () => void };
  s.destroy?.();
}

function labelFilter(...labels: string[]): string {
  return JSON.stringify({ label: labels });
}

/** A pull-progress line's error message, if it is one. */
function pullError(line: string): string | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return undefined;
  try {
    const event = JSON.parse(trimmed) as { error?: unknown; errorDetail?: { message?: unknown } };
    const message = event.errorDetail?.message ?? event.error;
    return typeof message === 'string' && message !== '' ? message : undefined;
  } catch {
    return undefined;
  }
}

/** 404 (or "no such …"): already gone, which is what removal wanted. */
function isGone(error: unknown): boolean {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return status === 404 || /no such (container|volume|network|image)/i.test(errorText(error));
}

function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EACCES'].includes(String(code));
}

/** The engine's own message, without dockerode's `(HTTP code …) … -` prefix noise. */
function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const json = (error as { json?: { message?: unknown } | null }).json;
  if (json && typeof json.message === 'string') return json.message.trim();
  return error.message.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/** A name fragment the engine accepts: `[a-zA-Z0-9_.-]`, bounded in length. */
function slug(text: string, max: number): string {
  const cleaned = text.replace(/[^a-zA-Z0-9_.-]+/g, '-').replace(/^[-.]+/, '');
  return (cleaned || 'x').slice(0, max);
}
