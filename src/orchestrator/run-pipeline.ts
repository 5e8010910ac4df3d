import { availableParallelism } from 'node:os';
import type { Executor, BuildHandle, OutputSink } from '../executors/types.js';
import type { BuildContext, PipelinePlan, SecretRef, StagePlan } from '../pipeline/types.js';
import { createMasker, maskingSink } from './masker.js';
import { runStage } from './stage-runner.js';
import { aggregateStatus } from './status.js';
import type { BuildResult, Reason, RunOptions, SecretSource, StageResult, StepResult } from './types.js';
import { whyStageSkipped, type StatusSoFar } from './when.js';

/**
 * Runs a compiled pipeline on an executor: stages in order, the steps of a stage in
 * parallel. Resolves with the whole result tree; never throws for anything a build can do
 * (failures, executor faults, cancellation are results). The executor's build is always
 * destroyed before this resolves.
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

  let handle: BuildHandle;
  try {
    handle = await executor.prepare(
      {
        buildId: ctx.buildId,
        project: ctx.project,
        branch: ctx.branch,
        ...(options.sourceDir !== undefined ? { sourceDir: options.sourceDir } : {}),
        ...(options.sourceSeed !== undefined ? { sourceSeed: options.sourceSeed } : {}),
        ...(plan.image !== undefined ? { image: plan.image } : {}),
        services: plan.services.map((s) => ({ ...s, env: { ...s.env, ...envFromSecrets(s.secrets) } })),
        serviceSink: (service): OutputSink =>
          maskingSink(mask, (stream, text) => observer.serviceLog?.(service, { stream, text, time: clock() })),
      },
      buildSignal,
    );
  } catch (error) {
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

  const stages: StageResult[] = [];
  try {
    let soFar: StatusSoFar = 'success';
    let stopAll: Reason | undefined;
    for (const stage of plan.stages) {
      if (buildSignal.aborted) stopAll ??= { code: 'cancelled', message: 'skipped: the build was cancelled' };
      if (stopAll) {
        stages.push(skippedStage(stage, stopAll));
        observer.stageFinished?.(stage.name, stages.at(-1)!);
        continue;
      }
      const skip = whyStageSkipped(stage.when, ctx, soFar);
      if (skip) {
        stages.push(skippedStage(stage, skip));
        observer.stageFinished?.(stage.name, stages.at(-1)!);
        continue;
      }
      if (stage.approval) {
        const gate = await awaitApproval(stage, options, buildSignal);
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
      const result = await runStage(stage, {
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
      });
      stages.push(result);
      if (result.status === 'error') soFar = 'error';
      else if (result.status === 'failure' && soFar === 'success') soFar = 'failure';
    }
  } finally {
    await safeDestroy(executor, handle);
  }
  const stageStatuses = stages.map((s) => s.status);
  const status = aggregateStatus(stageStatuses, stageStatuses, buildSignal.aborted);
  const failed = stages.find((s) => s.status === status && s.reason);
  return finish(stages, status, failed?.reason);

  function finish(stageResults: StageResult[], status: BuildResult['status'], reason?: Reason): BuildResult {
    return { status, durationMs: clock() - started, stages: stageResults, ...(reason ? { reason } : {}) };
  }
}

type Gate = { kind: 'run' } | { kind: 'rejected'; reason: Reason } | { kind: 'skip-rest'; reason: Reason };

async function awaitApproval(stage: StagePlan, options: RunOptions, signal: AbortSignal): Promise<Gate> {
  if (!options.approver) {
    return { kind: 'skip-rest', reason: { code: 'approval_required', message: 'approval required' } };
  }
  options.observer?.stageWaiting?.(stage.name);
  try {
    const decision = await untilAborted(options.approver.request(stage.name, signal), signal);
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
