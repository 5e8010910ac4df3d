/**
 * The `kubernetes` executor: a build is one pod (workspace `emptyDir`, services as containers
 * on localhost, a `hold` container keeping it up) and each step attempt an ephemeral container
 * added to it when the step starts. Why this layout: `DESIGN.md` next to this file.
 *
 * It talks to the cluster only through {@link KubeApi} (one namespace) and learns about pods
 * from one watch ({@link PodWatch}), so a step's start and exit are seen as soon as the API
 * server tells, and a build costs a few requests per step. Everything it creates carries the
 * `slipway.dev/*` labels and is owned by the build's pod: deleting the pod deletes the rest.
 * Pods outlive the server: a later process finds the build's pod and its step containers by
 * name and labels (`resumeBuild`, `findStep`) and follows them from the stored position.
 */
import { cacheHomeScript, cacheStepDir } from '../cache-home.js';
import { LineSplitter } from '../lines.js';
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
import { copyCacheOut, packRestores } from './cache-files.js';
import { collectPodFiles, type CollectPodOptions } from './collect-files.js';
import { KubeApiError, type KubeApi, type Pod } from './kube-api.js';
import {
  buildLabels,
  buildPodObjects,
  CACHES_DIR,
  CACHES_VOLUME,
  MAX_CACHE_RESTORE_BYTES_DEFAULT,
  podName,
  serviceContainerName,
  STOP_ANNOTATION,
  stepContainerName,
  stepObjects,
  WORKSPACE_DIR,
  MAX_SEED_BYTES_DEFAULT,
  type BuildPodInput,
} from './manifests/index.js';
import { containerPhase, exitOfTerminated, podFailure } from './pod-status.js';
import { PodWatch, type PodView } from './pod-watch.js';
import { packSeed } from './seed.js';
import { podUpRule, stepStartRule, type StartTimes } from './start-rules.js';

export type KubePullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface KubernetesExecutorOptions {
  api: KubeApi;
  /** `slipway.dev/installation` of everything this executor creates and adopts; default `default`. */
  installation?: string;
  /** Image with `sh`, `tar`, `gzip`, `sleep` for the `seed` and `hold` containers; default `busybox:1.36`. */
  helperImage?: string;
  pull?: KubePullPolicy;
  /** ServiceAccount of build pods (permission-less); default `slipway-build`. */
  serviceAccountName?: string;
  /** Between SIGTERM and SIGKILL when a step is stopped; default 2 s. */
  stopGraceSeconds?: number;
  /** How long a pod may stay unscheduled, or a container not started, before it fails; default 5 min. */
  pendingTimeoutMs?: number;
  /** How long a failing image pull is retried before the step fails with `image_pull`; default 20 s. */
  pullGraceMs?: number;
  /** Bound on a service's `wait_for` port; default 60 s. */
  serviceTimeoutMs?: number;
  /** Grace of the build pod's deletion at the end of the build; default 5 s. */
  deleteGraceSeconds?: number;
  /** The build's requests and limits (on `hold`: the pod's, so the steps'). */
  resources?: { cpu?: string; memory?: string };
  serviceResources?: { cpu?: string; memory?: string };
  workspace?: BuildPodInput['workspace'];
  /** Largest checkout (gzip'd) copied into the pod; default 64 MiB. */
  maxSeedBytes?: number;
  /**
   * Bytes (gzip'd) all of a build's cache restores may take on their way into the pod (through
   * etcd, as ConfigMaps, like the seed); default 64 MiB. A restore past it is left out.
   */
  maxCacheRestoreBytes?: number;
  /** The watch's watchdog (nothing at all received for this long: re-list). */
  watchdogMs?: number;
}

interface KubeBuild extends BuildHandle {
  readonly spec: BuildSpec;
  readonly pod: string;
  uid?: string;
  destroyed: boolean;
  /** Stops the services' log followers. */
  readonly followers: AbortController;
  /** Steps (keys) whose cache restore was staged in the pod; unknown after a restart. */
  staged?: Set<string>;
}

