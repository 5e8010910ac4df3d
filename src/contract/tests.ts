/**
 * Test reports (`reports: { junit: … }` of a step), as the API shows them, with the calls the
 * CLI and the web UI make:
 *   GET /builds/{id}/tests                                   → BuildTests      viewer
 *   GET /projects/{owner}/{name}/tests?builds=N&limit=L      → ProjectTests    viewer
 *   GET /projects/{owner}/{name}/tests/{key}?limit=L         → TestHistory     viewer
 * A test is known by its suite, classname and name; `key` is a hash of the three. It is
 * `flaky` in a build when it passed there after failing on the same commit (an earlier attempt
 * of its step, an earlier build of the commit, or the test tool's own re-run). The calls are in
 * `tests-api.ts`, apart from the schemas so that the web UI takes them without TypeBox.
 */
import { Type, type Static } from '@sinclair/typebox';
import { literals, nullable } from './dto.js';

export const TEST_STATUSES = ['passed', 'failed', 'error', 'skipped'] as const;

const Counts = {
  tests: Type.Integer(),
  failures: Type.Integer({ description: 'Cases with a `<failure>`' }),
  errors: Type.Integer({ description: 'Cases with an `<error>`: the test could not run to its assertion' }),
  skipped: Type.Integer(),
  flaky: Type.Integer({ description: 'Passed after failing on the same commit' }),
  timeMs: Type.Integer({ description: "The sum of the cases' times" }),
  files: Type.Integer({ description: 'Report files read' }),
};

export const StepTestsSchema = Type.Object(
  {
    step: Type.String({ description: '`stage/step`' }),
    attempt: Type.Integer({ description: 'The attempt whose report this is: the last one that ran' }),
    ...Counts,
    problems: Type.Array(Type.String(), {
      description: 'Files not read (missing, too big, not XML, not JUnit) and what was cut',
    }),
  },
  { title: 'StepTests' },
);

export const TestCaseSchema = Type.Object(
  {
    step: Type.String(),
    key: Type.String({ description: 'The identity of the test: a hash of suite, classname and name' }),
    suite: Type.String(),
    classname: Type.String(),
    name: Type.String(),
    file: nullable(Type.String()),
    status: literals(TEST_STATUSES),
    durationMs: nullable(Type.Integer()),
    message: nullable(Type.String({ description: 'A flaky case keeps the message of its earlier failure' })),
    output: nullable(
      Type.String({ description: 'Failure text and the output of a failed case, cut at 64 KiB' }),
    ),
    flaky: Type.Boolean(),
  },
  { title: 'TestCase' },
);

export const BuildTestsSchema = Type.Object(
  {
    totals: Type.Object(Counts),
    steps: Type.Array(StepTestsSchema),
    failed: Type.Array(TestCaseSchema, {
      description: 'Failed, errored and flaky cases (at most `limit`), in the order stored',
    }),
    more: Type.Boolean({ description: 'More such cases than listed' }),
  },
  { title: 'BuildTests' },
);

export const TestSummarySchema = Type.Object(
  {
    key: Type.String(),
    suite: Type.String(),
    classname: Type.String(),
    name: Type.String(),
    runs: Type.Integer({ description: 'Builds of the window it ran in' }),
    failures: Type.Integer({ description: '… it failed or errored in' }),
    flaky: Type.Integer({ description: '… it was flaky in' }),
    lastBuild: Type.Integer({ description: 'Number of the latest build it failed or was flaky in' }),
  },
  { title: 'TestSummary' },
);

export const ProjectTestsSchema = Type.Object(
  {
    builds: Type.Integer({ description: "The window: the project's last this many builds" }),
    tests: Type.Array(TestSummarySchema, { description: 'Most failures first, then most flaky' }),
  },
  { title: 'ProjectTests' },
);

export const TestRunSchema = Type.Object(
  {
    build: Type.Integer({ description: 'Build number' }),
    branch: Type.String(),
    commit: nullable(Type.String()),
    step: Type.String(),
    status: literals(TEST_STATUSES),
    flaky: Type.Boolean(),
    durationMs: nullable(Type.Integer()),
    message: nullable(Type.String()),
  },
  { title: 'TestRun' },
);

export const TestHistorySchema = Type.Object(
  {
    key: Type.String(),
    suite: Type.String(),
    classname: Type.String(),
    name: Type.String(),
    runs: Type.Array(TestRunSchema, { description: 'Newest first' }),
  },
  { title: 'TestHistory' },
);

export type StepTests = Static<typeof StepTestsSchema>;
export type TestCaseDto = Static<typeof TestCaseSchema>;
export type BuildTests = Static<typeof BuildTestsSchema>;
export type TestSummary = Static<typeof TestSummarySchema>;
export type ProjectTests = Static<typeof ProjectTestsSchema>;
export type TestRunDto = Static<typeof TestRunSchema>;
export type TestHistory = Static<typeof TestHistorySchema>;

/** Bounds of the queries: a window of builds and a number of rows. */
export const TEST_LIMITS = { builds: { default: 20, max: 100 }, rows: { default: 50, max: 500 } } as const;
