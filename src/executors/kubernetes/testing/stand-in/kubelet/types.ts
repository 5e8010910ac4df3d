/**
 * The seam between the stand-in API server (which stores objects and serves HTTP) and a kubelet
 * (which runs the pods: Podman in `podman-kubelet.ts`, an in-memory fake in the stand-in's own
 * tests). The server owns every object; a kubelet reports only through {@link PodHost}.
 */
import type { ConfigMap, Pod } from '../../../kube-api.js';
import type { IPodStatus } from 'kubernetes-models/v1/PodStatus';

export type PodStatus = IPodStatus;

export interface PodHost {
  /** The pod as stored now (undefined once deleted). */
  pod(): Pod | undefined;
  /** Changes the pod's status (mutate a copy; the store bumps resourceVersion and emits MODIFIED). */
  updateStatus(mutate: (status: PodStatus) => void): void;
  /** A secret's value (decoded), or undefined if the Secret or key does not exist. */
  secretValue(name: string, key: string): string | undefined;
  configMap(name: string): ConfigMap | undefined;
  /** Records a Warning Event on the pod (reason e.g. Failed, BackOff, FailedScheduling, Evicted, OOMKilling). */
  warn(reason: string, message: string): void;
  /** The kubelet finished removing the pod after deletePod: the store deletes it (DELETED event) and garbage-collects what it owns. */
  removed(): void;
}

export interface Kubelet {
  /** Starts running a newly created pod (asynchronously; reports through host.updateStatus). */
  startPod(host: PodHost): void;
  /** New ephemeral containers were added to the pod spec (already stored). */
  ephemeralContainersAdded(host: PodHost, names: string[]): void;
  /** The pod's annotations changed (downwardAPI volumes must follow). */
  annotationsChanged(host: PodHost): void;
  /** Graceful deletion: stop containers (SIGTERM, grace, SIGKILL), then host.removed(). */
  deletePod(host: PodHost, gracePeriodSeconds: number): void;
  /** The CRI-format log file of a container ("<RFC3339Nano> stdout|stderr F|P <text>" lines), if it has one yet. */
  logFile(podName: string, container: string): string | undefined;
  /** Scripted faults (see Faults in the stand-in-api prompt). */
  faults: KubeletFaults;
  close(): Promise<void>;
}

export interface KubeletFaults {
  /** These images fail to pull: ErrImagePull, then ImagePullBackOff (with Warning events), never run. */
  unpullable(image: string): void;
  /** New pods stay Pending: PodScheduled=False reason Unschedulable with this message (and a FailedScheduling event) until cleared. */
  unschedulable(message: string | undefined): void;
  /** Kills the container as the kernel OOM killer would: terminated, exitCode 137, reason OOMKilled. */
  oomKill(podName: string, container: string): Promise<void>;
  /** Evicts the pod: containers killed, phase Failed, reason Evicted, condition DisruptionTarget=True (reason EvictionByEvictionAPI/TerminationByKubelet), Warning event Evicted. */
  evict(podName: string, message: string): Promise<void>;
}
