/**
 * Reading a step's JUnit reports out of its workspace, the same for the server (which stores
 * them, server/reports/collector.ts) and `slipway run` (which prints them): the files the
 * step's globs match, through the executor's `collectFiles` (so the artifact rules hold:
 * nothing outside the workspace), each bounded before it is read and parsed off the thread.
 */
import type { Readable } from 'node:stream';
import { formatBytes } from '../contract/bytes.js';
import type { BuildHandle, Executor } from '../executors/types.js';
import { artifactPathProblem } from '../executors/workspace-files.js';
import type { JUnitLimits, ParsedCase, ReportTotals } from './junit.js';
import type { ReportParser } from './parse-pool.js';

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

export interface ReadReports {
  files: number;
  totals: ReportTotals;
  cases: ParsedCase[];
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
