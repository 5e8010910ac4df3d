import { readFile, rm } from 'node:fs/promises';
import { join, normalize, isAbsolute } from 'node:path';
import type { Kysely } from 'kysely';
import {
  pipelineImages,
  refuseHostRun,
  refuseImageless,
  type ExecutorSelection,
} from '../../executors/host-guard.js';
import type { Executor } from '../../executors/types.js';
import { WHOLE_DIRECTORY } from '../../executors/workspace-seed.js';
import { runPipeline } from '../../orchestrator/run-pipeline.js';
import { describeAttempt } from '../../orchestrator/step-runner.js';
import type { ApprovalDecision, BuildObserver, BuildResult, SecretSource } from '../../orchestrator/types.js';
import { compileOffLoop } from '../../pipeline/compile-pool.js';
import { formatPipelineError } from '../../pipeline/index.js';
import type { FinalStatus, PipelinePlan } from '../../pipeline/types.js';
import {
  createBuildRecords,
  openApproval,
  setBuildStatus,
  updateStage,
  updateStep,
  type Build,
  type Database,
  type Project,
  type Reason,
  type StageRecord,
  type Status,
} from '../../store/index.js';
import type { ArtifactCollector } from '../artifacts/collector.js';
import type { LogHub } from '../logs/log-hub.js';
import { BuildLogWriter } from '../logs/log-writer.js';
import type { LogStore } from '../logs/types.js';
import { checkout, CheckoutError } from '../sources/git-checkout.js';
import type { ExecutorIds, ExecutorPick } from './executor-pool.js';

const ACTIVE: Status[] = ['pending', 'running', 'waiting'];

export interface BuildRunDeps {
  db: Kysely<Database>;
  logs: LogStore;
  hub: LogHub;
  /** Directory for per-build checkouts. */
  workRoot: string;
  /** This server process's lease owner id. */
  owner: string;
  /** Names builds towards executors. */
  ids: ExecutorIds;
  /** Resolves `from_secret`; `note` writes a system line to the build log (e.g. a withheld secret). */
  secretsFor?: (project: Project, build: Build, note: (text: string) => void) => SecretSource;
  /** The URL git clones: the project's with its sealed credentials back in (default: as stored). */
  repoUrlFor?: (project: Project) => Promise<string>;
  /**
   * The pipeline when it does not come from the checkout's `pipelinePath` (build-scripts
   * repositories): its name for messages and its text; undefined to read the checkout's file.
   * May write files into `sourceDir`; a throw fails the build with its message.
   */
  pipelineSource?: (
    project: Project,
    build: Build,
    sourceDir: string,
  ) => Promise<{ file: string; source: string } | undefined>;
  /** Publishes each successful step's `artifacts:` while its workspace still exists. */
  artifacts?: ArtifactCollector;
  /** Cap on a build's log in bytes unless its project sets one (default: the writer's, 64 MiB). */
  maxLogBytes?: number;
  onStepFinished?: (status: FinalStatus) => void;
  /** The build entered `running` (notifications). */
  onBuildStarted?: (build: Build) => void;
  /** The build reached its final status (metrics, notifications). */
  onBuildFinished?: (build: Build) => void;
}

/**
 * One claimed build, from checkout to final status: clones the commit, compiles the
 * pipeline, records the stage/step tree, runs it on the executor and keeps records and logs
 * current. Everything a build can do wrong ends as a status with a reason, never a throw.
 */
export class BuildRun {
  private readonly controller = new AbortController();
  private cancelReason: Reason | undefined;
  private leaseLost = false;
  private approvalWaiter: ((decision: ApprovalDecision) => void) | undefined;
  private writer: BuildLogWriter | undefined;

  constructor(
    readonly build: Build,
    private readonly project: Project,
    private readonly executorChoice: ExecutorPick,
    private readonly deps: BuildRunDeps,
  ) {}

  /** Stops the build: running steps are killed, the build ends `cancelled` with the reason. */
  cancel(reason: Reason): void {
    this.cancelReason ??= reason;
    this.controller.abort();
  }

  /** Another process owns the build now: stop at once and write nothing more. */
  abandon(): void {
    this.leaseLost = true;
    this.controller.abort();
  }

  /**
   * A person decided the approval the build waits on, and the build has its running slot back
   * (the scheduler calls this only then): it goes on, with the decision in its log.
   */
  decide(approval: ApprovalOutcome): void {
    const waiter = this.approvalWaiter;
    if (waiter === undefined) return;
    this.approvalWaiter = undefined;
    this.writer?.write(approval.stage, 'slipway', 'system', approvalLine(approval));
    waiter(
      approval.decision === 'approved'
        ? { decision: 'approve', by: approval.by }
        : { decision: 'reject', by: approval.by, message: approvalLine(approval).slice('approval: '.length) },
    );
  }