const LABEL_BUILD = 'slipway.dev/build';
const LABEL_INSTALLATION = 'slipway.dev/installation';
/** Re-checks time-based rules (grace, deadlines) this often while nothing changes. */
const TICK_MS = 1000;

export class KubernetesExecutor implements Executor {
  readonly name = 'kubernetes' as const;
  private readonly api: KubeApi;
  private readonly installation: string;
  private readonly watch: PodWatch;
  private readonly builds = new Map<string, KubeBuild>();
  /** Stop annotations are read-modify-write: one at a time per pod in this process. */
  private readonly stopChains = new Map<string, Promise<void>>();

  /**
   * Step caches (see DESIGN.md): restores reach the pod only when it is created (a pod's
   * volumes are fixed then), saves leave it through a collect container's log.
   */
  readonly cacheFiles: NonNullable<Executor['cacheFiles']>;

  constructor(private readonly options: KubernetesExecutorOptions) {
    this.api = options.api;
    this.cacheFiles = {
      home: true,
      restoreAtPrepare: { maxBytes: options.maxCacheRestoreBytes ?? MAX_CACHE_RESTORE_BYTES_DEFAULT },
      out: async (handle, step, paths, dir, limits, signal) => {
        const build = this.builds.get(handle.buildId);
        if (!build || build.destroyed)
          throw new ExecutorError('workspace', `build ${handle.buildId} is not prepared`);
        await this.watch.ready();
        return copyCacheOut(this.collectOptions(build), step, paths, dir, limits, signal);
      },
    };
    this.installation = options.installation ?? 'default';
    this.watch = new PodWatch(
      this.api,
      `${LABEL_INSTALLATION}=${labelValue(this.installation)}`,
      options.watchdogMs,
    );
  }

  get namespace(): string {
    return this.api.namespace;
  }

  workspacePath(_buildId: string): string {
    return WORKSPACE_DIR;
  }

  /** Ends the watch and every follower: the executor is not used again. */
  async close(): Promise<void> {
    for (const build of this.builds.values()) build.followers.abort();
    await this.watch.close();
  }

  async prepare(spec: BuildSpec, signal?: AbortSignal): Promise<BuildHandle> {
    const build = this.track(spec);
    const checkAborted = (): void => {
      if (signal?.aborted) throw new ExecutorError('internal', 'cancelled while preparing the build');
    };
    const seed = spec.sourceDir
      ? await packSeed(
          spec.sourceDir,
          spec.sourceSeed,
          this.options.maxSeedBytes ?? MAX_SEED_BYTES_DEFAULT,
          signal,
        )
      : undefined;
    checkAborted();
    const restores = spec.caches
      ? await packRestores(spec.caches, this.cacheFiles.restoreAtPrepare!.maxBytes, signal)
      : undefined;
    if (restores) build.staged = new Set(restores.map((r) => r.step));
    checkAborted();
    const objects = buildPodObjects({
      installation: this.installation,
      namespace: this.api.namespace,
      build: {
        buildId: spec.buildId,
        project: spec.project,
        branch: spec.branch,
        ...(spec.image ? { image: spec.image } : {}),
        services: spec.services,
      },
      helperImage: this.options.helperImage ?? 'busybox:1.36',
      serviceAccountName: this.options.serviceAccountName ?? 'slipway-build',
      ...(this.options.pull ? { pullPolicy: this.options.pull } : {}),
      ...(this.options.resources ? { resources: this.options.resources } : {}),
      ...(this.options.serviceResources ? { serviceResources: this.options.serviceResources } : {}),
      ...(this.options.workspace ? { workspace: this.options.workspace } : {}),
      ...(seed ? { seed } : {}),
      ...(restores ? { caches: { restores } } : {}),
    });
    await this.watch.ready();
    await this.call('create the services secret of the build', async () => {
      if (objects.serviceSecret) await alreadyExistsOk(this.api.createSecret(objects.serviceSecret));
      for (const configMap of objects.seed) await alreadyExistsOk(this.api.createConfigMap(configMap));
    });
    checkAborted();
    const pod = await this.call('create the build pod', async () => {
      try {
        return await this.api.createPod(objects.pod);
      } catch (error) {
        if (!(error instanceof KubeApiError && error.status === 409)) throw error;
        const existing = await this.api.getPod(build.pod);
        if (!existing || !this.ownsPod(existing, spec.buildId)) {
          throw new ExecutorError('internal', `a pod named ${build.pod} exists and is not this build's`);
        }
        return existing;
      }
    });
    this.watch.offer(pod);
    build.uid = pod.metadata?.uid;
    const owner = {
      apiVersion: 'v1',
      kind: 'Pod',
      name: build.pod,
      uid: build.uid ?? '',
      blockOwnerDeletion: false,
    };
    await this.call('make the build pod own its secret and seed', async () => {
      if (objects.serviceSecret?.metadata?.name)
        await this.api.setSecretOwner(objects.serviceSecret.metadata.name, owner);
      for (const configMap of objects.seed) {
        if (configMap.metadata?.name) await this.api.setConfigMapOwner(configMap.metadata.name, owner);
      }
    });
    await this.awaitPodUp(build, signal);
    this.followServices(build);
    return build;
  }

