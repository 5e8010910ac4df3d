/**
 * A pod's phase and conditions from its container statuses, as the kubelet computes them
 * (pkg/kubelet/kubelet_pods.go getPhase, pkg/kubelet/status/generate.go). Pure: no I/O.
 */
import type { IContainerStatus } from 'kubernetes-models/v1/ContainerStatus';
import type { IPodCondition } from 'kubernetes-models/v1/PodCondition';
import type { PodStatus } from './types.js';

export interface PodState {
  /** Undefined until scheduled; the Unschedulable message while the fault holds it back. */
  unschedulable?: string;
  scheduled: boolean;
  sandboxReady: boolean;
  init: IContainerStatus[];
  containers: IContainerStatus[];
  ephemeral: IContainerStatus[];
  /** The pod was stopped by the kubelet (eviction): phase Failed with this reason and message. */
  terminal?: { reason: string; message: string; disruption: string };
}

/** Phase per getPhase (restartPolicy Never; ephemeral containers do not count). */
export function podPhase(state: PodState): NonNullable<PodStatus['phase']> {
  if (state.terminal) return 'Failed';
  if (!state.scheduled) return 'Pending';
  let pendingInit = 0;
  let failedInit = 0;
  for (const status of state.init) {
    const terminated = status.state?.terminated;
    if (terminated) {
      if (terminated.exitCode !== 0) failedInit++;
    } else {
      pendingInit++;
    }
  }
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const status of state.containers) {
    if (status.state?.running) running++;
    else if (status.state?.terminated) {
      stopped++;
      if (status.state.terminated.exitCode === 0) succeeded++;
    } else waiting++;
  }
  if (failedInit > 0) return 'Failed';
  if (pendingInit > 0 || waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  if (stopped > 0) return stopped === succeeded ? 'Succeeded' : 'Failed';
  return 'Pending';
}

/** The kubelet-owned conditions, keeping lastTransitionTime where a status did not change. */
export function podConditions(
  state: PodState,
  phase: string,
  previous: IPodCondition[] | undefined,
  now: string,
): IPodCondition[] {
  const conditions: IPodCondition[] = [];
  const add = (type: string, ok: boolean, reason?: string, message?: string): void => {
    const before = previous?.find((condition) => condition.type === type);
    const status = ok ? 'True' : 'False';
    conditions.push({
      type,
      status,
      lastTransitionTime: before?.status === status ? before.lastTransitionTime : now,
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
    });
  };
  if (state.terminal) add('DisruptionTarget', true, state.terminal.disruption, state.terminal.message);
  if (!state.scheduled) {
    add('PodScheduled', false, 'Unschedulable', state.unschedulable);
    return conditions;
  }
  add('PodReadyToStartContainers', state.sandboxReady && !state.terminal);
  const incomplete = state.init.filter((s) => s.state?.terminated?.exitCode !== 0).map((s) => s.name);
  add(
    'Initialized',
    incomplete.length === 0,
    incomplete.length ? 'ContainersNotInitialized' : undefined,
    incomplete.length ? `containers with incomplete status: [${incomplete.join(' ')}]` : undefined,
  );
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const unready = state.containers.filter((s) => !s.ready).map((s) => s.name);
  const ready = !terminal && unready.length === 0;
  const reason = terminal ? 'PodCompleted' : unready.length ? 'ContainersNotReady' : undefined;
  const message =
    !terminal && unready.length ? `containers with unready status: [${unready.join(' ')}]` : undefined;
  add('ContainersReady', ready, reason, message);
  add('Ready', ready, reason, message);
  add('PodScheduled', true);
  return conditions;
}
