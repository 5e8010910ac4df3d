/**
 * A kubelet for the stand-in API server that runs its pods for real on Podman (through the
 * CLI): a Podman pod per Kubernetes pod (shared network, IPC and UTS namespaces; hostname = pod
 * name), volumes as directories under `stateDir`, init containers in order, then the
 * containers, ephemeral containers when added, startup probes from the node, and pod status as
 * a kubelet reports it. Container starts and exits are seen through one `podman events` stream
 * (not polling); each event triggers a `podman inspect` of that container.
 *
 * Where Podman 4.3 on this host cannot be faithful, and what was done instead:
 * - OOM: Podman reports `State.OOMKilled: false` for a container the memory cgroup killed
 *   (hybrid cgroups, runc); the kernel log's oom-kill record for the container is read instead
 *   (see oom.ts). The `oomKill` fault sends SIGKILL (`podman kill -s KILL`), no real OOM, and
 *   reports it as the kernel's would be (terminated, 137, OOMKilled).
 * - Logs: conmon's k8s-file driver writes the CRI format with the time's offset spelled
 *   `+00:00` (CRI-O's format: it uses conmon too); containerd writes `Z`. Both are RFC 3339.
 * - Status times have a second's precision as the API's; `containerID` is `podman://<id>`.
 * - Images are never pulled (no registry): an image is present when `podman image exists`
 *   says so. Short names resolve as Podman resolves them (`busybox` may find
 *   `localhost/busybox`), not as a node would (`docker.io/library/busybox`).
 * - A missing key of an existing Secret reads as a missing Secret (`secret "x" not found`):
 *   PodHost.secretValue says only "no value". envFrom secretRef and secret volumes without
 *   `items` are not supported for the same reason (they fail with a clear message).
 * - A missing ConfigMap volume holds every container in ContainerCreating/PodInitializing
 *   with FailedMount warnings, as on a node (volumes are mounted before any container).
 * - Retries of a container's config (secrets, ConfigMaps) and mounts run every second; a
 *   kubelet resyncs on a slower period. Image pulls back off 10 s, doubling to 5 min.
 * - Repeated probe failures with the same output are one Warning, as the event recorder
 *   aggregates them into one Event with a count.
 * - emptyDir `sizeLimit` and ephemeral-storage eviction are not enforced; a PVC is a directory
 *   per claim under `stateDir/pvc`, bound at once.
 * - The BackOff event of an image pull is Normal on a node; PodHost records only Warnings, so
 *   it is a Warning here.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IContainerStatus } from 'kubernetes-models/v1/ContainerStatus';
import { invalidImageMessage, podMemoryLimit, resolveEnv, runArgs } from './container-config.js';
import { OomLog } from './oom.js';
import {
  podman,
  podmanContainer,
  podmanExists,
  podmanInspect,
  podmanPod,
  PodmanEventStream,
  type PodmanEvent,
} from './podman-cli.js';
import { podConditions, podPhase, type PodState } from './pod-status.js';
import { probeOnce } from './probes.js';
import type { Kubelet, KubeletFaults, PodHost } from './types.js';
import {
  aborted,
  type InspectedContainer,
  nodeIP,
  removeLeftovers,
  removeWhere,
  seconds,
  sleep,
  STAND_IN_LABEL,
} from './support.js';
import { MountError, PodVolumes } from './volumes.js';

export { STAND_IN_LABEL } from './support.js';
const RETRY_MS = 1000;

type Kind = 'init' | 'regular' | 'ephemeral';

interface ContainerRun {
  kind: Kind;
  name: string;
  spec: IContainer;
  podmanName: string;
  status: IContainerStatus;
  /** `podman run` succeeded: state comes from inspect from now on. */
  created: boolean;
  /** Set by a terminal decision the runtime cannot show (StartError). */
  final: boolean;
  startupOk: boolean;
  oomFault: boolean;
  lastWarning?: string;
  exited: Promise<void>;
  markExited: () => void;
  refreshing: Promise<void>;
}

interface PodRun {
  host: PodHost;
  name: string;
  podmanPod: string;
  dir: string;
  volumes: PodVolumes;
  state: PodState;
  containers: Map<string, ContainerRun>;
  podIP?: string;
  startTime?: string;
  /** Aborted when the pod is deleted or evicted, or the kubelet closes. */
  stop: AbortController;
  /** Resolves once the sandbox runs and the volumes are set up (ephemeral containers wait). */
  ready: Promise<boolean>;
  markReady: (ok: boolean) => void;
  tasks: Set<Promise<void>>;
  sandbox: boolean;
  /** The pod reached Succeeded or Failed: what still runs (ephemeral containers) is stopped. */
  terminating: boolean;
}