  async resumeBuild(spec: BuildSpec): Promise<BuildHandle> {
    const known = this.builds.get(spec.buildId);
    if (known && !known.destroyed) return known;
    const name = podName(spec.buildId);
    await this.watch.ready();
    const pod =
      this.watch.view(name).pod ?? (await this.call('read the build pod', () => this.api.getPod(name)));
    if (!pod || !this.ownsPod(pod, spec.buildId)) {
      throw new ExecutorError('gone', `the build pod ${name} of build ${spec.buildId} is gone`);
    }
    const failure = podFailure(pod);
    if (failure) throw new ExecutorError('gone', failure.message);
    const build = this.track(spec);
    build.uid = pod.metadata?.uid;
    this.followServices(build);
    return build;
  }

  async startStep(
    handle: BuildHandle,
    step: StepSpec,
    signal: AbortSignal,
    events: StepEvents = {},
  ): Promise<StepStart> {
    const build = this.builds.get(handle.buildId);
    if (!build || build.destroyed) {
      return {
        exit: { kind: 'error', code: 'workspace', message: `build ${handle.buildId} is not prepared` },
      };
    }
    const container = stepContainerName(step.key, step.attempt);
    const ref = (startedAt: number): StepRef => ({
      executor: 'kubernetes',
      id: `${build.pod}/${container}`,
      buildId: build.buildId,
      key: step.key,
      attempt: step.attempt,
      startedAt,
    });
    let pod: Pod | undefined;
    try {
      pod = await this.currentPod(build.pod);
      if (!pod) return { exit: goneExit(`the build pod ${build.pod} is gone`) };
      if (!hasEphemeral(pod, container)) {
        const caches = pod.spec?.volumes?.some((v) => v.name === CACHES_VOLUME) ?? false;
        // After a restart the staged restores are not known: every step looks (the script
        // only tests for directories).
        const wrap = caches && (step.cacheHome !== undefined || !build.staged || build.staged.has(step.key));
        const commands = wrap
          ? [
              cacheHomeScript(step.commands.join('\n'), {
                stepDir: cacheStepDir(CACHES_DIR, step.key),
                save: step.cacheHome?.save ?? [],
                workspace: WORKSPACE_DIR,
              }),
            ]
          : step.commands;
        const objects = stepObjects({
          installation: this.installation,
          namespace: this.api.namespace,
          build: {
            buildId: build.buildId,
            project: build.spec.project,
            branch: build.spec.branch,
            ...(build.spec.image ? { image: build.spec.image } : {}),
          },
          pod: { name: build.pod, uid: build.uid ?? pod.metadata?.uid ?? '' },
          step: { ...step, commands },
          caches,
          stopGraceSeconds: this.options.stopGraceSeconds ?? 2,
          ...(this.options.pull ? { pullPolicy: this.options.pull } : {}),
        });
        if (objects.secret) await alreadyExistsOk(this.api.createSecret(objects.secret));
        await this.api.addEphemeralContainer(build.pod, objects.container);
      }
    } catch (error) {
      return { exit: apiExit('start the step', error) };
    }
    const image = step.image ?? build.spec.image ?? '';
    events.pending?.(`starting container ${container} (image "${image}") in pod ${build.pod}`);
    const rule = stepStartRule(build.pod, container, image, this.times(), Date.now(), (text: string) =>
      events.pending?.(text),
    );
    const decided = await this.decide(build.pod, rule, signal);
    if (decided === undefined) {
      // Aborted while pending: make sure it never runs if the kubelet starts it later.
      await this.requestStop(build.pod, container).catch(() => undefined);
      return { exit: { kind: 'aborted' } };
    }
    if ('exit' in decided) {
      await this.requestStop(build.pod, container).catch(() => undefined);
      if (
        decided.exit.kind === 'error' &&
        (decided.exit.code === 'image_pull' || decided.exit.code === 'internal')
      ) {
        const warnings = await this.warnings(build.pod);
        if (warnings) return { exit: { ...decided.exit, message: `${decided.exit.message}\n${warnings}` } };
      }
      return { exit: decided.exit };
    }
    return { ref: ref(startTime(decided.running.startedAt, Date.now())) };
  }

