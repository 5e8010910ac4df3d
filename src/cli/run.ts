import { randomUUID } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  compilePipeline as compileHere,
  formatPipelineError,
  PLACEHOLDER_CONTEXT,
  type CompileInput,
} from '../pipeline/index.js';
import { compileWithIncludes } from '../pipeline/include.js';
import { localIncludes, repositoryRoot } from '../executors/repo-files.js';
import { EVENTS, type BuildEvent } from '../pipeline/types.js';
import { notRunResult, pipelineImages, refuseHostRun, refuseImageless } from '../executors/host-guard.js';
import { whyNotGit, type SourceSeed } from '../executors/workspace-seed.js';
import { runPipeline } from '../orchestrator/run-pipeline.js';
import type { ApprovalDecision, BuildResult } from '../orchestrator/types.js';
import { BuildPrinter } from './build-printer.js';
import { runReports } from './run-reports.js';
import { EXIT, UsageError } from './errors.js';
import { engineTimeoutFrom } from './engine-timeout.js';
import { chooseExecutor, type ExecutorChoice } from './executor-choice.js';
import { kubernetesSettings, type KubernetesCliOptions } from './kubernetes-options.js';
import { describeCheckout } from './git-info.js';
import { parseKeyValues } from './key-values.js';
import { BufferedWriter, Style } from './output.js';

export interface RunCommandOptions extends KubernetesCliOptions {
  file: string;
  executor: ExecutorChoice;
  env: string[];
  secret: string[];
  branch?: string;
  tag?: string;
  commit?: string;
  event: string;
  project?: string;
  number: string;
  report?: string;
  approve: boolean;
  workdir?: string;
  /** Seed the workspace with ignored files too, not only what git would commit. */
  includeIgnored?: boolean;
  /** Seed the workspace with `.git` too. */
  withGit?: boolean;
  parallelism?: string;
  engine?: string;
  engineTimeout?: string;
  pull?: string;
  color?: boolean;
  dryRun?: boolean;
  output?: 'yaml' | 'json';
}