  get waitingForApproval(): boolean {
    return this.approvalWaiter !== undefined;
  }

  async execute(): Promise<void> {
    const { db, owner } = this.deps;
    const sourceDir = join(this.deps.workRoot, String(this.build.id), 'source');
    try {
      const maxBytes = this.project.maxLogBytes ?? this.deps.maxLogBytes;
      this.writer = await BuildLogWriter.open(
        this.build.id,
        this.deps.logs,
        this.deps.hub,
        undefined,
        maxBytes !== undefined ? { maxBytes } : {},
      );
      const started = await setBuildStatus(db, this.build.id, ['pending'], 'running', {
        ifLeaseOwner: owner,
        ...('executor' in this.executorChoice ? { executor: this.executorChoice.executor.name } : {}),
      });
      if (!started) return; // cancelled (or taken over) between claim and start
      this.deps.onBuildStarted?.(started);
      if ('error' in this.executorChoice) {
        return await this.finish('error', { code: 'executor', message: this.executorChoice.error });
      }
      const executor = this.executorChoice.executor;
      const ref = this.build.tag ? `tag ${this.build.tag}` : `branch ${this.build.branch}`;
      this.note(`build #${this.build.number} of ${this.project.slug}, ${ref}, executor ${executor.name}`);

      const commit = await this.checkout(sourceDir);
      if (commit === undefined) return;
      const plan = await this.compile(sourceDir, commit, executor);
      if (plan === undefined) return;
      if (await this.refusedByExecutor(plan, this.executorChoice.selection)) return;
      const records = await createBuildRecords(
        db,
        this.build.id,
        plan.stages.map((stage) => ({
          name: stage.name,
          steps: stage.steps.map((s) => ({
            name: s.name,
            allowFailure: s.allowFailure,
            maxAttempts: s.retries + 1,
          })),
        })),
      );
      const result = await this.runPlan(plan, commit, records, sourceDir, executor);
      if (this.leaseLost) return;
      await this.finalizeRecords(records, result);
      const reason =
        result.status === 'cancelled'
          ? (this.cancelReason ?? result.reason)
          : result.status === 'success'
            ? undefined
            : result.reason;
      await this.finish(result.status, reason);
    } catch (error) {
      if (!this.leaseLost) {
        await this.finish('error', {
          code: 'internal',
          message: `internal error: ${errorText(error)}`,
        }).catch(() => undefined);
      }
    } finally {
      await this.writer?.close().catch(() => undefined);
      await rm(join(this.deps.workRoot, String(this.build.id)), { recursive: true, force: true }).catch(
        () => undefined,
      );
    }
  }

  private note(text: string): void {
    this.writer?.write('', 'slipway', 'system', text);
  }

  private async checkout(dir: string): Promise<string | undefined> {
    try {
      const { commit } = await checkout({
        repoUrl: (await this.deps.repoUrlFor?.(this.project)) ?? this.project.repoUrl,
        ref: this.build.tag ?? this.build.branch,
        kind: this.build.tag ? 'tag' : 'branch',
        ...(this.build.commitSha ? { commit: this.build.commitSha } : {}),
        dir,
        signal: this.controller.signal,
        log: (line) => this.note(line),
      });
      this.note(`checked out ${commit}`);
      if (commit !== this.build.commitSha) {
        await setBuildStatus(this.deps.db, this.build.id, ['running'], 'running', {
          commitSha: commit,
          ifLeaseOwner: this.deps.owner,
        });
      }
      return commit;
    } catch (error) {
      if (this.controller.signal.aborted) {
        await this.finish('cancelled', this.cancelReason ?? { code: 'cancelled', message: 'cancelled' });
        return undefined;
      }
      const message = error instanceof CheckoutError ? error.message : `checkout failed: ${errorText(error)}`;
      // finish() writes the reason to the log: once is enough.
      await this.finish('error', { code: 'checkout', message });
      return undefined;
    }
  }

