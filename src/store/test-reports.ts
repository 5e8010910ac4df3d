import { createHash } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database } from './schema.js';
import type { TestCasesTable } from './schema-reports.js';
import { dialectOf } from './db.js';
import { relaxedTransaction } from './transaction.js';

/**
 * Test reports: per build and step the totals of the step's last attempt, and its test cases.
 *
 * A test's identity is its suite, classname and name (`testKey`): what every JUnit producer
 * keeps stable from run to run (the file and the time are not). A test is *flaky* in a build
 * when it passed there after it failed on the same commit: in an earlier attempt of the same
 * step (`retries:`), in an earlier build of the same project and commit (a re-run), or in a
 * re-run of the test tool itself (Surefire's `flakyFailure`). The flaky case keeps the
 * earlier failure's message.
 */

export type TestCaseStatus = 'passed' | 'failed' | 'error' | 'skipped';

export interface TestTotals {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
  timeMs: number;
}

export interface NewTestCase {
  suite: string;
  classname: string;
  name: string;
  file?: string;
  status: TestCaseStatus;
  durationMs: number | null;
  message?: string;
  output?: string;
  /** Flaky by the test tool's own reruns. */
  flaky: boolean;
}

export interface StepReportInput {
  buildId: number;
  projectId: number;
  commitSha: string | null;
  /** `stage/step` */
  step: string;
  attempt: number;
  files: number;
  totals: TestTotals;
  /** Files that could not be read and what was cut, for the API. */
  problems: string[];
  cases: NewTestCase[];
  createdAt: number;
  /**
   * The build's cap on stored test cases, shared by its steps: of `cases`, only as many are
   * stored as fit beside what the build's other steps stored (counted in the transaction, so
   * the cap holds for steps saving at once and across server processes). Default: no cap.
   */
  maxCasesPerBuild?: number;
}

export interface StepReport extends TestTotals {
  step: string;
  attempt: number;
  files: number;
  flaky: number;
  problems: string[];
}

/** What `saveStepReport` stored. */
export interface SavedStepReport extends StepReport {
  /** Cases of the input not stored (over `maxCasesPerBuild`); said in `problems` too. */
  notStored: number;
}

export interface TestCase {
  step: string;
  key: string;
  suite: string;
  classname: string;
  name: string;
  file: string | null;
  status: TestCaseStatus;
  durationMs: number | null;
  message: string | null;
  output: string | null;
  flaky: boolean;
}

/** Earlier builds of the same commit looked at for the flaky mark; the latest ones. */
const EARLIER_BUILDS = 20;
/**
 * Rows inserted per statement, with a turn of the event loop between statements: SQLite's
 * driver is synchronous, and 10,000 cases in one go held the server's event loop for 0.5-0.8 s
 * on a busy machine (bench/reports.mjs); a slice of this size takes a few ms. (SQLite allows
 * 32766 parameters; 14 columns a row.)
 */
const INSERT_CHUNK = 100;

/** The identity of a test across builds: a hash of suite, classname and name. */
export function testKey(test: { suite: string; classname: string; name: string }): string {
  return createHash('sha256')
    .update(`${test.suite}\u0000${test.classname}\u0000${test.name}`)
    .digest('hex')
    .slice(0, 32);
}

const FAILED: TestCaseStatus[] = ['failed', 'error'];

/**
 * Stores one attempt's report of a step (relaxed: a report lost to a power cut is not worth an
 * fsync per step), replacing the step's earlier one in the build, and
 * marks flaky what passes now and failed before on the same commit. Returns the report as stored.
 */