  private times(): StartTimes {
    return {
      pullGraceMs: this.options.pullGraceMs ?? 20_000,
      pendingMs: this.options.pendingTimeoutMs ?? 5 * 60_000,
    };
  }

  async findStep(handle: BuildHandle, key: string, attempt: number): Promise<StepRef | undefined> {
    const name = podName(handle.buildId);
    const container = stepContainerName(key, attempt);
    let pod: Pod | undefined;
    try {
      pod = await this.currentPod(name);
    } catch {
      return undefined;
    }
    if (!pod || !this.ownsPod(pod, handle.buildId) || !hasEphemeral(pod, container)) return undefined;
    const phase = containerPhase(pod, container, 'ephemeral');
    if (phase.state !== 'running' && phase.state !== 'terminated') return undefined;
    return {
      executor: 'kubernetes',
      id: `${name}/${container}`,
      buildId: handle.buildId,
      key,
      attempt,
      startedAt: startTime(phase.startedAt, Date.now()),
    };
  }

  async tailStep(
    handle: BuildHandle,
    ref: StepRef,
    from: OutputPosition,
    sink: OutputSink,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      const adopted = await this.adopt(handle, ref);
      if (!adopted) return;
      const { pod, container } = adopted;
      let seen = 0;
      // The log API merges stdout and stderr: everything arrives as stdout.
      const splitter = new LineSplitter((text, continues) => {
        seen += 1;
        if (seen > from.stdout) sink.line('stdout', text, continues);
      });
      let complete: boolean;
      await this.api.followLog(
        {
          pod,
          container,
          signal,
          ended: () => {
            const view = this.watch.view(pod);
            complete =
              !view.pod ||
              containerPhase(view.pod, container, 'ephemeral').state === 'terminated' ||
              podFailure(view.pod) !== undefined;
            return Promise.resolve(complete);
          },
        },
        (line) => splitter.write(line.newline ? Buffer.concat([line.text, NEWLINE]) : line.text),
      );
      if (!signal.aborted) splitter.flush();
    } catch {
      // Never rejects: waitStep tells what happened to the step.
    }
  }

  async waitStep(handle: BuildHandle, ref: StepRef, signal: AbortSignal): Promise<StepExit | undefined> {
    let adopted;
    try {
      adopted = await this.adopt(handle, ref);
    } catch (error) {
      return apiExit('find the step', error);
    }
    if (!adopted)
      return goneExit(`step ${ref.key} (${ref.id}) is gone: no such container in the build's pod`);
    const { pod: name, container } = adopted;
    const view = await this.watch.until(
      name,
      (v) =>
        !v.pod ||
        containerPhase(v.pod, container, 'ephemeral').state === 'terminated' ||
        podFailure(v.pod) !== undefined,
      signal,
    );
    if (!view) return undefined;
    if (!view.pod) return goneExit(`the build pod ${name} was deleted while step ${ref.key} ran`);
    const phase = containerPhase(view.pod, container, 'ephemeral');
    const failure = podFailure(view.pod);
    if (phase.state === 'terminated') {
      // A pod evicted under a step kills it: the eviction is the reason, not exit 137.
      if (failure?.code === 'evicted' && phase.exitCode >= 128)
        return { kind: 'error', ...failure, exitCode: phase.exitCode };
      return exitOfTerminated(phase);
    }
    return failure ? { kind: 'error', ...failure } : goneExit(`step ${ref.key} is gone`);
  }

  async stopStep(handle: BuildHandle, ref: StepRef): Promise<void> {
    const adopted = await this.adopt(handle, ref).catch(() => undefined);
    if (!adopted) return;
    const { pod, container } = adopted;
    const done = (v: PodView): boolean => {
      if (!v.pod || podFailure(v.pod)) return true;
      const phase = containerPhase(v.pod, container, 'ephemeral');
      return phase.state === 'terminated';
    };
    if (done(this.watch.view(pod))) return;
    // The wrapper reads the annotation through a downward-API file the kubelet refreshes: ask
    // again now and then until the container ended (an update may be slow, or lost to a race).
    for (;;) {
      await this.requestStop(pod, container).catch(() => undefined);
      const retry = AbortSignal.timeout(((this.options.stopGraceSeconds ?? 2) + 15) * 1000);
      const view = await this.watch.until(pod, done, retry);
      if (view) return;
    }
  }

  /** Ephemeral containers cannot be removed: the step's container and log go with the pod. */
  async releaseStep(_handle: BuildHandle, _ref: StepRef): Promise<void> {}

  /**
   * Reads artifact files through the log of a `collect-…` ephemeral container that tars them
   * (no exec, no network from the pod): see `collect-files.ts`.
   */
  async *collectFiles(
    handle: BuildHandle,
    patterns: readonly string[],
    signal?: AbortSignal,
  ): AsyncGenerator<WorkspaceEntry> {
    const build = this.builds.get(handle.buildId);
    if (!build || build.destroyed)
      throw new ExecutorError('workspace', `build ${handle.buildId} is not prepared`);
    await this.watch.ready();
    yield* collectPodFiles(this.collectOptions(build), patterns, signal);
  }

  private collectOptions(build: KubeBuild): CollectPodOptions {
    return {
      api: this.api,
      watch: this.watch,
      pod: build.pod,
      helperImage: this.options.helperImage ?? 'busybox:1.36',
      ...(this.options.pull ? { pullPolicy: this.options.pull } : {}),
      ...(this.options.pendingTimeoutMs !== undefined
        ? { pendingTimeoutMs: this.options.pendingTimeoutMs }
        : {}),
      ...(this.options.pullGraceMs !== undefined ? { pullGraceMs: this.options.pullGraceMs } : {}),
    };
  }

  async destroy(handle: BuildHandle): Promise<void> {
    const build = this.builds.get(handle.buildId);
    if (build) {
      build.destroyed = true;
      build.followers.abort();
    }
    try {
      await this.removeResources(handle.buildId);
    } finally {
      this.builds.delete(handle.buildId);
    }
  }

  async listResources(): Promise<ExecutorResource[]> {
    const selector = `${LABEL_INSTALLATION}=${labelValue(this.installation)}`;
    const { items } = await this.call('list build pods', () => this.api.listPods(selector));
    return items.map((pod) => ({
      kind: 'pod' as const,
      id: pod.metadata?.name ?? '',
      buildId: pod.metadata?.annotations?.[LABEL_BUILD] ?? pod.metadata?.labels?.[LABEL_BUILD] ?? '',
      ...(pod.metadata?.annotations?.['slipway.dev/project']
        ? { project: pod.metadata.annotations['slipway.dev/project'] }
        : {}),
      running: !podFailure(pod),
    }));
  }

  async removeResources(buildId: string): Promise<void> {
    const selector = this.buildSelector(buildId);
    await this.call('remove the build pod', async () => {
      await this.api.deletePod(podName(buildId), this.options.deleteGraceSeconds ?? 5);
      await this.api.deletePods(selector);
      await this.api.deleteSecrets(selector);
      await this.api.deleteConfigMaps(selector);
    });
    // Removed means gone, not terminating. Bounded: a node that went away leaves the pod
    // terminating until the cluster gives up on it.
    await this.watch.until(
      podName(buildId),
      (v) => !v.pod,
      AbortSignal.timeout(((this.options.deleteGraceSeconds ?? 5) + 60) * 1000),
    );
  }

  // ---------------------------------------------------------------------------------------

  private track(spec: BuildSpec): KubeBuild {
    const build: KubeBuild = {
      buildId: spec.buildId,
      workspace: WORKSPACE_DIR,
      spec,
      pod: podName(spec.buildId),
      destroyed: false,
      followers: new AbortController(),
    };
    this.builds.set(spec.buildId, build);
    return build;
  }

  private buildSelector(buildId: string): string {
    const labels = buildLabels(this.installation, { buildId, project: '-', branch: '-' });
    return `${LABEL_INSTALLATION}=${labels[LABEL_INSTALLATION]},${LABEL_BUILD}=${labels[LABEL_BUILD]}`;
  }

  /** Whether a pod is this installation's pod of this build (labels and the full build id). */
  private ownsPod(pod: Pod, buildId: string): boolean {
    const labels = buildLabels(this.installation, { buildId, project: '-', branch: '-' });
    const meta = pod.metadata;
    return (
      meta?.labels?.[LABEL_INSTALLATION] === labels[LABEL_INSTALLATION] &&
      meta?.labels?.[LABEL_BUILD] === labels[LABEL_BUILD] &&
      (meta?.annotations?.[LABEL_BUILD] ?? buildId) === buildId
    );
  }

  /** The pod and container a ref names, only if they are this build's step and attempt. */
  private async adopt(
    handle: BuildHandle,
    ref: StepRef,
  ): Promise<{ pod: string; container: string } | undefined> {
    if (ref.executor !== 'kubernetes' || ref.buildId !== handle.buildId) return undefined;
    const pod = podName(handle.buildId);
    const container = stepContainerName(ref.key, ref.attempt);
    if (ref.id !== `${pod}/${container}`) return undefined;
    const current = await this.currentPod(pod);
    if (!current || !this.ownsPod(current, handle.buildId) || !hasEphemeral(current, container))
      return undefined;
    return { pod, container };
  }

  /** The pod as the watch has it (or from the API when the watch has not seen it yet). */
  private async currentPod(name: string): Promise<Pod | undefined> {
    await this.watch.ready();
    const view = this.watch.view(name);
    if (view.pod || view.deleted) return view.pod;
    const pod = await this.api.getPod(name);
    if (pod) this.watch.offer(pod);
    return pod;
  }

  /**
   * Waits for `decide` to return a result, re-asked on every change of the pod and every
   * second (for its time-based rules); `undefined` when `signal` aborts first.
   */
  private async decide<T>(
    pod: string,
    decide: (view: PodView, now: number) => T | undefined,
    signal?: AbortSignal,
  ): Promise<T | undefined> {
    for (;;) {
      if (signal?.aborted) return undefined;
      let result: T | undefined;
      const tick = AbortSignal.timeout(TICK_MS);
      await this.watch.until(
        pod,
        (view) => (result = decide(view, Date.now())) !== undefined,
        signal ? AbortSignal.any([signal, tick]) : tick,
      );
      if (result !== undefined) return result;
    }
  }

  /** Waits for the build pod to run `hold` and every service (started: `wait_for` answered). */
  private async awaitPodUp(build: KubeBuild, signal?: AbortSignal): Promise<void> {
    const rule = podUpRule(
      build.pod,
      build.spec.services,
      { ...this.times(), serviceMs: this.options.serviceTimeoutMs ?? 60_000 },
      Date.now(),
    );
    const result = await this.decide(build.pod, rule, signal);
    if (!result) throw new ExecutorError('internal', 'cancelled while preparing the build');
    if ('error' in result) {
      const warnings = await this.warnings(build.pod);
      if (warnings) throw new ExecutorError(result.error.code, `${result.error.message}\n${warnings}`);
      throw result.error;
    }
  }

  /** Follows each service's log into its sink until the build ends. */
  private followServices(build: KubeBuild): void {
    const sinkOf = build.spec.serviceSink;
    if (!sinkOf) return;
    for (const service of build.spec.services) {
      const container = serviceContainerName(service.name);
      const sink = sinkOf(service.name);
      const splitter = new LineSplitter((text, continues) => sink.line('stdout', text, continues));
      void this.api
        .followLog(
          {
            pod: build.pod,
            container,
            signal: build.followers.signal,
            ended: () => {
              const view = this.watch.view(build.pod);
              return Promise.resolve(
                !view.pod || containerPhase(view.pod, container, 'container').state === 'terminated',
              );
            },
          },
          (line) => splitter.write(line.newline ? Buffer.concat([line.text, NEWLINE]) : line.text),
        )
        .then(() => splitter.flush())
        .catch(() => undefined);
    }
  }

  /** Adds a container to the pod's stop annotation (read-modify-write, one at a time per pod). */
  private requestStop(pod: string, container: string): Promise<void> {
    const previous = this.stopChains.get(pod) ?? Promise.resolve();
    const next = previous.then(async () => {
      const current = await this.api.getPod(pod);
      if (!current) return;
      const names = new Set(
        (current.metadata?.annotations?.[STOP_ANNOTATION] ?? '').split(' ').filter(Boolean),
      );
      if (names.has(container)) return;
      names.add(container);
      this.watch.offer(await this.api.annotatePod(pod, { [STOP_ANNOTATION]: [...names].join(' ') }));
    });
    const settled = next.catch(() => undefined);
    this.stopChains.set(pod, settled);
    void settled.then(() => {
      if (this.stopChains.get(pod) === settled) this.stopChains.delete(pod);
    });
    return next;
  }

  /** The pod's Warning events, as lines for a message ('' when none or unreadable). */
  private async warnings(pod: string): Promise<string> {
    try {
      const events = await this.api.podWarnings(pod);
      return events
        .slice(-5)
        .map((e) => `kubernetes: ${e.reason ?? 'Warning'}: ${e.message ?? ''}`.trim())
        .join('\n');
    } catch {
      return '';
    }
  }

  /** Runs an API call; a failure becomes an ExecutorError that says what was attempted. */
  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof ExecutorError) throw error;
      throw new ExecutorError(
        error instanceof KubeApiError && error.status === 0 ? 'engine_unavailable' : 'internal',
        `could not ${what} in namespace ${this.api.namespace}: ${errorText(error)}`,
        { cause: error },
      );
    }
  }
}

const NEWLINE = Buffer.from('\n');

function hasEphemeral(pod: Pod, container: string): boolean {
  return pod.spec?.ephemeralContainers?.some((c) => c.name === container) ?? false;
}

function goneExit(message: string): StepExit {
  return { kind: 'error', code: 'gone', message };
}

function apiExit(what: string, error: unknown): StepExit {
  const unreachable = error instanceof KubeApiError && error.status === 0;
  return {
    kind: 'error',
    code: unreachable ? 'engine_unavailable' : 'internal',
    message: `could not ${what}: ${errorText(error)}`,
  };
}

async function alreadyExistsOk<T>(request: Promise<T>): Promise<void> {
  try {
    await request;
  } catch (error) {
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
}

function startTime(startedAt: string | undefined, fallback: number): number {
  const parsed = startedAt ? Date.parse(startedAt) : NaN;
  return Number.isFinite(parsed) ? parsed : fallback;
}

function labelValue(value: string): string {
  return buildLabels(value, { buildId: '-', project: '-', branch: '-' })[LABEL_INSTALLATION] ?? value;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
