import { availableParallelism } from 'node:os';
import {
  ExecutorError,
  type BuildHandle,
  type BuildSpec,
  type Executor,
  type OutputSink,
} from '../executors/types.js';
import type { BuildContext, PipelinePlan, SecretRef, StagePlan } from '../pipeline/types.js';
import { createMasker, maskingSink } from './masker.js';
import { wholeStageReused } from './reuse.js';
import { runStage } from './stage-runner.js';
import { aggregateStatus } from './status.js';
import type {
  BuildResult,
  Reason,
  ReasonCode,
  RunOptions,
  SecretSource,
  StageResult,
  StepResult,
} from './types.js';
import { whyStageSkipped, type StatusSoFar } from './when.js';

/**
 * Runs a compiled pipeline on an executor: stages in order, the steps of a stage in
 * parallel. Resolves with the whole result tree; never throws for anything a build can do
 * (failures, executor faults, cancellation are results). The executor's build is always
 * destroyed before this resolves, unless the run detached (`RunOptions.detach`).
 *
 * With `RunOptions.resume` it goes on with a build an earlier process ran: the executor's
 * build is found again (`resumeBuild`; when it is gone the result is `error` with reason code
 * `gone`), ended stages and steps count as they are, running steps are followed from where
 * their stored output ends, and the rest runs as usual.
 */
