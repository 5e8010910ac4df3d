/**
 * What a build pod's status says, read without I/O: the state of one container (regular,
 * init or ephemeral), a step's exit, and the pod-level failures that end every step in it.
 */
import type { IContainerStatus } from 'kubernetes-models/v1/ContainerStatus';
import type { StepErrorCode } from '../../contract/reasons.js';
import type { StepExit } from '../types.js';
import type { Pod } from './kube-api.js';

export type ContainerKind = 'container' | 'init' | 'ephemeral';

export type ContainerPhase =
  /** Not in the status yet: the kubelet has not seen it (or the pod is not scheduled). */
  | { state: 'unknown' }
  | { state: 'waiting'; reason: string; message: string }
  | { state: 'running'; startedAt?: string; started: boolean }
  | { state: 'terminated'; exitCode: number; reason: string; message: string; startedAt?: string };

export function containerStatus(pod: Pod, name: string, kind: ContainerKind): IContainerStatus | undefined {
  const list =
    kind === 'ephemeral'
      ? pod.status?.ephemeralContainerStatuses
      : kind === 'init'
        ? pod.status?.initContainerStatuses
        : pod.status?.containerStatuses;
  return list?.find((s) => s.name === name);
}

export function containerPhase(pod: Pod, name: string, kind: ContainerKind): ContainerPhase {
  const status = containerStatus(pod, name, kind);
  const state = status?.state;
  if (state?.terminated) {
    return {
      state: 'terminated',
      exitCode: state.terminated.exitCode,
      reason: state.terminated.reason ?? '',
      message: state.terminated.message ?? '',
      ...(state.terminated.startedAt ? { startedAt: String(state.terminated.startedAt) } : {}),
    };
  }
  if (state?.running) {
    return {
      state: 'running',
      started: status?.started !== false,
      ...(state.running.startedAt ? { startedAt: String(state.running.startedAt) } : {}),
    };
  }
  if (state?.waiting) {
    return { state: 'waiting', reason: state.waiting.reason ?? '', message: state.waiting.message ?? '' };
  }
  return { state: 'unknown' };
}

/** Waiting reasons that never resolve by themselves: the container will not start. */
const HOPELESS_WAITING = new Set([
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'ErrImageNeverPull',
]);
/** Waiting reasons that are a failed pull: final once they last past the pull grace. */
const PULL_FAILING = new Set(['ErrImagePull', 'ImagePullBackOff']);

export function isPullFailure(reason: string): boolean {
  return PULL_FAILING.has(reason);
}

export function isHopeless(reason: string): boolean {
  return HOPELESS_WAITING.has(reason);
}

/** The error code a hopeless or failed-pull waiting reason stands for. */
export function waitingErrorCode(reason: string): StepErrorCode {
  return PULL_FAILING.has(reason) || reason === 'InvalidImageName' || reason === 'ErrImageNeverPull'
    ? 'image_pull'
    : 'internal';
}

/** The exit of a container that terminated, as a step's exit. */
export function exitOfTerminated(phase: Extract<ContainerPhase, { state: 'terminated' }>): StepExit {
  if (phase.reason === 'OOMKilled') {
    return {
      kind: 'error',
      code: 'oom_killed',
      exitCode: phase.exitCode,
      message: `the step was killed for running out of memory (OOMKilled, exit code ${phase.exitCode}): raise the build's memory limit`,
    };
  }
  return { kind: 'exited', exitCode: phase.exitCode };
}

/** Why a pod can no longer run anything (evicted, failed, being deleted), if so. */
export function podFailure(pod: Pod): { code: StepErrorCode; message: string } | undefined {
  const disruption = pod.status?.conditions?.find(
    (c) => c.type === 'DisruptionTarget' && c.status === 'True',
  );
  if (pod.status?.reason === 'Evicted' || disruption) {
    const why =
      pod.status?.message ?? disruption?.message ?? disruption?.reason ?? 'the node evicted the pod';
    return { code: 'evicted', message: `the build pod ${pod.metadata?.name} was evicted: ${why}` };
  }
  if (pod.metadata?.deletionTimestamp) {
    return {
      code: 'gone',
      message: `the build pod ${pod.metadata?.name} is being deleted (by someone other than this build)`,
    };
  }
  if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') {
    return {
      code: 'gone',
      message: `the build pod ${pod.metadata?.name} ended (phase ${pod.status.phase}${pod.status.reason ? `, ${pod.status.reason}` : ''}${pod.status.message ? `: ${pod.status.message}` : ''})`,
    };
  }
  return undefined;
}

/** The scheduler's complaint while the pod is not scheduled, if any. */
export function unschedulable(pod: Pod): string | undefined {
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    return scheduled.message ?? 'no node can take the pod';
  }
  return undefined;
}
