import type { StepExit, StepRef } from '../../executors/types.js';
import type { BuildResult, ResumeState, StageResume, StepResult } from '../../orchestrator/types.js';
import { isFinalStatus as isFinal, type FinalStatus } from '../../contract/status.js';
import type { ResumeStageRecord, ResumeStepRecord } from '../../store/resume.js';
import type { BuildLogWriter } from '../logs/log-writer.js';

/**
 * From the records an earlier process left (store/resume.ts) and the stored log to the
 * orchestrator's ResumeState: what ended is taken as is, a running attempt is followed from
 * where its stored output ends, what never started runs as usual.
 */

export function resumeStateOf(stages: readonly ResumeStageRecord[], log: BuildLogWriter): ResumeState {
  const state: ResumeState = { stages: {} };
  for (const stage of stages) {
    if (isFinal(stage.status)) {
      state.stages[stage.name] = {
        ended: {
          name: stage.name,
          status: stage.status,
          durationMs: stage.durationMs ?? 0,
          ...(stage.reason ? { reason: stage.reason } : {}),
          steps: stage.steps.map((step) => stepResult(step, isFinal(step.status) ? step.status : 'skipped')),
        },
        steps: {},
      };
      continue;
    }
    if (stage.status !== 'running' && stage.status !== 'waiting') continue; // not started
    const entry: StageResume = { steps: {}, ...(stage.status === 'waiting' ? { waiting: true } : {}) };
    for (const step of stage.steps) {
      if (isFinal(step.status)) {
        entry.steps[step.name] = { kind: 'ended', result: stepResult(step, step.status) };
      } else if (step.status === 'running') {
        const attempt = Math.max(1, step.attempts);
        // A ref of an older attempt: the newer one started but its ref was never stored.
        const ref = step.ref?.attempt === attempt ? step.ref : undefined;
        const exit = ref && step.attemptExit?.attempt === attempt ? step.attemptExit.exit : undefined;
        entry.steps[step.name] = {
          kind: 'running',
          attempt,
          ...(ref ? { ref } : {}),
          ...(exit ? { exit } : {}),
          position: log.resumePosition(stage.name, step.name, attempt),
          startedAt: ref ? (step.attemptStartedAt ?? ref.startedAt) : Date.now(),
        };
      }
    }
    state.stages[stage.name] = entry;
  }
  return state;
}

/** The build log's account of what a successor re-attaches to. */
export function resumeNotes(
  stages: readonly ResumeStageRecord[],
  log: BuildLogWriter,
  /** What happened: `server restarted`, `taken over from replica-a`. */
  why = 'server restarted',
): string[] {
  const notes: string[] = [];
  for (const stage of stages) {
    if (stage.status === 'waiting') notes.push(`${why}: stage ${stage.name} waits for approval again`);
    if (stage.status !== 'running') continue;
    for (const step of stage.steps) {
      if (step.status !== 'running') continue;
      const key = `${stage.name}/${step.name}`;
      const attempt = Math.max(1, step.attempts);
      const ref = step.ref?.attempt === attempt ? step.ref : undefined;
      const exit = ref && step.attemptExit?.attempt === attempt ? step.attemptExit.exit : undefined;
      notes.push(
        exit && ref
          ? `${why}: step ${key} (${describeRef(ref)}) had ended (${describeExit(exit)}); its stored end is taken`
          : ref
            ? `${why}: re-attached to step ${key} (${describeRef(ref)}) at line ${log.linesOf(stage.name, step.name)}`
            : `${why}: step ${key} (attempt ${step.attempts}) was starting; looking for it`,
      );
    }
  }
  if (notes.length === 0) notes.push(`${why}: resuming the build`);
  return notes;
}

function describeExit(exit: StepExit): string {
  if (exit.kind === 'error') return exit.message;
  if (exit.kind === 'aborted') return 'stopped';
  return `exit code ${exit.exitCode}`;
}

/** `container 1a2b3c4d5e6f`, `process /var/tmp/…`, for messages. */
export function describeRef(ref: StepRef): string {
  return `${refNoun(ref)} ${refId(ref)}`;
}

function refNoun(ref: StepRef): string {
  return { docker: 'container', local: 'process', kubernetes: 'pod', memory: 'memory step' }[ref.executor];
}

function refId(ref: StepRef): string {
  return ref.executor === 'docker' ? ref.id.slice(0, 12) : ref.id;
}

/**
 * The reason of a build that ended because a step is gone (its container removed, the engine
 * reset): `the container of step build/test (abc123) is gone: …`; undefined when none is.
 */
export function lostStep(result: BuildResult, refs: ReadonlyMap<string, StepRef>): string | undefined {
  for (const stage of result.stages)
    for (const step of stage.steps) {
      if (step.reason?.code !== 'gone') continue;
      const ref = refs.get(`${stage.name}/${step.name}`);
      const what = ref
        ? `the ${refNoun(ref)} of step ${stage.name}/${step.name} (${refId(ref)})`
        : `step ${stage.name}/${step.name}`;
      return `${what} is gone: ${step.reason.message}`;
    }
  return undefined;
}

function stepResult(step: ResumeStepRecord, status: FinalStatus): StepResult {
  return {
    name: step.name,
    status,
    exitCode: step.exitCode,
    durationMs: step.durationMs ?? 0,
    attempts: step.attempts,
    ...(step.reason ? { reason: step.reason } : {}),
    allowFailure: step.allowFailure,
  };
}