/** `slipway run`: compiles the pipeline file and runs it here, without a server. Returns the exit code. */
export async function runCommand(options: RunCommandOptions): Promise<number> {
  const out = new BufferedWriter(process.stdout);
  const style = new Style(options.color ?? (process.stdout.isTTY === true && !process.env.NO_COLOR));
  const event = parseEvent(options.event);
  const buildNumber = parsePositiveInt('--number', options.number);
  const parallelism =
    options.parallelism === undefined ? undefined : parsePositiveInt('--parallelism', options.parallelism);
  const overrides = parseKeyValues('--env', options.env);
  const secrets = parseKeyValues('--secret', options.secret, process.env);
  const sourceDir = resolve(options.workdir ?? process.cwd());
  const engineTimeout = engineTimeoutFrom(options.engineTimeout);

  const source = await readPipelineFile(options.file);
  // Files it includes: from the working tree of its repository (never from other projects).
  const includes = localIncludes(await repositoryRoot(options.file, sourceDir));
  const compilePipeline = (input: CompileInput) => compileWithIncludes(input, includes, compileHere);
  const checkout =
    options.branch !== undefined && options.commit !== undefined && options.project !== undefined
      ? { project: options.project }
      : await describeCheckout(sourceDir);
  const images = await compilePipeline({
    file: options.file,
    source,
    context: { ...PLACEHOLDER_CONTEXT },
    overrides,
  });
  if (options.dryRun) {
    if (options.executor !== 'kubernetes') throw new UsageError('--dry-run: only with --executor kubernetes');
    return dryRun(options, { source, overrides, sourceDir, buildNumber, event, checkout });
  }
  const { executor, selection } = await chooseExecutor(options.executor, {
    ...(images.ok ? { pipelineHasImages: pipelineImages(images.plan).length > 0 } : {}),
    ...engineTimeout,
    ...(options.workdir !== undefined ? { workdir: sourceDir } : {}),
    ...(options.engine !== undefined ? { engine: options.engine } : {}),
    ...(options.pull !== undefined ? { pull: options.pull } : {}),
    kubernetes: options,
    notice: (text) => process.stderr.write(`${text}\n`),
  });
  const buildId = `run-${randomUUID().slice(0, 8)}`;
  const context = {
    buildId,
    buildNumber,
    project: options.project ?? checkout.project,
    branch: options.branch ?? ('branch' in checkout ? checkout.branch : undefined) ?? 'main',
    ...(options.tag !== undefined ? { tag: options.tag } : {}),
    commit:
      options.commit ??
      ('commit' in checkout ? checkout.commit : undefined) ??
      '0000000000000000000000000000000000000000',
    event,
    workspace: executor.workspacePath(buildId),
  };
  const compiled = await compilePipeline({ file: options.file, source, context, overrides });
  if (!compiled.ok) {
    process.stderr.write(compiled.errors.map(formatPipelineError).join('\n') + '\n');
    return EXIT.usage;
  }
  for (const warning of compiled.warnings) process.stderr.write(`warning: ${formatPipelineError(warning)}\n`);
  const refusal =
    refuseHostRun(pipelineImages(compiled.plan), selection, 'use `slipway run --executor local`.') ??
    refuseImageless(
      compiled.plan,
      executor.name,
      'add `image:` to the pipeline, or run it on the host with `slipway run --executor local`.',
    );
  if (refusal) process.stderr.write(`slipway: ${refusal.message}\n`);
  // A refused build runs no step: it ends `error` with the reason, summary and report as usual.
  const runOrRefuse: typeof runPipeline = refusal
    ? (plan) => Promise.resolve(notRunResult(plan, refusal))
    : runPipeline;

  // With --workdir and the local executor the workspace IS that directory: nothing to copy.
  const seed =
    options.workdir !== undefined && executor.name === 'local'
      ? undefined
      : await workspaceSeed(options, sourceDir);
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) process.exit(EXIT.cancelled);
    process.stderr.write(`\n${signal}: cancelling the build (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const printer = new BuildPrinter(out, style);
  const reports = refusal
    ? undefined
    : runReports(executor, compiled.plan, (stage, step, text) => printer.stepPending(stage, step, text));
  let result: BuildResult;
  try {
    result = await runOrRefuse(compiled.plan, context, executor, {
      observer: printer,
      signal: controller.signal,
      ...(seed ? { sourceDir, sourceSeed: seed } : {}),
      secrets: { get: (name) => Promise.resolve(secrets[name]) },
      // A run without a server keeps nothing between runs: caches are said to be skipped, not silently.
      beforeStep: (stage, step) => {
        if (step.cache)
          printer.stepPending(
            stage,
            step.name,
            'cache: skipped (slipway run keeps no caches; the server does)',
          );
        return Promise.resolve();
      },
      ...(reports ? { afterAttempt: reports.afterAttempt } : {}),
      ...(parallelism !== undefined ? { parallelism } : {}),
      // Without --approve nobody can approve here: the orchestrator skips the gated stage and the rest.
      ...(options.approve
        ? {
            approver: {
              request: () =>
                Promise.resolve<ApprovalDecision>({ decision: 'approve', by: 'slipway run --approve' }),
            },
          }
        : {}),
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await reports?.close();
    await executor.close?.();
  }
  printer.summary(result);
  await out.drain();
  if (options.report !== undefined) await writeReport(options.report, result);
  if (result.status === 'cancelled') return EXIT.cancelled;
  return result.status === 'success' || result.status === 'skipped' ? EXIT.ok : EXIT.buildFailed;
}

interface DryRunContext {
  source: string;
  overrides: Record<string, string>;
  sourceDir: string;
  buildNumber: number;
  event: BuildEvent;
  checkout: Awaited<ReturnType<typeof describeCheckout>> | { project: string };
}

/** Prints the objects a Kubernetes build of the pipeline would create; touches no cluster. */
async function dryRun(options: RunCommandOptions, run: DryRunContext): Promise<number> {
  const [{ dryRunObjects, renderDryRun }, { packSeed }, { MAX_SEED_BYTES_DEFAULT }] = await Promise.all([
    import('../executors/kubernetes/dry-run.js'),
    import('../executors/kubernetes/seed.js'),
    import('../executors/kubernetes/manifests/index.js'),
  ]);
  const settings = kubernetesSettings(options);
  const { checkout } = run;
  const buildId = `run-${randomUUID().slice(0, 8)}`;
  const context = {
    buildId,
    buildNumber: run.buildNumber,
    project: options.project ?? checkout.project,
    branch: options.branch ?? ('branch' in checkout ? checkout.branch : undefined) ?? 'main',
    ...(options.tag !== undefined ? { tag: options.tag } : {}),
    commit: options.commit ?? ('commit' in checkout ? checkout.commit : undefined) ?? '0'.repeat(40),
    event: run.event,
    workspace: '/workspace',
  };
  const includes = localIncludes(await repositoryRoot(options.file, run.sourceDir));
  const compiled = await compileWithIncludes(
    { file: options.file, source: run.source, context, overrides: run.overrides },
    includes,
    compileHere,
  );
  if (!compiled.ok) {
    process.stderr.write(compiled.errors.map(formatPipelineError).join('\n') + '\n');
    return EXIT.usage;
  }
  const seed = await packSeed(
    run.sourceDir,
    await workspaceSeed(options, run.sourceDir),
    MAX_SEED_BYTES_DEFAULT,
  );
  const objects = dryRunObjects({
    plan: compiled.plan,
    build: { buildId, project: context.project, branch: context.branch },
    installation: settings.installation ?? 'default',
    namespace: options.namespace ?? 'default',
    helperImage: settings.helperImage ?? 'busybox:1.36',
    ...(settings.pull ? { pull: settings.pull } : {}),
    ...(settings.resources ? { resources: settings.resources } : {}),
    seed,
  });
  process.stdout.write(renderDryRun(objects, options.output ?? 'yaml'));
  return EXIT.ok;
}

/**
 * What of `dir` seeds the workspace: what git would commit unless `--include-ignored`, `.git`
 * only with `--with-git`. Says on stderr when that is everything, or when `.git` is missing.
 */
async function workspaceSeed(options: RunCommandOptions, dir: string): Promise<SourceSeed> {
  const seed: SourceSeed = {
    select: options.includeIgnored === true ? 'all' : 'git',
    withGit: options.withGit === true,
  };
  if (seed.select === 'git') {
    const why = await whyNotGit(dir);
    if (why !== undefined) process.stderr.write(`slipway: ${dir}: ${why} into the workspace\n`);
  }
  if (seed.withGit && !(await isDirectory(join(dir, '.git')))) {
    process.stderr.write(`slipway: --with-git: ${dir} has no .git directory of its own; none is copied\n`);
  }
  return seed;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function readPipelineFile(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT'
        ? `${file}: no such file (give another with -f)`
        : `${file}: cannot read: ${String(error)}`,
    );
  }
}

/** The result tree as JSON, in the shape documented in the README. */
async function writeReport(path: string, result: BuildResult): Promise<void> {
  const report = {
    status: result.status,
    durationMs: result.durationMs,
    ...(result.reason ? { reason: result.reason } : {}),
    stages: result.stages.map((stage) => ({
      name: stage.name,
      status: stage.status,
      durationMs: stage.durationMs,
      ...(stage.reason ? { reason: stage.reason } : {}),
      steps: stage.steps.map((step) => ({
        name: step.name,
        status: step.status,
        exitCode: step.exitCode,
        durationMs: step.durationMs,
        attempts: step.attempts,
        allowFailure: step.allowFailure,
        ...(step.reason ? { reason: step.reason } : {}),
      })),
    })),
  };
  await writeFile(path, JSON.stringify(report, null, 2) + '\n');
}

function parseEvent(value: string): BuildEvent {
  if ((EVENTS as readonly string[]).includes(value)) return value as BuildEvent;
  throw new UsageError(`--event "${value}": expected one of ${EVENTS.join(', ')}`);
}

function parsePositiveInt(option: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${option} "${value}": expected a whole number of 1 or more`);
  return n;
}