export async function saveStepReport(db: Kysely<Database>, input: StepReportInput): Promise<SavedStepReport> {
  return relaxedTransaction(db, async (trx) => {
    let cases = input.cases;
    let problems = input.problems;
    if (input.maxCasesPerBuild !== undefined) {
      // SQLite's write transaction already runs alone; PostgreSQL's READ COMMITTED needs the
      // build's row locked, so that two steps saving at once count one after the other.
      if (dialectOf(trx) === 'postgres')
        await trx.selectFrom('builds').select('id').where('id', '=', input.buildId).forUpdate().execute();
      const room = Math.max(
        0,
        input.maxCasesPerBuild - (await countTestCases(trx, input.buildId, input.step)),
      );
      if (cases.length > room) {
        cases = cases.slice(0, room);
        problems = [
          ...problems,
          `${input.cases.length - room} test cases not stored: at most ${input.maxCasesPerBuild} are stored per build`,
        ];
      }
    }
    // What failed before on this commit: this step's earlier attempt, then earlier builds.
    const failedBefore = new Map<string, string | null>();
    const earlierAttempt = await trx
      .selectFrom('test_cases')
      .select(['test_key', 'message'])
      .where('build_id', '=', input.buildId)
      .where('step', '=', input.step)
      .where('status', 'in', FAILED)
      .execute();
    for (const row of earlierAttempt) failedBefore.set(row.test_key, row.message);
    if (input.commitSha !== null) {
      const builds = await trx
        .selectFrom('builds')
        .select('id')
        .where('project_id', '=', input.projectId)
        .where('commit_sha', '=', input.commitSha)
        .where('id', '<', input.buildId)
        .orderBy('id', 'desc')
        .limit(EARLIER_BUILDS)
        .execute();
      if (builds.length > 0) {
        const rows = await trx
          .selectFrom('test_cases')
          .select(['test_key', 'message'])
          .where(
            'build_id',
            'in',
            builds.map((b) => b.id),
          )
          .where('status', 'in', FAILED)
          .execute();
        for (const row of rows)
          if (!failedBefore.has(row.test_key)) failedBefore.set(row.test_key, row.message);
      }
    }
    await trx
      .deleteFrom('test_cases')
      .where('build_id', '=', input.buildId)
      .where('step', '=', input.step)
      .execute();

    let flaky = 0;
    const rowOf = (c: NewTestCase) => {
      const key = testKey(c);
      const earlier = c.status === 'passed' ? failedBefore.get(key) : undefined;
      const isFlaky = c.flaky || (c.status === 'passed' && failedBefore.has(key));
      if (isFlaky) flaky += 1;
      return {
        build_id: input.buildId,
        project_id: input.projectId,
        step: input.step,
        test_key: key,
        suite: c.suite,
        classname: c.classname,
        name: c.name,
        file: c.file ?? null,
        status: c.status,
        duration_ms: c.durationMs,
        message: c.message ?? earlier ?? null,
        output: c.output ?? null,
        flaky: isFlaky ? 1 : 0,
      };
    };
    for (let i = 0; i < cases.length; i += INSERT_CHUNK) {
      // Other work of the server runs between slices (what needs the database waits its turn).
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      await trx
        .insertInto('test_cases')
        .values(cases.slice(i, i + INSERT_CHUNK).map(rowOf))
        .execute();
    }
    const values = {
      attempt: input.attempt,
      files: input.files,
      tests: input.totals.tests,
      failures: input.totals.failures,
      errors: input.totals.errors,
      skipped: input.totals.skipped,
      flaky,
      time_ms: input.totals.timeMs,
      problems: JSON.stringify(problems),
      created_at: input.createdAt,
    };
    await trx
      .insertInto('test_reports')
      .values({ build_id: input.buildId, step: input.step, ...values })
      .onConflict((oc) => oc.columns(['build_id', 'step']).doUpdateSet(values))
      .execute();
    return {
      step: input.step,
      attempt: input.attempt,
      files: input.files,
      ...input.totals,
      flaky,
      problems,
      notStored: input.cases.length - cases.length,
    };
  });
}

/** The reports of a build's steps, in step order of storing. */
export async function listStepReports(db: Kysely<Database>, buildId: number): Promise<StepReport[]> {
  const rows = await db
    .selectFrom('test_reports')
    .selectAll()
    .where('build_id', '=', buildId)
    .orderBy('id')
    .execute();
  return rows.map((r) => ({
    step: r.step,
    attempt: Number(r.attempt),
    files: Number(r.files),
    tests: Number(r.tests),
    failures: Number(r.failures),
    errors: Number(r.errors),
    skipped: Number(r.skipped),
    flaky: Number(r.flaky),
    timeMs: Number(r.time_ms),
    problems: JSON.parse(r.problems) as string[],
  }));
}