export class PodmanKubelet implements Kubelet {
  readonly faults: KubeletFaults;
  private readonly instance = randomUUID().slice(0, 8);
  private readonly labels: Record<string, string>;
  private readonly pods = new Map<string, PodRun>();
  private readonly byPodmanName = new Map<string, { run: PodRun; container: ContainerRun }>();
  private readonly unpullable = new Set<string>();
  private readonly imageIds = new Map<string, string>();
  private readonly oom = new OomLog();
  private readonly events: PodmanEventStream;
  private readonly hostIP = nodeIP();
  private readonly cleaned: Promise<void>;
  private unschedulable: string | undefined;
  private closed = false;

  constructor(private readonly options: { namespace: string; stateDir: string }) {
    this.labels = {
      [STAND_IN_LABEL]: '1',
      [`${STAND_IN_LABEL}.namespace`]: options.namespace,
      [`${STAND_IN_LABEL}.kubelet`]: this.instance,
      [`${STAND_IN_LABEL}.pid`]: String(process.pid),
    };
    this.events = new PodmanEventStream(
      `${STAND_IN_LABEL}.kubelet=${this.instance}`,
      (event) => this.onEvent(event),
      new Date(Date.now() - 1000),
    );
    this.cleaned = removeLeftovers();
    this.faults = {
      unpullable: (image) => void this.unpullable.add(image),
      unschedulable: (message) => this.setUnschedulable(message),
      oomKill: (pod, container) => this.oomKill(pod, container),
      evict: (pod, message) => this.evict(pod, message),
    };
  }

  startPod(host: PodHost): void {
    const pod = host.pod();
    const name = pod?.metadata?.name;
    if (!pod || !name || this.closed) return;
    const podmanPod = `${this.options.namespace}-${name}`;
    let markReady: (ok: boolean) => void = () => undefined;
    const ready = new Promise<boolean>((resolve) => (markReady = resolve));
    const run: PodRun = {
      host,
      name,
      podmanPod,
      dir: join(this.options.stateDir, 'pods', name),
      volumes: new PodVolumes(join(this.options.stateDir, 'pods', name), join(this.options.stateDir, 'pvc')),
      state: { scheduled: false, sandboxReady: false, init: [], containers: [], ephemeral: [] },
      containers: new Map(),
      stop: new AbortController(),
      ready,
      markReady,
      tasks: new Set(),
      sandbox: false,
      terminating: false,
    };
    this.pods.set(name, run);
    for (const spec of pod.spec?.initContainers ?? []) this.addContainer(run, 'init', spec);
    for (const spec of pod.spec?.containers ?? []) this.addContainer(run, 'regular', spec);
    const ephemeral = (pod.spec?.ephemeralContainers ?? []).map((spec) => spec.name);
    if (this.unschedulable !== undefined) {
      run.state.unschedulable = this.unschedulable;
      host.warn('FailedScheduling', this.unschedulable);
      this.publish(run);
    } else {
      this.track(run, this.runPod(run));
    }
    if (ephemeral.length > 0) this.ephemeralContainersAdded(host, ephemeral);
  }

  ephemeralContainersAdded(host: PodHost, names: string[]): void {
    const run = this.pods.get(host.pod()?.metadata?.name ?? '');
    if (!run) return;
    for (const name of names) {
      const spec = host.pod()?.spec?.ephemeralContainers?.find((c) => c.name === name);
      if (!spec || run.containers.has(name)) continue;
      const container = this.addContainer(run, 'ephemeral', spec);
      this.publish(run);
      // Ephemeral containers start once the sandbox runs, even before initialisation ends.
      this.track(
        run,
        run.ready.then((ok) => (ok ? this.startContainer(run, container) : undefined)),
      );
    }
  }

  annotationsChanged(host: PodHost): void {
    const run = this.pods.get(host.pod()?.metadata?.name ?? '');
    if (!run?.sandbox) return;
    this.track(
      run,
      run.volumes.refreshDownwardApi(host, this.hostIP).catch(() => undefined),
    );
  }

