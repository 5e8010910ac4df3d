import { readFile, rm } from 'node:fs/promises';
import { join, normalize, isAbsolute } from 'node:path';
import type { Kysely } from 'kysely';
import {
  pipelineImages,
  refuseHostRun,
  refuseImageless,
  type ExecutorSelection,
} from '../../executors/host-guard.js';
import type { Executor, StepRef } from '../../executors/types.js';
import { WHOLE_DIRECTORY } from '../../executors/workspace-seed.js';
import { runPipeline } from '../../orchestrator/run-pipeline.js';
import { describeAttempt } from '../../orchestrator/step-runner.js';
import type {
  ApprovalDecision,
  BuildObserver,
  BuildResult,
  ResumeState,
  SecretSource,
} from '../../orchestrator/types.js';
import type { ReuseState } from '../../orchestrator/reuse.js';
import { compileOffLoop } from '../../pipeline/compile-pool.js';
import { compileWithIncludes } from '../../pipeline/include.js';
import { serverIncludes } from '../sources/includes.js';
import { formatPipelineError } from '../../pipeline/index.js';
import type { BuildContext, FinalStatus, PipelinePlan } from '../../pipeline/types.js';
import {
  createBuildRecords,
  openApproval,
  relaxedTransaction,
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
import { loadResumeRecords, saveBuildPlan, saveStepExit, saveStepRef } from '../../store/resume.js';
import { recordReusedSteps, setReusedLogLines, stageApprovals } from '../../store/rerun.js';
import type { ArtifactCollector } from '../artifacts/collector.js';
import type { CacheService } from '../caches/service.js';
import type { RunOptions } from '../../orchestrator/types.js';
import { headRepoFork } from '../../store/hooks.js';
import type { ReportCollector } from '../reports/collector.js';
import type { LogHub } from '../logs/log-hub.js';
import { BuildLogWriter } from '../logs/log-writer.js';
import type { LogStore } from '../logs/types.js';
import { internalErrorMessage, reportInternalError, type ErrorLog } from '../internal-error.js';
import { checkout, CheckoutError } from '../sources/git-checkout.js';
import { readCommitInfo, type CommitInfo } from '../sources/commit-info.js';
import { checkoutFromMirror, mirrorPath } from '../sources/git-mirror.js';
import type { ExecutorIds, ExecutorPick } from './executor-pool.js';
import { RecordBatch } from './record-batch.js';
import {
  copyReusedLogs,
  reuseFromRerun,
  reuseStateOfRecords,
  reusedStepRows,
  type RerunReuse,
} from './rerun-failed.js';
import { lostStep, resumeNotes, resumeStateOf } from './resume.js';

const ACTIVE: Status[] = ['pending', 'running', 'waiting'];

export interface BuildRunDeps {
  db: Kysely<Database>;
  logs: LogStore;
  hub: LogHub;
  /** Directory for per-build checkouts. */
  workRoot: string;
  /**
   * Directory of the per-project repository mirrors checkouts are made from; without it each
   * build clones from the repository itself.
   */
  mirrors?: string;
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
  /** Restores and saves steps' `cache:` (server/caches). */
  caches?: CacheService;
  /** Reads each attempt's `reports:` (test reports), failed attempts too. */
  reports?: ReportCollector;
  /** Cap on a build's log in bytes unless its project sets one (default: the writer's, 64 MiB). */
  maxLogBytes?: number;
  onStepFinished?: (status: FinalStatus) => void;
  /** The build entered `running` (notifications). */
  onBuildStarted?: (build: Build) => void;
  /** The build reached its final status (metrics, notifications). */
  onBuildFinished?: (build: Build) => void;
  /**
   * The build gave up its running slot (final status, or waiting for a person): the scheduler
   * claims the next build now instead of at its next poll.
   */
  onSlotFreed?: () => void;
  /** A stage's record changed (started, waiting, ended): per-stage commit statuses. */
  onStageChanged?: (build: Build) => void;
  /**
   * The server's structured log: an internal error of a run is logged here with its stack and
   * an `errorId`, which the build's reason names (`internal error (id …)`) instead of its text.
   */
  log?: ErrorLog;
  /** Lines of the build's log the store refused (lost; the build goes on): for a metric. */
  onLogLinesDropped?: (lines: number) => void;
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
  /** The ref of each step's running (or last) attempt, by `stage/step`: for the `lost` reason. */
  private readonly refs = new Map<string, StepRef>();
  /** Aborted by `detach`: the run lets go of the build and its steps without ending anything. */
  private readonly detaching = new AbortController();
  /** The run's record writes (stage/step progress), a transaction per moment. */
  private readonly records: RecordBatch;
  /** Records this run has written a final status to (`stage:<id>`, `step:<id>`). */
  private readonly finalized = new Set<string>();

  /**
   * `resume`: an earlier process ran this build and stopped (a restart, `kill -9`, a replica
   * that died): no checkout, the plan and the records from the database, the log goes on, the
   * running steps are re-attached (see `execute`).
   */
  constructor(
    readonly build: Build,
    private readonly project: Project,
    private readonly executorChoice: ExecutorPick,
    private readonly deps: BuildRunDeps,
    private readonly mode: 'start' | 'resume' = 'start',
    /** Resume: the replica that ran the build before (for the log's note). */
    private readonly previousOwner?: string,
  ) {
    this.records = new RecordBatch(deps.db);
  }

  /**
   * The server is stopping: leave the build to a successor. Running steps go on, nothing is
   * decided, destroyed or written to the records; the lease stays as it is, so the successor
   * with the same owner id (or another replica once it expires) re-attaches.
   */
  detach(): void {
    this.detaching.abort();
  }

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
      const limits = maxBytes !== undefined ? { maxBytes } : {};
      const { logs, hub } = this.deps;
      this.writer =
        this.mode === 'resume'
          ? await BuildLogWriter.resume(this.build.id, logs, hub, undefined, limits)
          : await BuildLogWriter.open(this.build.id, logs, hub, undefined, limits);
      this.writer.onLinesDropped = reportDroppedLines(this.deps, this.build);
      if (this.mode === 'resume') return await this.resume();
      const started = await setBuildStatus(db, this.build.id, ['pending'], 'running', {
        ifLeaseOwner: owner,
        durability: 'relaxed',
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
      // Re-run failed: what the build it re-runs gives (matched in this compile of the commit).
      const reuse =
        this.build.rerunFailed && this.build.rerunOf !== null
          ? await reuseFromRerun(db, this.build.rerunOf, plan)
          : undefined;
      // With the plan: a successor finding records finds the plan too (see `resume`).
      const records = await relaxedTransaction(db, async (trx) => {
        await saveBuildPlan(trx, this.build.id, plan);
        const made = await createBuildRecords(trx, this.build.id, recordsOf(plan));
        if (reuse)
          await recordReusedSteps(trx, this.build.id, reuse.original.id, reusedStepRows(reuse, made));
        return made;
      });
      if (this.build.rerunFailed) await this.takeOver(reuse, records, sourceDir);
      const result = await this.runPlan(plan, this.contextOf(commit, executor), records, executor, {
        sourceDir,
        ...(reuse ? { reuse: reuse.state } : {}),
      });
      await this.conclude(records, result);
    } catch (error) {
      if (!this.leaseLost) {
        await this.finish('error', internalReason(this.deps.log, error, this.build, this.project)).catch(
          () => undefined,
        );
      }
    } finally {
      // Detached: the log is not complete, so live readers are not told it is (a successor goes on).
      if (this.detaching.signal.aborted) await this.writer?.flush().catch(() => undefined);
      else await this.writer?.close().catch(() => undefined);
      await rm(join(this.deps.workRoot, String(this.build.id)), { recursive: true, force: true }).catch(
        () => undefined,
      );
    }
  }

  private note(text: string): void {
    this.writer?.write('', 'slipway', 'system', text);
  }

  /**
   * Re-run failed, before the run: the reused steps' logs copied from the build it re-runs, and
   * the artifacts they published put into the checkout that seeds the workspace.
   */
  private async takeOver(
    reuse: RerunReuse | undefined,
    records: StageRecord[],
    sourceDir: string,
  ): Promise<void> {
    if (reuse === undefined) {
      this.note(`re-run failed: build of id ${this.build.rerunOf ?? '?'} is gone; every step runs`);
      return;
    }
    const count = reuse.steps.size;
    this.note(
      `re-running what failed in build #${reuse.original.number}: ${count} step${count === 1 ? '' : 's'} reused, the rest runs`,
    );
    if (count === 0) return;
    const writer = this.writer!;
    await copyReusedLogs(this.deps.logs, writer, reuse, this.controller.signal);
    const rows = reusedStepRows(reuse, records);
    await relaxedTransaction(this.deps.db, async (trx) => {
      for (const row of rows) {
        const { stage, step } = reuse.steps.get(row.key)!;
        await setReusedLogLines(trx, row.stepId, writer.linesOf(stage, step));
      }
    });
    const seeded = await this.deps.artifacts?.seedReused?.(
      this.build.id,
      sourceDir,
      (text) => this.note(text),
      this.controller.signal,
    );
    if (seeded)
      this.note(`${seeded} artifact${seeded === 1 ? '' : 's'} of reused steps put in the workspace`);
  }

  /**
   * Goes on with a build an earlier process was running: the plan and the records from the
   * database, the running steps re-attached where their stored output ends. What cannot be
   * re-attached (the executor no longer has the build or a step) ends the build `lost`, saying
   * which and why.
   */
  private async resume(): Promise<void> {
    const { db } = this.deps;
    if ('error' in this.executorChoice) {
      return await this.finish('error', { code: 'executor', message: this.executorChoice.error });
    }
    const executor = this.executorChoice.executor;
    const stored = await loadResumeRecords(db, this.build.id);
    if (stored.plan === undefined || this.build.commitSha === null) {
      return await this.finish('lost', {
        code: 'lost',
        message: 'the server running this build stopped before it stored the build plan; nothing to resume',
      });
    }
    const plan = stored.plan;
    let records: StageRecord[] = stored.stages;
    if (records.length === 0) records = await createBuildRecords(db, this.build.id, recordsOf(plan));
    const resume: ResumeState = resumeStateOf(stored.stages, this.writer!);
    // Re-run failed: the stages not started yet still take what their steps reuse.
    const reuseState = reuseStateOfRecords(
      records,
      this.build.rerunFailed && this.build.rerunOf !== null
        ? await stageApprovals(db, this.build.rerunOf)
        : {},
    );
    for (const stage of stored.stages)
      for (const step of stage.steps) if (step.ref) this.refs.set(`${stage.name}/${step.name}`, step.ref);
    const why =
      this.previousOwner === undefined || this.previousOwner === this.deps.owner
        ? 'server restarted'
        : `taken over from ${this.previousOwner}`;
    for (const line of resumeNotes(stored.stages, this.writer!, why)) this.note(line);
    const result = await this.runPlan(
      plan,
      this.contextOf(this.build.commitSha, executor),
      records,
      executor,
      {
        resume,
        ...(reuseState ? { reuse: reuseState } : {}),
      },
    );
    // The executor no longer has the build: nothing to re-attach to (a step gone: see `conclude`).
    if (
      !result.detached &&
      result.status === 'error' &&
      result.reason?.code === 'gone' &&
      lostStep(result, this.refs) === undefined
    ) {
      if (this.leaseLost) return;
      await this.finalizeRecords(records, result);
      return await this.finish('lost', {
        code: 'lost',
        message: `the server running this build stopped, and ${result.reason.message}`,
      });
    }
    await this.conclude(records, result);
  }

  /** Records and final status from the result of a run; nothing when detached or taken over. */
  private async conclude(records: StageRecord[], result: BuildResult): Promise<void> {
    if (this.leaseLost || result.detached) return;
    await this.finalizeRecords(records, result);
    const gone = lostStep(result, this.refs);
    if (gone !== undefined && result.status !== 'success') {
      return await this.finish('lost', { code: 'lost', message: gone });
    }
    const reason =
      result.status === 'cancelled'
        ? (this.cancelReason ?? result.reason)
        : result.status === 'success'
          ? undefined
          : result.reason;
    await this.finish(result.status, reason);
  }

  private contextOf(commit: string, executor: Executor): BuildContext {
    return {
      buildId: this.deps.ids.of(this.build.id),
      buildNumber: this.build.number,
      project: this.project.slug,
      branch: this.build.branch,
      ...(this.build.tag ? { tag: this.build.tag } : {}),
      commit,
      event: this.build.event,
      workspace: executor.workspacePath(this.deps.ids.of(this.build.id)),
    };
  }

  private async checkout(dir: string): Promise<string | undefined> {
    try {
      const request = {
        repoUrl: (await this.deps.repoUrlFor?.(this.project)) ?? this.project.repoUrl,
        ref: this.build.tag ?? this.build.branch,
        kind: this.build.tag ? ('tag' as const) : ('branch' as const),
        ...(this.build.commitSha ? { commit: this.build.commitSha } : {}),
        dir,
        signal: this.controller.signal,
        log: (line: string) => this.note(line),
      };
      const { mirrors } = this.deps;
      const made: { commit: string; info?: CommitInfo } =
        mirrors === undefined
          ? await checkout(request)
          : await checkoutFromMirror({ ...request, mirror: mirrorPath(mirrors, this.project) });
      const commit = made.commit;
      this.note(`checked out ${commit}`);
      // What git says of the commit wins over what a webhook said; unknown leaves those fields.
      const info =
        made.info ?? (await readCommitInfo(dir, commit, this.controller.signal).catch(() => undefined));
      if (commit !== this.build.commitSha || info !== undefined) {
        await setBuildStatus(this.deps.db, this.build.id, ['running'], 'running', {
          commitSha: commit,
          ...(info && { commitMessage: info.message, ...(info.author && { commitAuthor: info.author }) }),
          ifLeaseOwner: this.deps.owner,
          durability: 'relaxed',
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
    // Its `include:` files are read here between compiles (include.ts, sources/includes.ts).
    const includes = serverIncludes({
      db: this.deps.db,
      mirrors: this.deps.mirrors,
      checkoutDir: sourceDir,
      ...(this.deps.repoUrlFor && { repoUrlFor: this.deps.repoUrlFor }),
      signal: this.controller.signal,
    });
    const compiled = await compileWithIncludes(
      {
        file,
        source,
        // The pipeline sees the build's own id; executors get the installation-scoped one.
        context: { ...this.contextOf(commit, executor), buildId: String(this.build.id) },
      },
      includes,
      compileOffLoop,
    );
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
    context: BuildContext,
    records: StageRecord[],
    executor: Executor,
    start: ({ sourceDir: string } | { resume: ResumeState }) & { reuse?: ReuseState },
  ): Promise<BuildResult> {
    const stageIds = new Map(records.map((s) => [s.name, s.id]));
    const stepIds = new Map(
      records.flatMap((s) => s.steps.map((st) => [`${s.name}/${st.name}`, st.id] as const)),
    );
    // Record updates are applied in event order, off the hot path of log output, those of one
    // moment in one transaction (record-batch.ts). A failed one is lost: the final records are
    // written again from the result (`finalizeRecords`).
    const batch = this.records;
    const enqueue = (write: (trx: Kysely<Database>) => Promise<unknown>, then?: () => void) => {
      batch.add(write).then(then, () => undefined);
    };
    const writer = this.writer!;
    const observer: BuildObserver = {
      stageStarted: (stage) => {
        // The orchestrator did not ask: a person approved the stage in the build it re-runs.
        const approvedIn = start.reuse?.approved?.[stage];
        if (approvedIn !== undefined)
          writer.write(stage, 'slipway', 'system', approvedBeforeLine(approvedIn));
        enqueue(
          (trx) => updateStage(trx, stageIds.get(stage)!, { status: 'running', startedAt: Date.now() }),
          () => this.deps.onStageChanged?.(this.build),
        );
      },
      stageWaiting: (stage) => {
        writer.write(
          stage,
          'slipway',
          'system',
          `approval: waiting for a person (slipway approve ${this.project.slug} ${this.build.number} [--reject])`,
        );
        enqueue(
          async (trx) => {
            await openApproval(trx, stageIds.get(stage)!);
            // Gives up the running slot; the lock stays (see `claimSlots` for the way back).
            await setBuildStatus(trx, this.build.id, ['running'], 'waiting', {
              ifLeaseOwner: this.deps.owner,
            });
          },
          () => {
            this.deps.onStageChanged?.(this.build);
            // The slot is free: another build may take it now.
            this.deps.onSlotFreed?.();
          },
        );
      },
      stageFinished: (stage, result) =>
        enqueue(
          (trx) =>
            updateStage(trx, stageIds.get(stage)!, {
              status: result.status,
              reason: result.reason ?? null,
              finishedAt: Date.now(),
              durationMs: result.durationMs,
            }),
          () => {
            this.finalized.add(`stage:${stageIds.get(stage)!}`);
            // Notifiers quote the stage's last lines (check runs): store them first.
            void writer
              .flush()
              .catch(() => undefined)
              .then(() => this.deps.onStageChanged?.(this.build));
          },
        ),
      stepStarted: (stage, step, attempt, info) => {
        if (attempt > 1) writer.write(stage, step, 'system', describeAttempt(attempt, info));
        enqueue((trx) =>
          updateStep(trx, stepIds.get(`${stage}/${step}`)!, {
            status: 'running',
            attempts: attempt,
            ...(attempt === 1 ? { startedAt: Date.now() } : {}),
          }),
        );
      },
      stepPending: (stage, step, text) => writer.write(stage, step, 'system', text),
      stepLog: (stage, step, line) =>
        writer.write(
          stage,
          step,
          line.stream,
          line.text,
          line.time,
          line.position && { attempt: line.position.attempt, pieces: line.position.pieces },
        ),
      stepFinished: (stage, step, result) => {
        if (result.reason && result.status !== 'skipped')
          writer.write(stage, step, 'system', result.reason.message);
        if (result.status !== 'skipped') this.deps.onStepFinished?.(result.status);
        const id = stepIds.get(`${stage}/${step}`)!;
        enqueue(
          (trx) =>
            updateStep(trx, id, {
              status: result.status,
              exitCode: result.exitCode,
              attempts: result.attempts,
              reason: result.reason ?? null,
              ...(result.attempts > 0 ? { finishedAt: Date.now(), durationMs: result.durationMs } : {}),
              logLines: writer.linesOf(stage, step),
            }),
          () => this.finalized.add(`step:${id}`),
        );
      },
      serviceLog: (service, line) =>
        writer.write('', `service:${service}`, line.stream, line.text, line.time),
    };
    const artifactsAfter = this.deps.artifacts?.afterStep(
      executor,
      this.build.id,
      plan,
      (stage, step, text) => writer.write(stage, step, 'system', text),
    );
    // Keys are made now, from the checkout, before it becomes the workspace (hashFiles).
    const caches = await this.deps.caches
      ?.forBuild({
        projectId: this.project.id,
        branch: this.build.branch,
        fork:
          this.build.event === 'pull_request' && (await headRepoFork(this.deps.db, this.build.id)) !== false,
        plan,
        sourceDir: 'sourceDir' in start ? start.sourceDir : undefined,
        executor,
        log: (stage, step, text) => writer.write(stage, step, 'system', text),
        signal: this.controller.signal,
      })
      .catch(() => undefined);
    const afterStep: RunOptions['afterStep'] =
      caches && artifactsAfter
        ? async (stage, step, handle, exit, signal) =>
            caches.afterStep(
              stage,
              step,
              handle,
              await artifactsAfter(stage, step, handle, exit, signal),
              signal,
            )
        : (caches?.afterStep ?? artifactsAfter);
    const afterAttempt = this.deps.reports?.afterAttempt(
      executor,
      { id: this.build.id, projectId: this.project.id, commitSha: this.build.commitSha },
      plan,
      (stage, step, text) => writer.write(stage, step, 'system', text),
    );
    // The restores staged for `prepare` are this process's temporary files: gone however the run ends.
    const result = await runPipeline(plan, context, executor, {
      ...(caches?.caches ? { caches: caches.caches } : {}),
      observer,
      signal: this.controller.signal,
      detach: this.detaching.signal,
      ...('resume' in start
        ? { resume: start.resume }
        : {
            sourceDir: start.sourceDir,
            // The clone is this build's alone and not read after prepare: the local executor moves it
            // into the workspace (one rename) instead of copying it, `.git` and all.
            sourceSeed: { ...WHOLE_DIRECTORY, movable: true },
          }),
      ...(afterStep ? { afterStep } : {}),
      ...(start.reuse ? { reuse: start.reuse } : {}),
      ...(caches ? { beforeStep: caches.beforeStep } : {}),
      ...(afterAttempt ? { afterAttempt } : {}),
      // Stored with the step's record before its output is read: a successor follows it from there.
      onStepRunning: async (stage, step, _attempt, ref) => {
        this.refs.set(`${stage}/${step}`, ref);
        // A throw stops the step: one nobody could re-attach to must not run on.
        await batch.add((trx) => saveStepRef(trx, stepIds.get(`${stage}/${step}`)!, ref, ref.startedAt));
      },
      // Before the executor releases an ended attempt (its exit code goes with it): its output
      // stored, then its exit, so that a successor of a process that dies now knows the end.
      onStepExited: async (stage, step, attempt, exit) => {
        await writer.flush();
        await batch.add((trx) => saveStepExit(trx, stepIds.get(`${stage}/${step}`)!, attempt, exit));
      },
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
    }).finally(() => caches?.dispose());
    this.approvalWaiter = undefined;
    await batch.settled();
    await writer.flush();
    return result;
  }

  /**
   * Writes the result tree over the records: stages and steps that never got an event too. What
   * this run already wrote final is left alone (the guards would refuse it anyway).
   */
  private async finalizeRecords(records: StageRecord[], result: BuildResult): Promise<void> {
    const writes: ((trx: Kysely<Database>) => Promise<boolean>)[] = [];
    for (const [i, stage] of result.stages.entries()) {
      const record = records[i];
      if (!record) continue;
      if (!this.finalized.has(`stage:${record.id}`)) {
        writes.push((trx) =>
          updateStage(trx, record.id, {
            from: ['queued', 'running', 'waiting'],
            status: stage.status,
            reason: stage.reason ?? null,
          }),
        );
      }
      for (const [j, step] of stage.steps.entries()) {
        const stepRecord = record.steps[j];
        if (!stepRecord || this.finalized.has(`step:${stepRecord.id}`)) continue;
        writes.push((trx) =>
          updateStep(trx, stepRecord.id, {
            from: ['queued', 'running'],
            status: step.status,
            reason: step.reason ?? null,
            exitCode: step.exitCode,
            attempts: step.attempts,
          }),
        );
      }
    }
    if (writes.length === 0) return;
    await relaxedTransaction(this.deps.db, async (trx) => {
      for (const write of writes) await write(trx);
    });
  }

  private async finish(status: FinalStatus | 'lost', reason: Reason | undefined): Promise<void> {
    if (this.leaseLost) return;
    if (reason && status !== 'success') this.note(`build ${status}: ${reason.message}`);
    else this.note(`build ${status}`);
    await this.writer?.flush();
    const done = await setBuildStatus(this.deps.db, this.build.id, ACTIVE, status, {
      reason: reason ?? null,
      ifLeaseOwner: this.deps.owner,
      durability: 'relaxed',
    });
    if (done) {
      this.deps.onSlotFreed?.();
      this.deps.onBuildFinished?.(done);
    }
  }
}

/** The stage/step records of a plan, as `createBuildRecords` takes them. */
function recordsOf(plan: PipelinePlan) {
  return plan.stages.map((stage) => ({
    name: stage.name,
    steps: stage.steps.map((s) => ({
      name: s.name,
      allowFailure: s.allowFailure,
      maxAttempts: s.retries + 1,
    })),
  }));
}

/** A decided approval as the scheduler hands it to the build's run. */
export interface ApprovalOutcome {
  stage: string;
  decision: 'approved' | 'rejected';
  by: string;
  comment: string | null;
}

/** Why a re-run's stage was not approved again: `approval: approved in build #7 by alice (…)`. */
export function approvedBeforeLine(approved: { number: number; by?: string }): string {
  return `approval: approved in build #${approved.number}${approved.by ? ` by ${approved.by}` : ''} (re-running what failed: not asked again)`;
}

/** The build log's record of a decision: `approval: approved by alice — "looks good"`. */
export function approvalLine(approval: Omit<ApprovalOutcome, 'stage'>): string {
  return `approval: ${approval.decision} by ${approval.by}${approval.comment ? ` — "${approval.comment}"` : ''}`;
}

/** The reason of a build ended by an internal error, which is logged with the id the reason names. */
function internalReason(log: ErrorLog | undefined, error: unknown, build: Build, project: Project): Reason {
  const errorId = reportInternalError(log, error, 'build run failed', {
    buildId: build.id,
    project: project.slug,
    number: build.number,
  });
  return { code: 'internal', message: internalErrorMessage(errorId) };
}

/** Logs the first batch of a build's log lines the store refused, with an id, and counts every one. */
function reportDroppedLines(deps: BuildRunDeps, build: Build) {
  return (error: unknown, lines: number, first: boolean): void => {
    deps.onLogLinesDropped?.(lines);
    if (first)
      reportInternalError(deps.log, error, 'storing build log lines failed', { buildId: build.id, lines });
  };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
