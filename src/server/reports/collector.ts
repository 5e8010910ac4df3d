import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import type { BuildHandle, Executor } from '../../executors/types.js';
import { artifactPathProblem } from '../../executors/workspace-files.js';
import type { RunOptions } from '../../orchestrator/types.js';
import type { PipelinePlan } from '../../pipeline/types.js';
import type { Database } from '../../store/index.js';
import {
  countTestCases,
  saveStepReport,
  type NewTestCase,
  type StepReport,
  type TestTotals,
} from '../../store/test-reports.js';
import { formatBytes } from '../artifacts/collector.js';
import { DEFAULT_JUNIT_LIMITS, type JUnitLimits } from './junit.js';
import { ReportParser } from './parse-pool.js';

const MiB = 1024 * 1024;

/** Bounds of test reports; what crosses one is a log line and a problem of the report, never a red step. */
export interface ReportLimits {
  /** Largest report file read; a bigger one is refused by its size, unread. Default 50 MiB. */
  maxFileBytes: number;
  /** Test cases stored per build (the totals count all). Default 10,000. */
  maxCasesPerBuild: number;
  /** Report files read per step attempt. Default 1,000. */
  maxFilesPerStep: number;
}

export const DEFAULT_REPORT_LIMITS: ReportLimits = {
  maxFileBytes: 50 * MiB,
  maxCasesPerBuild: 10_000,
  maxFilesPerStep: 1000,
};

export interface ReportDeps {
  db: Kysely<Database>;
  /** Where reports are parsed; default a process-wide one-worker pool. */
  parser?: ReportParser;
  limits?: Partial<ReportLimits>;
  junit?: Partial<JUnitLimits>;
  now?: () => number;
}

/** The build a collector reads reports for. */
export interface ReportBuild {
  id: number;
  projectId: number;
  commitSha: string | null;
}

/**
 * What the scheduler's `BuildRunDeps.reports` needs: the orchestrator's `afterAttempt` hook of
 * one build run, which reads each attempt's `reports:` while its workspace still exists.
 * Undefined when no step of the plan has reports.
 */
export interface ReportCollector {
  afterAttempt(
    executor: Executor,
    build: ReportBuild,
    plan: PipelinePlan,
    log: (stage: string, step: string, text: string) => void,
  ): RunOptions['afterAttempt'];
}

let sharedParser: ReportParser | undefined;

/**
 * The collector the server wires into the scheduler. Nothing here changes a step's result:
 * a file that is missing, too big, not XML or not JUnit, and even a database that cannot
 * store the report, are lines in the step's log (`reports: …`) and problems of its report.
 */
export function createReportCollector(deps: ReportDeps): ReportCollector {
  const limits = { ...DEFAULT_REPORT_LIMITS, ...deps.limits };
  const junit = { ...DEFAULT_JUNIT_LIMITS, ...deps.junit };
  return {
    afterAttempt(executor, build, plan, log) {
      if (!plan.stages.some((stage) => stage.steps.some((step) => step.reports !== undefined)))
        return undefined;
      return async (stage, step, attempt, handle, _exit, signal) => {
        if (step.reports === undefined) return;
        const key = `${stage}/${step.name}`;
        const say = (text: string) => log(stage, step.name, `reports: ${text}`);
        const parser = (deps.parser ??= sharedParser ??= new ReportParser());
        try {
          // The build's cap is shared by its steps, counted from the store: a build resumed by
          // another server process (or another attempt of this step, which replaces its cases)
          // counts what is stored. The store enforces it too (steps saving at once).
          const others = await countTestCases(deps.db, build.id, key);
          const read = await readReports(executor, handle, step.reports.junit, {
            limits,
            junit: { ...junit, maxCases: Math.max(0, limits.maxCasesPerBuild - others) },
            parser,
            say,
            signal,
          });
          if (read.files === 0 && read.problems.length === 0) return;
          const report = await saveStepReport(deps.db, {
            buildId: build.id,
            projectId: build.projectId,
            commitSha: build.commitSha,
            step: key,
            attempt,
            files: read.files,
            totals: read.totals,
            problems: read.problems,
            cases: read.cases,
            createdAt: (deps.now ?? Date.now)(),
            maxCasesPerBuild: limits.maxCasesPerBuild,
          });
          if (report.notStored > 0) say(report.problems.at(-1)!);
          say(summary(report));
        } catch (error) {
          if (signal.aborted) return;
          say(`could not be stored: ${error instanceof Error ? error.message : String(error)}`);
        }
      };
    },
  };
}

