/**
 * `slipway run` reads steps' `reports:` as the server does (the same files, limits and parser)
 * and prints what a person at a terminal wants: the totals after each attempt and the failed
 * tests with their messages. Nothing is stored: a run without a server keeps no history, so
 * no test is called flaky across runs.
 */
import type { Executor } from '../executors/types.js';
import type { RunOptions } from '../orchestrator/types.js';
import type { PipelinePlan } from '../pipeline/types.js';
import { DEFAULT_JUNIT_LIMITS } from '../reports/junit.js';
import { ReportParser } from '../reports/parse-pool.js';
import { DEFAULT_REPORT_LIMITS, readReports } from '../reports/read.js';

/** Failed tests printed per attempt; the rest are counted. */
const MAX_LISTED = 20;

export interface RunReports {
  afterAttempt: NonNullable<RunOptions['afterAttempt']>;
  close(): Promise<void>;
}

/** Undefined when no step has reports. `say` prints a line under the step. */
export function runReports(
  executor: Executor,
  plan: PipelinePlan,
  say: (stage: string, step: string, text: string) => void,
): RunReports | undefined {
  if (!plan.stages.some((stage) => stage.steps.some((step) => step.reports !== undefined))) return undefined;
  const parser = new ReportParser();
  let casesLeft = DEFAULT_REPORT_LIMITS.maxCasesPerBuild;
  return {
    afterAttempt: async (stage, step, _attempt, handle, _exit, signal) => {
      if (step.reports === undefined) return;
      const line = (text: string) => say(stage, step.name, `reports: ${text}`);
      const read = await readReports(executor, handle, step.reports.junit, {
        limits: DEFAULT_REPORT_LIMITS,
        junit: { ...DEFAULT_JUNIT_LIMITS, maxCases: casesLeft },
        parser,
        say: line,
        signal,
      });
      if (read.files === 0) return;
      casesLeft = Math.max(0, casesLeft - read.cases.length);
      const { tests, failures, errors, skipped } = read.totals;
      const passed = tests - failures - errors - skipped;
      line(
        `${tests} ${tests === 1 ? 'test' : 'tests'}: ${passed} passed, ${failures} failed` +
          (errors > 0 ? `, ${errors} ${errors === 1 ? 'error' : 'errors'}` : '') +
          (skipped > 0 ? `, ${skipped} skipped` : '') +
          ` (${read.files} ${read.files === 1 ? 'file' : 'files'})`,
      );
      const bad = read.cases.filter((c) => c.status === 'failed' || c.status === 'error');
      for (const c of bad.slice(0, MAX_LISTED)) {
        const name = [c.suite || c.classname, c.name].filter((part) => part !== '').join(' › ');
        const message = c.message?.split('\n', 1)[0];
        line(`${c.status === 'error' ? 'error' : 'failed'}: ${name}${message ? `: ${message}` : ''}`);
      }
      if (bad.length > MAX_LISTED) line(`… and ${bad.length - MAX_LISTED} more`);
    },
    close: () => parser.close(),
  };
}
