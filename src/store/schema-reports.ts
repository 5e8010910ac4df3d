import type { Generated } from 'kysely';

/**
 * The test report tables (migration `0021_test_reports`); read and written by
 * `src/store/test-reports.ts`. Booleans are integers 0/1, times epoch milliseconds.
 */

/** One step's report in a build: the totals of its last attempt's JUnit files. */
export interface TestReportsTable {
  id: Generated<number>;
  build_id: number;
  /** `stage/step` */
  step: string;
  attempt: number;
  files: number;
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  flaky: number;
  time_ms: number;
  /** JSON array of strings: files that could not be read, what was cut. */
  problems: string;
  created_at: number;
}

/** One test case of a step's last attempt (at most a capped number per build). */
export interface TestCasesTable {
  id: Generated<number>;
  build_id: number;
  project_id: number;
  step: string;
  /** sha256 (hex, 32 chars) of suite, classname and name: a test's identity across builds. */
  test_key: string;
  suite: string;
  classname: string;
  name: string;
  file: string | null;
  status: string;
  duration_ms: number | null;
  message: string | null;
  output: string | null;
  flaky: number;
}
