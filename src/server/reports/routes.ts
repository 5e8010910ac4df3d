import { Type } from '@sinclair/typebox';
import type { Kysely } from 'kysely';
import {
  BuildTestsSchema,
  ProjectTestsSchema,
  TEST_LIMITS,
  TestHistorySchema,
  type BuildTests,
} from '../../contract/tests.js';
import type { Database } from '../../store/index.js';
import {
  listFailingTests,
  listNotableTests,
  listStepReports,
  listTestRuns,
} from '../../store/test-reports.js';
import { VIEWER, buildOr404, projectOr404 } from '../api/context.js';
import type { App } from '../api/context.js';
import { notFound } from '../api/errors.js';
import { IdParams, ProjectParams } from '../api/schemas.js';

export interface ReportRouteDeps {
  db: Kysely<Database>;
}

const tags = ['tests'];

const Rows = Type.Optional(
  Type.Integer({
    minimum: 1,
    maximum: TEST_LIMITS.rows.max,
    description: `Rows at most, default ${TEST_LIMITS.rows.default}`,
  }),
);

const BuildTestsQuery = Type.Object({ limit: Rows }, { additionalProperties: false });
const ProjectTestsQuery = Type.Object(
  {
    builds: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: TEST_LIMITS.builds.max,
        description: `The window: the project's last this many builds, default ${TEST_LIMITS.builds.default}`,
      }),
    ),
    limit: Rows,
  },
  { additionalProperties: false },
);
const TestParams = Type.Object({
  owner: ProjectParams.properties.owner,
  name: ProjectParams.properties.name,
  key: Type.String({ pattern: '^[0-9a-f]{32}$', description: 'The `key` of a test' }),
});

/**
 * Test report API, inside the `/api/v1` prefix: a build's totals and failed tests, a
 * project's most-failing tests over its last builds, and one test's recent results.
 */
export function registerReportRoutes(api: App, deps: ReportRouteDeps): void {
  const { db } = deps;

  api.get(
    '/builds/:id/tests',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A build's test report: totals per step, and its failed, errored and flaky tests",
        params: IdParams,
        querystring: BuildTestsQuery,
        response: { 200: BuildTestsSchema },
      },
    },
    async (request): Promise<BuildTests> => {
      const build = await buildOr404(db, request.params.id);
      const limit = request.query.limit ?? TEST_LIMITS.rows.default;
      const steps = await listStepReports(db, build.id);
      const cases = await listNotableTests(db, build.id, limit + 1);
      const totals = { tests: 0, failures: 0, errors: 0, skipped: 0, flaky: 0, timeMs: 0, files: 0 };
      for (const s of steps)
        for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += s[k];
      return { totals, steps, failed: cases.slice(0, limit), more: cases.length > limit };
    },
  );

  api.get(
    '/projects/:owner/:name/tests',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "A project's tests that failed or were flaky in its last builds, most failures first",
        params: ProjectParams,
        querystring: ProjectTestsQuery,
        response: { 200: ProjectTestsSchema },
      },
    },
    async (request) => {
      const project = await projectOr404(db, request.params.owner, request.params.name);
      const builds = request.query.builds ?? TEST_LIMITS.builds.default;
      const tests = await listFailingTests(db, project.id, {
        builds,
        limit: request.query.limit ?? TEST_LIMITS.rows.default,
      });
      return {
        builds,
        tests: tests.map(({ lastBuildId: _id, lastBuildNumber, ...t }) => ({
          ...t,
          lastBuild: lastBuildNumber,
        })),
      };
    },
  );

  api.get(
    '/projects/:owner/:name/tests/:key',
    {
      config: VIEWER,
      schema: {
        tags,
        summary: "One test's latest results in a project, newest first",
        params: TestParams,
        querystring: BuildTestsQuery,
        response: { 200: TestHistorySchema },
      },
    },
    async (request) => {
      const { owner, name, key } = request.params;
      const project = await projectOr404(db, owner, name);
      const history = await listTestRuns(
        db,
        project.id,
        key,
        request.query.limit ?? TEST_LIMITS.rows.default,
      );
      if (history === undefined) throw notFound(`test ${key} of ${project.slug}`);
      return {
        key,
        suite: history.suite,
        classname: history.classname,
        name: history.name,
        runs: history.runs.map((r) => ({
          build: r.buildNumber,
          branch: r.branch,
          commit: r.commitSha,
          step: r.step,
          status: r.status,
          flaky: r.flaky,
          durationMs: r.durationMs,
          message: r.message,
        })),
      };
    },
  );
}