export async function runPipeline(
  plan: PipelinePlan,
  ctx: BuildContext,
  executor: Executor,
  options: RunOptions = {},
): Promise<BuildResult> {
  const clock = options.clock ?? Date.now;
  const observer = options.observer ?? {};
  const buildSignal = options.signal ?? new AbortController().signal;
  const started = clock();

  // Services start with the build, so their secrets are needed up front; a stage's secrets
  // are resolved when that stage is about to run, so that a stage that never runs (not
  // approved, filtered out by `when`) never asks for them.
  const secrets = new SecretValues(options.secrets);
  const serviceProblem = await secrets.resolve(plan.services.flatMap((s) => s.secrets));
  if (serviceProblem) {
    return finish(
      plan.stages.map((s) => skippedStage(s, serviceProblem)),
      'error',
      serviceProblem,
    );
  }
  let currentMask = createMasker(secrets.values());
  const mask = (text: string) => currentMask(text);
  const envFromSecrets = (refs: SecretRef[]) =>
    Object.fromEntries(refs.map((r) => [r.env, secrets.value(r.secret) ?? '']));

  const spec: BuildSpec = {
    buildId: ctx.buildId,
    project: ctx.project,
    branch: ctx.branch,
    ...(options.sourceDir !== undefined ? { sourceDir: options.sourceDir } : {}),
    ...(options.sourceSeed !== undefined ? { sourceSeed: options.sourceSeed } : {}),
    ...(options.caches !== undefined ? { caches: options.caches } : {}),
    ...(plan.image !== undefined ? { image: plan.image } : {}),
    services: plan.services.map((s) => ({ ...s, env: { ...s.env, ...envFromSecrets(s.secrets) } })),
    serviceSink: (service): OutputSink =>
      maskingSink(mask, (stream, text) => observer.serviceLog?.(service, { stream, text, time: clock() })),
  };
  const resume = options.resume;
  let handle: BuildHandle;
  try {
    handle = resume ? await executor.resumeBuild(spec) : await executor.prepare(spec, buildSignal);
  } catch (error) {
    if (resume) return resumeFailed(error);
    await safeDestroy(executor, { buildId: ctx.buildId, workspace: executor.workspacePath(ctx.buildId) });
    const reason: Reason = {
      code: buildSignal.aborted ? 'cancelled' : 'executor',
      message: buildSignal.aborted ? 'cancelled' : errorMessage(error),
    };
    return finish(
      plan.stages.map((s) => skippedStage(s, reason)),
      buildSignal.aborted ? 'cancelled' : 'error',
      reason,
    );
  }

  const detach = options.detach;
  let detached = false;
  const stages: StageResult[] = [];
  try {
    let soFar: StatusSoFar = 'success';
    let stopAll: Reason | undefined;
    for (const stage of plan.stages) {
      const resumed = resume?.stages[stage.name];
      if (resumed?.ended) {
        const ended = resumed.ended;
        stages.push(ended);
        if (ended.status === 'error') soFar = 'error';
        else if (ended.status === 'failure' && soFar === 'success') soFar = 'failure';
        // A stage skipped for these reasons skipped all that followed it (see below).
        if (ended.status === 'skipped' && STOPS_ALL.has(ended.reason?.code ?? 'when'))
          stopAll ??= ended.reason;
        continue;
      }
      if (detach?.aborted) {
        detached = true;
        break;
      }
      if (buildSignal.aborted) stopAll ??= { code: 'cancelled', message: 'skipped: the build was cancelled' };
      // A stage that started runs on even when cancelled: its running steps must be stopped.
      const started = resumed !== undefined && !resumed.waiting;
      if (stopAll && !started) {
        stages.push(skippedStage(stage, stopAll));
        observer.stageFinished?.(stage.name, stages.at(-1)!);
        continue;
      }
      // A stage that started was not skipped then, and `soFar` has not changed since. A stage
      // reused whole ran in the earlier build, with the same `soFar` (stages before it are reused).
      const reusedWhole = wholeStageReused(stage, options.reuse);
      const skip = started || reusedWhole ? undefined : whyStageSkipped(stage.when, ctx, soFar);
      if (skip) {
        stages.push(skippedStage(stage, skip));
        observer.stageFinished?.(stage.name, stages.at(-1)!);
        continue;
      }
      // A person approved the stage in the build whose steps it reuses (`planReuse`).
      const approvedBefore = options.reuse?.approved?.[stage.name] !== undefined;
      if (stage.approval && !started && !reusedWhole && !approvedBefore) {
        const gate = await awaitApproval(stage, options, buildSignal);
        if (gate.kind === 'detached') {
          detached = true;
          break;
        }
        if (gate.kind === 'skip-rest') {
          stopAll = gate.reason;
          stages.push(skippedStage(stage, gate.reason));
          observer.stageFinished?.(stage.name, stages.at(-1)!);
          continue;
        }
        if (gate.kind === 'rejected') {
          const result = { ...skippedStage(stage, gate.reason), status: 'failure' as const };
          stages.push(result);
          observer.stageFinished?.(stage.name, result);
          soFar = 'failure';
          continue;
        }
      }
      await secrets.resolve(stage.steps.flatMap((step) => step.secrets));
      currentMask = createMasker(secrets.values());
      const result = await runStage(
        stage,
        {
          executor,
          handle,
          observer,
          mask,
          clock,
          buildSignal,
          parallelism: Math.max(1, options.parallelism ?? availableParallelism()),
          secretEnvFor: (step) => {
            const problem = step.secrets.map((r) => secrets.problem(r.secret)).find((p) => p !== undefined);
            return problem ? { error: problem } : { env: envFromSecrets(step.secrets) };
          },
          ...(detach ? { detach } : {}),
          ...(options.onStepRunning ? { onStepRunning: options.onStepRunning } : {}),
          ...(options.onStepExited ? { onStepExited: options.onStepExited } : {}),
          ...(options.afterStep ? { afterStep: options.afterStep } : {}),
          ...(options.afterAttempt ? { afterAttempt: options.afterAttempt } : {}),
          ...(options.beforeStep ? { beforeStep: options.beforeStep } : {}),
        },
        started ? resumed : undefined,
        options.reuse?.stages[stage.name],
      );
      if (result === undefined) {
        detached = true;
        break;
      }
      stages.push(result);
      if (result.status === 'error') soFar = 'error';
      else if (result.status === 'failure' && soFar === 'success') soFar = 'failure';
    }
  } finally {
    // Detached: the steps run on and the successor resumes the build in this workspace.
    if (!detached) await safeDestroy(executor, handle);
  }
  if (detached) return { ...finish(stages, 'error'), detached: true };
  const stageStatuses = stages.map((s) => s.status);
  const status = aggregateStatus(stageStatuses, stageStatuses, buildSignal.aborted);
  const failed = stages.find((s) => s.status === status && s.reason);
  return finish(stages, status, failed?.reason);

  /** resumeBuild failed: `gone` (nothing of the build is left) or the executor cannot say. */
  async function resumeFailed(error: unknown): Promise<BuildResult> {
    const gone = error instanceof ExecutorError && error.code === 'gone';
    const unavailable = error instanceof ExecutorError && error.code === 'engine_unavailable';
    // An engine that does not answer may still hold the build: leave it for a later attempt.
    if (!unavailable)
      await safeDestroy(executor, { buildId: ctx.buildId, workspace: executor.workspacePath(ctx.buildId) });
    const reason: Reason = {
      code: gone ? 'gone' : unavailable ? 'engine_unavailable' : 'executor',
      message: errorMessage(error),
    };
    return finish(
      plan.stages.map((s) => resume?.stages[s.name]?.ended ?? skippedStage(s, reason)),
      'error',
      reason,
    );
  }

  function finish(stageResults: StageResult[], status: BuildResult['status'], reason?: Reason): BuildResult {
    return { status, durationMs: clock() - started, stages: stageResults, ...(reason ? { reason } : {}) };
  }
}