/** How many test cases a build has stored (the per-build cap), but for those of `exceptStep`. */
export async function countTestCases(
  db: Kysely<Database>,
  buildId: number,
  exceptStep?: string,
): Promise<number> {
  let query = db
    .selectFrom('test_cases')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('build_id', '=', buildId);
  if (exceptStep !== undefined) query = query.where('step', '<>', exceptStep);
  const row = await query.executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** A build's failed, errored and flaky tests (not passed or skipped ones), at most `limit`. */
export async function listNotableTests(
  db: Kysely<Database>,
  buildId: number,
  limit: number,
): Promise<TestCase[]> {
  const rows = await db
    .selectFrom('test_cases')
    .selectAll()
    .where('build_id', '=', buildId)
    .where((eb) => eb.or([eb('status', 'in', FAILED), eb('flaky', '=', 1)]))
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map(toCase);
}

export interface TestSummary {
  key: string;
  suite: string;
  classname: string;
  name: string;
  /** Builds of the window in which it ran. */
  runs: number;
  /** … failed or errored. */
  failures: number;
  /** … passed only after failing. */
  flaky: number;
  /** The latest build of the window in which it failed or was flaky. */
  lastBuildId: number;
  lastBuildNumber: number;
}

/** The first build id of a project's last `builds` builds (0 when it has none). */
async function windowStart(db: Kysely<Database>, projectId: number, builds: number): Promise<number> {
  const rows = await db
    .selectFrom('builds')
    .select('id')
    .where('project_id', '=', projectId)
    .orderBy('id', 'desc')
    .limit(builds)
    .execute();
  return rows.length === 0 ? Number.MAX_SAFE_INTEGER : Number(rows[rows.length - 1]!.id);
}

/**
 * A project's tests that failed or were flaky in its last `builds` builds, most failures first,
 * at most `limit`, with how often each ran in that window.
 */
export async function listFailingTests(
  db: Kysely<Database>,
  projectId: number,
  options: { builds: number; limit: number },
): Promise<TestSummary[]> {
  const from = await windowStart(db, projectId, options.builds);
  const failing = await db
    .selectFrom('test_cases')
    .select((eb) => [
      'test_key',
      eb.fn.sum<number | string>(eb.case().when('status', 'in', FAILED).then(1).else(0).end()).as('failures'),
      eb.fn.sum<number | string>('flaky').as('flaky'),
      eb.fn.max<number | string>('build_id').as('last_build'),
    ])
    .where('project_id', '=', projectId)
    .where('build_id', '>=', from)
    .where((eb) => eb.or([eb('status', 'in', FAILED), eb('flaky', '=', 1)]))
    .groupBy('test_key')
    .orderBy('failures', 'desc')
    .orderBy('flaky', 'desc')
    .orderBy('last_build', 'desc')
    .limit(options.limit)
    .execute();
  if (failing.length === 0) return [];
  const runs = await db
    .selectFrom('test_cases')
    .select((eb) => [
      'test_key',
      eb.fn.count<number | string>('build_id').distinct().as('runs'),
      eb.fn.max('suite').as('suite'),
      eb.fn.max('classname').as('classname'),
      eb.fn.max('name').as('name'),
    ])
    .where('project_id', '=', projectId)
    .where(
      'test_key',
      'in',
      failing.map((f) => f.test_key),
    )
    .where('build_id', '>=', from)
    .groupBy('test_key')
    .execute();
  const byKey = new Map(runs.map((r) => [r.test_key, r]));
  const builds = await db
    .selectFrom('builds')
    .select(['id', 'number'])
    .where(
      'id',
      'in',
      failing.map((f) => Number(f.last_build)),
    )
    .execute();
  const numbers = new Map(builds.map((b) => [Number(b.id), Number(b.number)]));
  return failing.map((f) => {
    const r = byKey.get(f.test_key);
    return {
      key: f.test_key,
      suite: String(r?.suite ?? ''),
      classname: String(r?.classname ?? ''),
      name: String(r?.name ?? ''),
      runs: Number(r?.runs ?? 0),
      failures: Number(f.failures),
      flaky: Number(f.flaky),
      lastBuildId: Number(f.last_build),
      lastBuildNumber: numbers.get(Number(f.last_build)) ?? 0,
    };
  });
}

export interface TestRun {
  buildId: number;
  buildNumber: number;
  branch: string;
  commitSha: string | null;
  step: string;
  status: TestCaseStatus;
  flaky: boolean;
  durationMs: number | null;
  message: string | null;
}

/** One test's latest results in a project, newest first, at most `limit`. */
export async function listTestRuns(
  db: Kysely<Database>,
  projectId: number,
  key: string,
  limit: number,
): Promise<{ suite: string; classname: string; name: string; runs: TestRun[] } | undefined> {
  const rows = await db
    .selectFrom('test_cases as t')
    .innerJoin('builds as b', 'b.id', 't.build_id')
    .select([
      't.build_id',
      'b.number',
      'b.branch',
      'b.commit_sha',
      't.step',
      't.status',
      't.flaky',
      't.duration_ms',
      't.message',
      't.suite',
      't.classname',
      't.name',
    ])
    .where('t.project_id', '=', projectId)
    .where('t.test_key', '=', key)
    .orderBy('t.build_id', 'desc')
    .limit(limit)
    .execute();
  const first = rows[0];
  if (first === undefined) return undefined;
  return {
    suite: first.suite,
    classname: first.classname,
    name: first.name,
    runs: rows.map((r) => ({
      buildId: Number(r.build_id),
      buildNumber: Number(r.number),
      branch: r.branch,
      commitSha: r.commit_sha,
      step: r.step,
      status: r.status as TestCaseStatus,
      flaky: Number(r.flaky) === 1,
      durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
      message: r.message,
    })),
  };
}

function toCase(r: Omit<Selectable<TestCasesTable>, 'id' | 'build_id' | 'project_id'>): TestCase {
  return {
    step: r.step,
    key: r.test_key,
    suite: r.suite,
    classname: r.classname,
    name: r.name,
    file: r.file,
    status: r.status as TestCaseStatus,
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms),
    message: r.message,
    output: r.output,
    flaky: Number(r.flaky) === 1,
  };
}