  private async compile(
    sourceDir: string,
    commit: string,
    executor: Executor,
  ): Promise<PipelinePlan | undefined> {
    let custom: { file: string; source: string } | undefined;
    try {
      custom = await this.deps.pipelineSource?.(this.project, this.build, sourceDir);
    } catch (error) {
      const message = `no pipeline for ${this.project.slug}: ${errorText(error)}`;
      this.note(message);
      await this.finish('failure', { code: 'pipeline_missing', message });
      return undefined;
    }
    const file = custom?.file ?? normalize(this.project.pipelinePath);
    if (!custom && (isAbsolute(file) || file.startsWith('..'))) {
      await this.finish('failure', {
        code: 'pipeline_invalid',
        message: `pipeline path "${this.project.pipelinePath}" leaves the repository`,
      });
      return undefined;
    }
    let source: string;
    try {
      source = custom?.source ?? (await readFile(join(sourceDir, file), 'utf8'));
    } catch {
      const message = `no ${file} in ${this.project.slug} at ${commit.slice(0, 12)}`;
      this.note(message);
      await this.finish('failure', { code: 'pipeline_missing', message });
      return undefined;
    }
    // In a worker thread: a file that is slow to compile must not hold the server (compile-pool.ts).
    const compiled = await compileOffLoop({
      file,
      source,
      context: {
        buildId: String(this.build.id),
        buildNumber: this.build.number,
        project: this.project.slug,
        branch: this.build.branch,
        ...(this.build.tag ? { tag: this.build.tag } : {}),
        commit,
        event: this.build.event,
        workspace: executor.workspacePath(this.deps.ids.of(this.build.id)),
      },
    });
    if (!compiled.ok) {
      for (const error of compiled.errors) this.note(formatPipelineError(error));
      const first = compiled.errors[0];
      const count = compiled.errors.length;
      await this.finish('failure', {
        code: 'pipeline_invalid',
        message: `${file} is invalid (${count} error${count === 1 ? '' : 's'})${first ? `: ${formatPipelineError(first)}` : ''}`,
      });
      return undefined;
    }
    for (const warning of compiled.warnings) this.note(`warning: ${formatPipelineError(warning)}`);
    const plan = compiled.plan;
    if (plan.image === undefined && this.project.defaultImage) plan.image = this.project.defaultImage;
    return plan;
  }

  /**
   * Image pipelines never run on the host by surprise, nor imageless ones on a container executor
   * (host-guard.ts). On the server local exists only when it was started with `--executor local`,
   * so the first never refuses here; it stays as the one rule shared with `slipway run`.
   */
  private async refusedByExecutor(plan: PipelinePlan, selection: ExecutorSelection): Promise<boolean> {
    const slug = this.project.slug;
    const reason =
      refuseHostRun(
        pipelineImages(plan),
        selection,
        'start the server with --executor local (builds then run as host processes as its build user).',
      ) ??
      refuseImageless(
        plan,
        selection.executor,
        'add `image:` to the pipeline, set a default image for the project ' +
          `(slipway project update ${slug} --image <image>), or run builds on the host on purpose ` +
          '(slipway server --executor local: as host processes of its build user).',
      );
    if (reason === undefined) return false;
    this.note(reason.message);
    await this.finish('error', reason);
    return true;
  }