  deletePod(host: PodHost, gracePeriodSeconds: number): void {
    const name = host.pod()?.metadata?.name ?? '';
    const run = this.pods.get(name);
    if (!run) {
      host.removed();
      return;
    }
    run.stop.abort();
    run.terminating = true; // the delete below stops the pod itself
    void (async () => {
      await this.settle(run);
      if (run.sandbox) {
        await podmanPod('stop', run.podmanPod, Math.max(0, Math.round(gracePeriodSeconds)));
        await this.refreshAll(run);
        await podmanPod('rm', run.podmanPod);
      }
      await run.volumes.tearDown().catch(() => undefined);
      await rm(run.dir, { recursive: true, force: true }).catch(() => undefined);
      for (const container of run.containers.values()) this.byPodmanName.delete(container.podmanName);
      if (this.pods.get(name) === run) this.pods.delete(name);
      host.removed();
      // The logs were needed until now (the API serves them while the pod exists).
      rmSync(join(this.options.stateDir, 'logs', name), { recursive: true, force: true });
    })();
  }

  logFile(podName: string, container: string): string | undefined {
    const path = this.logPath(podName, container);
    return existsSync(path) ? path : undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const run of this.pods.values()) run.stop.abort();
    await Promise.all([...this.pods.values()].map((run) => this.settle(run)));
    this.events.close();
    await this.cleaned;
    await removeWhere(`label=${STAND_IN_LABEL}.kubelet=${this.instance}`);
    await this.oom.close();
    this.pods.clear();
    await rm(join(this.options.stateDir, 'pods'), { recursive: true, force: true });
    await rm(join(this.options.stateDir, 'logs'), { recursive: true, force: true });
  }

  // --- a pod's life ---

  private async runPod(run: PodRun): Promise<void> {
    const { host, markReady } = run;
    run.state.scheduled = true;
    run.startTime = seconds(new Date());
    this.publish(run);
    await this.cleaned;
    if (!(await this.createSandbox(run))) return markReady(false);
    while (!run.stop.signal.aborted) {
      try {
        await run.volumes.setUp(host, this.hostIP);
        break;
      } catch (error) {
        if (!(error instanceof MountError)) throw error;
        this.warnOnce(run, 'FailedMount', error.message);
        await sleep(RETRY_MS, run.stop.signal);
      }
    }
    if (run.stop.signal.aborted) return markReady(false);
    markReady(true);
    for (const container of run.containers.values()) {
      if (container.kind !== 'init') continue;
      await this.startContainer(run, container);
      await Promise.race([container.exited, aborted(run.stop.signal)]);
      if (run.stop.signal.aborted) return;
      if (container.status.state?.terminated?.exitCode !== 0) return; // the pod has failed
    }
    const regular = [...run.containers.values()].filter((c) => c.kind === 'regular');
    await Promise.all(regular.map((container) => this.startContainer(run, container)));
  }

  private async createSandbox(run: PodRun): Promise<boolean> {
    const pod = run.host.pod();
    const limit = pod ? podMemoryLimit(pod) : undefined;
    const args = ['pod', 'create', '--name', run.podmanPod, '--hostname', run.name];
    for (const [key, value] of Object.entries(this.labels)) args.push('--label', `${key}=${value}`);
    if (limit !== undefined) args.push('--memory', String(limit), '--memory-swap', String(limit));
    for (;;) {
      if (run.stop.signal.aborted) return false;
      const created = await podman(args);
      if (created.ok) break;
      this.warnOnce(run, 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${created.stderr.trim()}`);
      await sleep(RETRY_MS, run.stop.signal);
    }
    run.sandbox = true;
    await podmanPod('start', run.podmanPod);
    const sandbox = (await podmanInspect('pod', run.podmanPod)) as { InfraContainerID?: string } | undefined;
    const infra = sandbox?.InfraContainerID
      ? ((await podmanInspect('container', sandbox.InfraContainerID)) as
          { NetworkSettings?: { IPAddress?: string } } | undefined)
      : undefined;
    run.podIP = infra?.NetworkSettings?.IPAddress || undefined;
    run.state.sandboxReady = true;
    this.publish(run);
    return !run.stop.signal.aborted;
  }

  /** Starts one container: waits out image and config problems (reporting them), then runs it. */
  private async startContainer(run: PodRun, container: ContainerRun): Promise<void> {
    const image = container.spec.image ?? '';
    let backoffMs = 10_000;
    while (!run.stop.signal.aborted) {
      const pod = run.host.pod();
      if (!pod) return;
      const invalid = invalidImageMessage(image);
      if (invalid) {
        this.wait(run, container, 'InvalidImageName', invalid);
        run.host.warn('InspectFailed', invalid);
        run.host.warn('Failed', 'Error: InvalidImageName');
        return;
      }
      if (!(await this.imagePresent(image))) {
        if (container.spec.imagePullPolicy === 'Never') {
          const message = `Container image "${image}" is not present with pull policy of Never`;
          this.wait(run, container, 'ErrImageNeverPull', message);
          this.warnOnce(run, 'ErrImageNeverPull', message, container);
          await sleep(RETRY_MS, run.stop.signal);
          continue;
        }
        const error = `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`;
        this.wait(run, container, 'ErrImagePull', error);
        run.host.warn('Failed', `Failed to pull image "${image}": ${error}`);
        run.host.warn('Failed', 'Error: ErrImagePull');
        await sleep(RETRY_MS, run.stop.signal);
        if (run.stop.signal.aborted) return;
        this.wait(
          run,
          container,
          'ImagePullBackOff',
          `Back-off pulling image "${image}": ErrImagePull: ${error}`,
        );
        run.host.warn('BackOff', `Back-off pulling image "${image}"`);
        run.host.warn('Failed', 'Error: ImagePullBackOff');
        await sleep(backoffMs, run.stop.signal);
        backoffMs = Math.min(backoffMs * 2, 300_000);
        continue;
      }
      const env = resolveEnv(pod, container.spec, run.host, this.hostIP);
      if (!env.ok) {
        this.wait(run, container, 'CreateContainerConfigError', env.message);
        this.warnOnce(run, 'Failed', `Error: ${env.message}`, container);
        await sleep(RETRY_MS, run.stop.signal);
        continue;
      }
      await mkdir(join(this.options.stateDir, 'logs', run.name), { recursive: true });
      const args = runArgs({
        podmanPod: run.podmanPod,
        podmanName: container.podmanName,
        labels: { ...this.labels, [`${STAND_IN_LABEL}.container`]: container.name },
        logPath: this.logPath(run.name, container.name),
        container: container.spec,
        env: env.env,
        volumes: run.volumes.paths,
        runAsUser: pod.spec?.securityContext?.runAsUser,
        resources: container.kind !== 'ephemeral',
      });
      const result = await podman(args);
      container.created = true;
      if (!result.ok) {
        if (!(await podmanExists('container', container.podmanName))) {
          this.wait(run, container, 'RunContainerError', result.stderr.trim());
          this.warnOnce(run, 'Failed', `Error: ${result.stderr.trim()}`, container);
          container.created = false;
          await sleep(RETRY_MS, run.stop.signal);
          continue;
        }
        // Created but not started (e.g. the command does not exist): StartError, as containerd says.
        container.final = true;
        container.status = {
          ...container.status,
          ready: false,
          started: container.kind === 'ephemeral' ? undefined : false,
          state: {
            terminated: {
              exitCode: 128,
              reason: 'StartError',
              message: result.stderr.trim(),
              startedAt: '1970-01-01T00:00:00Z',
              finishedAt: seconds(new Date()),
            },
          },
        };
        run.host.warn('Failed', `Error: ${result.stderr.trim()}`);
        container.markExited();
        this.publish(run);
        return;
      }
      await this.refresh(run, container);
      if (container.spec.startupProbe && container.kind !== 'ephemeral') {
        this.track(run, this.startupProbe(run, container));
      }
      return;
    }
  }

  private async startupProbe(run: PodRun, container: ContainerRun): Promise<void> {
    const probe = container.spec.startupProbe;
    if (!probe) return;
    const signal = run.stop.signal;
    await sleep((probe.initialDelaySeconds ?? 0) * 1000, signal);
    const threshold = probe.failureThreshold ?? 3;
    for (let failures = 0; !signal.aborted && !container.status.state?.terminated;) {
      const result = await probeOnce(probe, container.spec, run.podIP ?? '127.0.0.1', container.podmanName);
      if (result.ok) {
        container.startupOk = true;
        await this.refresh(run, container);
        return;
      }
      failures++;
      this.warnOnce(run, 'Unhealthy', `Startup probe failed: ${result.output}`, container);
      if (failures >= threshold) {
        const grace = run.host.pod()?.spec?.terminationGracePeriodSeconds ?? 30;
        await podmanContainer('stop', container.podmanName, grace);
        return;
      }
      await sleep((probe.periodSeconds ?? 10) * 1000, signal);
    }
  }

  // --- status ---

  private addContainer(run: PodRun, kind: Kind, spec: IContainer): ContainerRun {
    let markExited: () => void = () => undefined;
    const hasInit = (run.host.pod()?.spec?.initContainers?.length ?? 0) > 0;
    const container: ContainerRun = {
      kind,
      name: spec.name,
      spec,
      podmanName: `${run.podmanPod}-${spec.name}`,
      created: false,
      final: false,
      startupOk: false,
      oomFault: false,
      status: {
        name: spec.name,
        image: spec.image ?? '',
        imageID: '',
        ready: false,
        restartCount: 0,
        ...(kind === 'ephemeral' ? {} : { started: false }),
        state: {
          waiting: { reason: hasInit && kind !== 'ephemeral' ? 'PodInitializing' : 'ContainerCreating' },
        },
      },
      exited: new Promise<void>((resolve) => (markExited = resolve)),
      markExited: () => markExited(),
      refreshing: Promise.resolve(),
    };
    run.containers.set(spec.name, container);
    this.byPodmanName.set(container.podmanName, { run, container });
    return container;
  }

  private wait(run: PodRun, container: ContainerRun, reason: string, message: string): void {
    container.status = { ...container.status, ready: false, state: { waiting: { reason, message } } };
    this.publish(run);
  }

  /** Reads the container's state from Podman (serialised per container) and reports it. */
  private refresh(run: PodRun, container: ContainerRun): Promise<void> {
    container.refreshing = container.refreshing.then(async () => {
      if (!container.created || container.final) return;
      const info = (await podmanInspect('container', container.podmanName)) as InspectedContainer | undefined;
      if (!info) return;
      const id = info.Id;
      const imageName = info.ImageName ?? container.spec.image ?? '';
      const base: IContainerStatus = {
        ...container.status,
        image: imageName,
        imageID: await this.imageId(imageName, info.Image),
        containerID: `podman://${id}`,
      };
      const state = info.State;
      if (state.Running) {
        const started =
          container.kind === 'ephemeral' ? undefined : !container.spec.startupProbe || container.startupOk;
        container.status = {
          ...base,
          started,
          ready: container.kind === 'regular' && started === true,
          state: { running: { startedAt: seconds(new Date(state.StartedAt)) } },
        };
      } else if (state.Status === 'exited' || state.Status === 'stopped') {
        const oom = container.oomFault || state.OOMKilled || (await this.oom.wasKilled(id));
        const startedAt = seconds(new Date(state.StartedAt));
        const finishedAt = seconds(
          new Date(Math.max(Date.parse(state.FinishedAt), Date.parse(state.StartedAt))),
        );
        container.status = {
          ...base,
          ...(container.kind === 'ephemeral' ? {} : { started: false }),
          ready: false,
          state: {
            terminated: {
              exitCode: state.ExitCode,
              reason: oom ? 'OOMKilled' : state.ExitCode === 0 ? 'Completed' : 'Error',
              startedAt,
              finishedAt,
              containerID: `podman://${id}`,
            },
          },
        };
        container.markExited();
      } else {
        return;
      }
      this.publish(run);
    });
    return container.refreshing;
  }

  private async refreshAll(run: PodRun): Promise<void> {
    await Promise.all([...run.containers.values()].map((container) => this.refresh(run, container)));
  }

  /** Writes the pod's status as the kubelet computes it from what it knows now. */
  private publish(run: PodRun): void {
    const all = [...run.containers.values()];
    const byName = (a: IContainerStatus, b: IContainerStatus): number => a.name.localeCompare(b.name);
    run.state.init = all.filter((c) => c.kind === 'init').map((c) => c.status);
    run.state.containers = all
      .filter((c) => c.kind === 'regular')
      .map((c) => c.status)
      .sort(byName);
    run.state.ephemeral = all
      .filter((c) => c.kind === 'ephemeral')
      .map((c) => c.status)
      .sort(byName);
    const phase = podPhase(run.state);
    const previous = run.host.pod()?.status?.conditions;
    const conditions = podConditions(run.state, phase, previous, seconds(new Date()));
    const { state, podIP, startTime } = run;
    const hostIP = this.hostIP;
    run.host.updateStatus((status) => {
      status.phase = phase;
      status.conditions = conditions;
      if (state.terminal) {
        status.reason = state.terminal.reason;
        status.message = state.terminal.message;
      }
      if (!state.scheduled) return;
      if (hostIP) {
        status.hostIP = hostIP;
        status.hostIPs = [{ ip: hostIP }];
      }
      if (podIP) {
        status.podIP = podIP;
        status.podIPs = [{ ip: podIP }];
      }
      if (startTime) status.startTime = startTime;
      if (state.init.length > 0) status.initContainerStatuses = structuredClone(state.init);
      status.containerStatuses = structuredClone(state.containers);
      if (state.ephemeral.length > 0) status.ephemeralContainerStatuses = structuredClone(state.ephemeral);
    });
    if ((phase === 'Succeeded' || phase === 'Failed') && !run.terminating && run.sandbox) {
      // A finished pod is torn down by its kubelet: ephemeral containers still running stop.
      run.terminating = true;
      const grace = run.host.pod()?.spec?.terminationGracePeriodSeconds ?? 30;
      this.track(run, podmanPod('stop', run.podmanPod, grace));
    }
  }

  /** A Warning, once per distinct message per container (the event recorder counts repeats). */
  private warnOnce(run: PodRun, reason: string, message: string, container?: ContainerRun): void {
    const key = `${reason}\n${message}`;
    if (container) {
      if (container.lastWarning === key) return;
      container.lastWarning = key;
    }
    run.host.warn(reason, message);
  }

  // --- faults ---

  private setUnschedulable(message: string | undefined): void {
    this.unschedulable = message;
    if (message !== undefined) return;
    for (const run of this.pods.values()) {
      if (run.state.scheduled || run.stop.signal.aborted) continue;
      delete run.state.unschedulable;
      this.track(run, this.runPod(run));
    }
  }

  private async oomKill(podName: string, containerName: string): Promise<void> {
    const run = this.pods.get(podName);
    const container = run?.containers.get(containerName);
    if (!run || !container?.created) {
      throw new Error(`no started container ${containerName} in pod ${podName} on this kubelet`);
    }
    container.oomFault = true;
    await podmanContainer('kill', container.podmanName);
    await container.exited;
  }

  private async evict(podName: string, message: string): Promise<void> {
    const run = this.pods.get(podName);
    if (!run) throw new Error(`no pod ${podName} on this kubelet`);
    run.state.terminal = { reason: 'Evicted', message, disruption: 'TerminationByKubelet' };
    run.stop.abort();
    run.terminating = true;
    await this.settle(run);
    if (run.sandbox) await podmanPod('kill', run.podmanPod);
    await this.refreshAll(run);
    run.host.warn('Evicted', message);
    this.publish(run);
  }

  // --- plumbing ---

  private onEvent(event: PodmanEvent): void {
    if (event.Status !== 'start' && event.Status !== 'died') return;
    const found = this.byPodmanName.get(event.Name ?? '');
    if (found) void this.refresh(found.run, found.container);
  }

  private track(run: PodRun, task: Promise<unknown>): void {
    const settled = task.then(
      () => undefined,
      (error: unknown) => {
        run.host.warn(
          'FailedSync',
          `stand-in kubelet: ${error instanceof Error ? error.message : String(error)}`,
        );
      },
    );
    run.tasks.add(settled);
    void settled.then(() => run.tasks.delete(settled));
  }

  /** Waits for the pod's own work (starts, probes, retries) to end after `stop` was aborted. */
  private async settle(run: PodRun): Promise<void> {
    run.markReady(false); // no-op once ready; else what waits for the sandbox gives up
    while (run.tasks.size > 0) await Promise.all([...run.tasks]);
  }

  private async imagePresent(image: string): Promise<boolean> {
    if (this.unpullable.has(image)) return false;
    return podmanExists('image', image);
  }

  private async imageId(imageName: string, id: string): Promise<string> {
    const cached = this.imageIds.get(imageName);
    if (cached) return cached;
    const inspected = (await podmanInspect('image', imageName)) as
      { RepoDigests?: string[] | null } | undefined;
    const digests = inspected?.RepoDigests;
    const imageID = digests?.[0] ?? `sha256:${id}`;
    this.imageIds.set(imageName, imageID);
    return imageID;
  }

  private logPath(podName: string, container: string): string {
    return join(this.options.stateDir, 'logs', podName, `${container}.log`);
  }
}