/** Reasons of a skipped stage that skip every stage after it too. */
const STOPS_ALL: ReadonlySet<ReasonCode> = new Set(['approval_required', 'cancelled']);

type Gate =
  | { kind: 'run' }
  | { kind: 'rejected'; reason: Reason }
  | { kind: 'skip-rest'; reason: Reason }
  | { kind: 'detached' };

async function awaitApproval(stage: StagePlan, options: RunOptions, signal: AbortSignal): Promise<Gate> {
  if (!options.approver) {
    return { kind: 'skip-rest', reason: { code: 'approval_required', message: 'approval required' } };
  }
  if (options.detach?.aborted) return { kind: 'detached' };
  options.observer?.stageWaiting?.(stage.name);
  // Detaching ends the wait too (the approver's request is aborted); the successor asks again.
  const waitSignal = options.detach ? AbortSignal.any([signal, options.detach]) : signal;
  try {
    const decision = await untilAborted(options.approver.request(stage.name, waitSignal), waitSignal);
    switch (decision.decision) {
      case 'approve':
        return { kind: 'run' };
      case 'reject':
        return {
          kind: 'rejected',
          reason: {
            code: 'approval_rejected',
            message: decision.message ?? `rejected${decision.by ? ` by ${decision.by}` : ''}`,
          },
        };
      case 'skip':
        return { kind: 'skip-rest', reason: { code: 'approval_required', message: decision.message } };
    }
  } catch (error) {
    if (options.detach?.aborted && !signal.aborted) return { kind: 'detached' };
    if (signal.aborted)
      return {
        kind: 'skip-rest',
        reason: { code: 'cancelled', message: 'skipped: the build was cancelled' },
      };
    return {
      kind: 'skip-rest',
      reason: { code: 'approval_required', message: `approval failed: ${errorMessage(error)}` },
    };
  }
}

/** Rejects as soon as the signal aborts, even if the promise never settles. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

function skippedStage(stage: StagePlan, reason: Reason): StageResult {
  return {
    name: stage.name,
    status: 'skipped',
    durationMs: 0,
    reason,
    steps: stage.steps.map((s): StepResult => ({
      name: s.name,
      status: 'skipped',
      exitCode: null,
      durationMs: 0,
      attempts: 0,
      allowFailure: s.allowFailure,
      reason,
    })),
  };
}

/**
 * The `from_secret` values of one build, each asked of the source once (the first stage that
 * needs it), so that a source's side effects — the server's "withheld from a fork" note —
 * happen once per secret. A secret that is not defined, or that the source fails to give,
 * is remembered as a problem: the steps that need it end `error` with that reason.
 */
class SecretValues {
  private readonly known = new Map<string, { value: string } | { problem: Reason }>();

  constructor(private readonly source: SecretSource | undefined) {}

  /** Resolves the names not asked yet; the first problem among `refs`, if any. */
  async resolve(refs: readonly SecretRef[]): Promise<Reason | undefined> {
    for (const name of new Set(refs.map((r) => r.secret))) {
      if (this.known.has(name)) continue;
      let entry: { value: string } | { problem: Reason };
      try {
        const value = await this.source?.get(name);
        entry =
          value === undefined
            ? { problem: { code: 'secret', message: `secret "${name}" is not defined` } }
            : { value };
      } catch (error) {
        entry = {
          problem: { code: 'secret', message: `secret "${name}" cannot be read: ${errorMessage(error)}` },
        };
      }
      this.known.set(name, entry);
    }
    return refs.map((r) => this.problem(r.secret)).find((p) => p !== undefined);
  }

  value(name: string): string | undefined {
    const entry = this.known.get(name);
    return entry && 'value' in entry ? entry.value : undefined;
  }

  problem(name: string): Reason | undefined {
    const entry = this.known.get(name);
    return entry && 'problem' in entry ? entry.problem : undefined;
  }

  values(): string[] {
    return [...this.known.values()].flatMap((e) => ('value' in e ? [e.value] : []));
  }
}

async function safeDestroy(executor: Executor, handle: BuildHandle): Promise<void> {
  try {
    await executor.destroy(handle);
  } catch {
    // Leftovers are found again by label/name through reconciliation (listResources).
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