export interface ReadReports {
  files: number;
  totals: TestTotals;
  cases: NewTestCase[];
  /** Each also said in the log. */
  problems: string[];
}

/** Reads and parses the report files matching `globs` in a prepared build's workspace. */
export async function readReports(
  executor: Executor,
  handle: BuildHandle,
  globs: readonly string[],
  options: {
    limits: ReportLimits;
    junit: JUnitLimits;
    parser: ReportParser;
    say: (text: string) => void;
    signal?: AbortSignal;
  },
): Promise<ReadReports> {
  const { limits, say } = options;
  const result: ReadReports = {
    files: 0,
    totals: { tests: 0, failures: 0, errors: 0, skipped: 0, timeMs: 0 },
    cases: [],
    problems: [],
  };
  const problem = (text: string) => {
    result.problems.push(text);
    say(text);
  };
  if (!executor.collectFiles) {
    problem(`the ${executor.name} executor cannot read workspace files; no report read`);
    return result;
  }
  let maxCases = options.junit.maxCases;
  let matched = 0;
  for await (const entry of executor.collectFiles(handle, globs, options.signal)) {
    options.signal?.throwIfAborted();
    matched += 1;
    if (entry.kind === 'rejected') {
      problem(`${entry.path}: not read: ${entry.reason}`);
      continue;
    }
    const bad = artifactPathProblem(entry.path);
    if (bad !== undefined) {
      problem(`${entry.path}: not read: ${bad}`);
      continue;
    }
    if (result.files >= limits.maxFilesPerStep) {
      problem(`${entry.path}: not read: at most ${limits.maxFilesPerStep} report files are read per step`);
      continue;
    }
    // Checked before a byte is read: a 200 MB file costs nothing.
    if (entry.size > limits.maxFileBytes) {
      problem(
        `${entry.path}: not read: ${formatBytes(entry.size)} is over the limit of ${formatBytes(limits.maxFileBytes)} per report file`,
      );
      continue;
    }
    const bytes = await readAll(entry.open(), limits.maxFileBytes);
    if (bytes === undefined) {
      problem(
        `${entry.path}: not read: it grew over the limit of ${formatBytes(limits.maxFileBytes)} while read`,
      );
      continue;
    }
    const parsed = await options.parser.parse(bytes, { ...options.junit, maxCases });
    if (parsed.error !== undefined) {
      problem(`${entry.path}:${parsed.error.match(/^\d+:\d+: /) ? '' : ' '}${parsed.error}`);
      continue;
    }
    result.files += 1;
    maxCases = Math.max(0, maxCases - parsed.cases.length);
    for (const k of ['tests', 'failures', 'errors', 'skipped', 'timeMs'] as const)
      result.totals[k] += parsed.totals[k];
    for (const c of parsed.cases) result.cases.push(c);
    // The parser's bound on cases is what the build's cap leaves: said as the build's.
    const dropNote = `${parsed.dropped} test cases not kept:`;
    if (parsed.dropped > 0)
      problem(
        `${entry.path}: ${parsed.dropped} test cases not kept: at most ${limits.maxCasesPerBuild} are stored per build`,
      );
    for (const note of parsed.notes) if (!note.startsWith(dropNote)) problem(`${entry.path}: ${note}`);
  }
  if (matched === 0) problem(`nothing matched ${globs.map((g) => `"${g}"`).join(', ')}`);
  return result;
}

/**
 * The whole stream in pieces, or undefined once it passes `max` bytes (then it is destroyed).
 * Each piece is a copy of its own as it comes, so that the parser may take (transfer) their
 * buffers: not one copy of 50 MB into one buffer, which held the event loop for tens of ms.
 */
async function readAll(stream: Readable, max: number): Promise<Uint8Array[] | undefined> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > max) {
      stream.destroy();
      return undefined;
    }
    parts.push(new Uint8Array(buffer));
  }
  return parts;
}

/** `12 tests: 1 failed, 1 error, 2 skipped, 1 flaky (2 files)`. */
export function summary(report: StepReport): string {
  const parts = [
    `${report.failures} failed`,
    ...(report.errors > 0 ? [`${report.errors} ${report.errors === 1 ? 'error' : 'errors'}`] : []),
    ...(report.skipped > 0 ? [`${report.skipped} skipped`] : []),
    ...(report.flaky > 0 ? [`${report.flaky} flaky`] : []),
  ];
  return `${report.tests} ${report.tests === 1 ? 'test' : 'tests'}: ${parts.join(', ')} (${report.files} ${report.files === 1 ? 'file' : 'files'})`;
}
