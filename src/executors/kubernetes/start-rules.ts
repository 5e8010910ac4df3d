/**
 * When a build pod, or a step's container in it, has started, or will never start: the rules
 * the executor applies to each pod status the watch delivers (and once a second, for the
 * time-based ones). Pure: a rule keeps what it must remember (since when a pull fails) and
 * is asked again with the time; no I/O.
 */
import { ExecutorError, type StepExit } from '../types.js';
import type { PodView } from './pod-watch.js';
import {
  containerPhase,
  isHopeless,
  isPullFailure,
  podFailure,
  unschedulable,
  waitingErrorCode,
  type ContainerPhase,
} from './pod-status.js';
import { HOLD_CONTAINER, SEED_CONTAINER, serviceContainerName } from './manifests/index.js';
import type { ServicePlan } from '../../pipeline/types.js';

export interface StartTimes {
  /** How long a failing pull is retried (ErrImagePull, ImagePullBackOff). */
  pullGraceMs: number;
  /** How long a pod may stay unscheduled, or a container not started. */
  pendingMs: number;
}

export type StepStartDecision = { running: { startedAt?: string } } | { exit: StepExit };

/**
 * The rule for one step's ephemeral container: running (or already ended) → started; a
 * hopeless waiting reason → its error at once; a failing pull past the grace → `image_pull`;
 * not started within the pending time → `internal` with the last waiting reason. `said`
 * hears each new waiting reason once (the step's pending phase).
 */
export function stepStartRule(
  pod: string,
  container: string,
  image: string,
  times: StartTimes,
  since: number,
  said: (text: string) => void,
): (view: PodView, now: number) => StepStartDecision | undefined {
  let pullFailingSince: number | undefined;
  let last = '';
  return (view, now) => {
    if (!view.pod) {
      return view.deleted
        ? { exit: { kind: 'error', code: 'gone', message: `the build pod ${pod} was deleted` } }
        : undefined;
    }
    const failure = podFailure(view.pod);
    if (failure) return { exit: { kind: 'error', ...failure } };
    const phase = containerPhase(view.pod, container, 'ephemeral');
    if (phase.state === 'running' || phase.state === 'terminated') {
      return { running: phase.startedAt !== undefined ? { startedAt: phase.startedAt } : {} };
    }
    if (phase.state === 'waiting') {
      const text = waitingText(phase);
      if (text !== last && phase.reason !== 'ContainerCreating') said(`waiting: ${text}`);
      last = text;
      if (isHopeless(phase.reason)) {
        return {
          exit: {
            kind: 'error',
            code: waitingErrorCode(phase.reason),
            message: `the step's container cannot start: ${text}`,
          },
        };
      }
      if (isPullFailure(phase.reason)) {
        pullFailingSince ??= now;
        if (now - pullFailingSince >= times.pullGraceMs) {
          return {
            exit: { kind: 'error', code: 'image_pull', message: `cannot pull image "${image}": ${text}` },
          };
        }
      } else {
        pullFailingSince = undefined;
      }
    }
    if (now - since >= times.pendingMs) {
      const why = phase.state === 'waiting' ? ` (${waitingText(phase)})` : '';
      return {
        exit: {
          kind: 'error',
          code: 'internal',
          message: `the step's container did not start within ${formatMs(times.pendingMs)}${why}`,
        },
      };
    }
    return undefined;
  };
}

/**
 * The rule for the build pod: up once `hold` and every service run (a service with
 * `wait_for` once its startupProbe passed, bounded by `serviceMs`); an `ExecutorError` for an
 * unschedulable pod past the pending time, a failed seed, a hopeless or failed-pull image, a
 * container that ended, a pod that failed or went.
 */
export function podUpRule(
  pod: string,
  services: readonly ServicePlan[],
  times: StartTimes & { serviceMs: number },
  since: number,
): (view: PodView, now: number) => { up: true } | { error: ExecutorError } | undefined {
  const pullFailing = new Map<string, number>();
  const serviceRunning = new Map<string, number>();
  const containers = [
    {
      name: HOLD_CONTAINER,
      what: 'the build pod',
      service: undefined as string | undefined,
      waitFor: undefined as number | undefined,
    },
    ...services.map((s) => ({
      name: serviceContainerName(s.name),
      what: `service ${s.name}`,
      service: s.name,
      waitFor: s.waitFor,
    })),
  ];
  const fail = (code: ExecutorError['code'], message: string) => ({
    error: new ExecutorError(code, message),
  });
  return (view, now) => {
    if (!view.pod)
      return view.deleted ? fail('internal', `the build pod ${pod} was deleted while starting`) : undefined;
    const failure = podFailure(view.pod);
    if (failure) return fail('internal', failure.message);
    const notScheduled = unschedulable(view.pod);
    if (notScheduled) {
      return now - since >= times.pendingMs
        ? fail(
            'internal',
            `the build pod ${pod} could not be scheduled within ${formatMs(times.pendingMs)}: ${notScheduled}`,
          )
        : undefined;
    }
    const seed = containerPhase(view.pod, SEED_CONTAINER, 'init');
    if (seed.state === 'terminated' && seed.exitCode !== 0) {
      return fail(
        'workspace',
        `copying the checkout into the workspace failed (exit code ${seed.exitCode}${seed.message ? `: ${seed.message}` : ''})`,
      );
    }
    let allUp = true;
    for (const c of containers) {
      const phase: ContainerPhase = containerPhase(view.pod, c.name, 'container');
      if (phase.state === 'waiting') {
        const text = waitingText(phase);
        if (isHopeless(phase.reason))
          return fail(c.service ? 'service' : 'image_unavailable', `${c.what} cannot start: ${text}`);
        if (isPullFailure(phase.reason)) {
          const first = pullFailing.get(c.name) ?? now;
          pullFailing.set(c.name, first);
          if (now - first >= times.pullGraceMs)
            return fail('image_unavailable', `${c.what}: cannot pull its image: ${text}`);
        } else {
          pullFailing.delete(c.name);
        }
      }
      if (phase.state === 'terminated') {
        return fail(
          c.service ? 'service' : 'internal',
          `${c.what} exited with code ${phase.exitCode}${phase.reason ? ` (${phase.reason})` : ''}`,
        );
      }
      if (phase.state !== 'running') {
        allUp = false;
        continue;
      }
      if (c.waitFor !== undefined && !phase.started) {
        const first = serviceRunning.get(c.name) ?? now;
        serviceRunning.set(c.name, first);
        if (now - first >= times.serviceMs) {
          return fail(
            'service',
            `service ${c.service} did not accept connections on port ${c.waitFor} within ${formatMs(times.serviceMs)}`,
          );
        }
        allUp = false;
      }
    }
    if (allUp) return { up: true };
    if (now - since >= times.pendingMs)
      return fail('internal', `the build pod ${pod} did not start within ${formatMs(times.pendingMs)}`);
    return undefined;
  };
}

function waitingText(phase: Extract<ContainerPhase, { state: 'waiting' }>): string {
  return `${phase.reason}${phase.message ? `: ${phase.message}` : ''}`;
}

export function formatMs(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.round(ms / 1000)}s`;
}
