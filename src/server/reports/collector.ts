import type { Kysely } from 'kysely';
import type { Executor } from '../../executors/types.js';
import type { RunOptions } from '../../orchestrator/types.js';
import type { PipelinePlan } from '../../pipeline/types.js';
import type { Database } from '../../store/index.js';
import { countTestCases, saveStepReport, type StepReport } from '../../store/test-reports.js';
import { DEFAULT_JUNIT_LIMITS, type JUnitLimits } from '../../reports/junit.js';
import { ReportParser } from '../../reports/parse-pool.js';
import { DEFAULT_REPORT_LIMITS, readReports, type ReportLimits } from '../../reports/read.js';

export { DEFAULT_REPORT_LIMITS, readReports, type ReportLimits } from '../../reports/read.js';

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