  private async runPlan(
    plan: PipelinePlan,
    commit: string,
    records: StageRecord[],
    sourceDir: string,
    executor: Executor,
  ): Promise<BuildResult> {
    const { db } = this.deps;
    const stageIds = new Map(records.map((s) => [s.name, s.id]));
    const stepIds = new Map(
      records.flatMap((s) => s.steps.map((st) => [`${s.name}/${st.name}`, st.id] as const)),
    );
    // Record updates are applied in event order, off the hot path of log output.
    let updates: Promise<unknown> = Promise.resolve();
    const enqueue = (fn: () => Promise<unknown>) => {
      updates = updates.then(fn).catch(() => undefined);
    };
    const writer = this.writer!;
    const observer: BuildObserver = {
      stageStarted: (stage) =>
        enqueue(() => updateStage(db, stageIds.get(stage)!, { status: 'running', startedAt: Date.now() })),
      stageWaiting: (stage) => {
        writer.write(
          stage,
          'slipway',
          'system',
          `approval: waiting for a person (slipway approve ${this.project.slug} ${this.build.number} [--reject])`,
        );
        enqueue(async () => {
          await openApproval(db, stageIds.get(stage)!);
          // Gives up the running slot; the lock stays (see `claimSlots` for the way back).
          await setBuildStatus(db, this.build.id, ['running'], 'waiting', { ifLeaseOwner: this.deps.owner });
        });
      },
      stageFinished: (stage, result) =>
        enqueue(() =>
          updateStage(db, stageIds.get(stage)!, {
            status: result.status,
            reason: result.reason ?? null,
            finishedAt: Date.now(),
            durationMs: result.durationMs,
          }),
        ),
      stepStarted: (stage, step, attempt, info) => {
        if (attempt > 1) writer.write(stage, step, 'system', describeAttempt(attempt, info));
        enqueue(() =>
          updateStep(db, stepIds.get(`${stage}/${step}`)!, {
            status: 'running',
            attempts: attempt,
            ...(attempt === 1 ? { startedAt: Date.now() } : {}),
          }),
        );
      },
      stepLog: (stage, step, line) => writer.write(stage, step, line.stream, line.text, line.time),
      stepFinished: (stage, step, result) => {
        if (result.reason && result.status !== 'skipped')
          writer.write(stage, step, 'system', result.reason.message);
        if (result.status !== 'skipped') this.deps.onStepFinished?.(result.status);
        enqueue(() =>
          updateStep(db, stepIds.get(`${stage}/${step}`)!, {
            status: result.status,
            exitCode: result.exitCode,
            attempts: result.attempts,
            reason: result.reason ?? null,
            ...(result.attempts > 0 ? { finishedAt: Date.now(), durationMs: result.durationMs } : {}),
            logLines: writer.linesOf(stage, step),
          }),
        );
      },
      serviceLog: (service, line) =>
        writer.write('', `service:${service}`, line.stream, line.text, line.time),
    };
    const target =
      this.deps.artifacts?.wrap(executor, this.build.id, plan, (stage, step, text) =>
        writer.write(stage, step, 'system', text),
      ) ?? executor;
    const result = await runPipeline(
      plan,
      {
        buildId: this.deps.ids.of(this.build.id),
        buildNumber: this.build.number,
        project: this.project.slug,
        branch: this.build.branch,
        ...(this.build.tag ? { tag: this.build.tag } : {}),
        commit,
        event: this.build.event,
        workspace: executor.workspacePath(this.deps.ids.of(this.build.id)),
      },
      target,
      {
        observer,
        signal: this.controller.signal,
        sourceDir,
        // The clone is this build's alone and not read after prepare: the local executor moves it
        // into the workspace (one rename) instead of copying it, `.git` and all.
        sourceSeed: { ...WHOLE_DIRECTORY, movable: true },
        ...(this.deps.secretsFor
          ? { secrets: this.deps.secretsFor(this.project, this.build, (text) => this.note(text)) }
          : {}),
        approver: {
          request: () =>
            // Resolved by `decide`, once the build is `running` again: `claimSlots` moved it.
            new Promise<ApprovalDecision>((resolve) => {
              this.approvalWaiter = resolve;
            }),
        },
      },
    );
    this.approvalWaiter = undefined;
    await updates;
    await writer.flush();
    return result;
  }

  /** Writes the result tree over the records: stages and steps that never got an event too. */
  private async finalizeRecords(records: StageRecord[], result: BuildResult): Promise<void> {
    const { db } = this.deps;
    for (const [i, stage] of result.stages.entries()) {
      const record = records[i];
      if (!record) continue;
      await updateStage(db, record.id, {
        from: ['queued', 'running', 'waiting'],
        status: stage.status,
        reason: stage.reason ?? null,
      });
      for (const [j, step] of stage.steps.entries()) {
        const stepRecord = record.steps[j];
        if (!stepRecord) continue;
        await updateStep(db, stepRecord.id, {
          from: ['queued', 'running'],
          status: step.status,
          reason: step.reason ?? null,
          exitCode: step.exitCode,
          attempts: step.attempts,
        });
      }
    }
  }

  private async finish(status: FinalStatus, reason: Reason | undefined): Promise<void> {
    if (this.leaseLost) return;
    if (reason && status !== 'success') this.note(`build ${status}: ${reason.message}`);
    else this.note(`build ${status}`);
    await this.writer?.flush();
    const done = await setBuildStatus(this.deps.db, this.build.id, ACTIVE, status, {
      reason: reason ?? null,
      ifLeaseOwner: this.deps.owner,
    });
    if (done) this.deps.onBuildFinished?.(done);
  }
}

/** A decided approval as the scheduler hands it to the build's run. */
export interface ApprovalOutcome {
  stage: string;
  decision: 'approved' | 'rejected';
  by: string;
  comment: string | null;
}

/** The build log's record of a decision: `approval: approved by alice — "looks good"`. */
export function approvalLine(approval: Omit<ApprovalOutcome, 'stage'>): string {
  return `approval: ${approval.decision} by ${approval.by}${approval.comment ? ` — "${approval.comment}"` : ''}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
