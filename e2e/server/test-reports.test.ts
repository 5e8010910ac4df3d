import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildTests, ProjectTests, TestHistory } from '../../src/contract/tests.js';
import type { Build } from '../../src/server/api/dto.js';
import { TestRepo } from '../../src/server/testing/git-repo.js';
import { runCli } from '../cli-helpers.js';
import { launchBrowser, screenshots, signIn } from '../web/harness.js';
import { buildFinished, cleanup, ServerProcess, type Api } from './server-harness.js';

/**
 * `unit` fails `divides` on its first attempt and passes it on its retry (a marker file in the
 * workspace); then `integration` fails `connects` in build 1 only, and writes a file that is not XML.
 */
const PIPELINE = `steps:
  - name: unit
    retries: 1
    commands:
      - |
        mkdir -p reports
        if [ -f .ran ]; then result=''; else result='<failure message="expected 2, got 3">AssertionError: expected 2, got 3</failure>'; fi
        touch .ran
        cat > reports/unit.xml <<EOF
        <?xml version="1.0" encoding="UTF-8"?>
        <testsuites><testsuite name="calc"><testcase classname="calc" name="adds" time="0.010"/><testcase classname="calc" name="divides" time="0.020">$result</testcase></testsuite></testsuites>
        EOF
        test -z "$result"
    reports:
      junit: reports/unit.xml
  - name: integration
    needs: [unit]
    commands:
      - |
        mkdir -p reports
        if [ "$SLIPWAY_BUILD_NUMBER" = 1 ]; then result='<failure message="connection refused">dial tcp: connection refused</failure><system-out>connecting to db:5432</system-out>'; else result=''; fi
        echo "<testsuite name=\\"db\\"><testcase classname=\\"db.Pool\\" name=\\"connects\\" time=\\"1.5\\">$result</testcase></testsuite>" > reports/int.xml
        echo 'this is not xml' > reports/broken.xml
        test -z "$result"
    reports:
      junit: [reports/int.xml, reports/broken.xml]
`;

/**
 * Test reports through a real `slipway server` (local executor, SQLite): a step that fails
 * has its failure in the API and the CLI with its message and output, a broken report is a
 * line of its log and a problem (the step's status is its exit's), a retry that passes marks
 * the test flaky, and a re-run of the commit that passes a test that failed marks it flaky.
 */
describe('slipway server: test reports', () => {
  let server: ServerProcess;
  let api: Api;
  let repo: TestRepo;
  const cli = (...args: string[]) =>
    runCli(args, { cwd: tmpdir(), env: { SLIPWAY_SERVER: server.url, SLIPWAY_TOKEN: server.token } });

  beforeAll(async () => {
    repo = await TestRepo.create({ '.slipway.yml': PIPELINE });
    server = await ServerProcess.start({ executor: 'local', buildUser: 'self' });
    api = server.api();
    await api.ok('POST', '/projects', { slug: 'acme/web', repoUrl: repo.url });
  });
  afterAll(async () => {
    await cleanup();
    if (repo !== undefined) await rm(repo.dir, { recursive: true, force: true });
  });

  it('failures, a flaky retry, a broken file, then a re-run that marks the fixed test flaky', async () => {
    const first = await api.ok<Build>('POST', '/projects/acme/web/builds', { branch: 'main' });
    expect((await buildFinished(api, first.id)).status).toBe('failure');
    const tests = await api.ok<BuildTests>('GET', `/builds/${first.id}/tests`);
    expect(tests.totals).toEqual({
      tests: 3,
      failures: 1,
      errors: 0,
      skipped: 0,
      flaky: 1,
      timeMs: 1530,
      files: 2,
    });
    const steps = Object.fromEntries(tests.steps.map((s) => [s.step, s]));
    expect(steps['default/unit']).toMatchObject({
      attempt: 2,
      tests: 2,
      failures: 0,
      flaky: 1,
      problems: [],
    });
    expect(steps['default/integration']).toMatchObject({ attempt: 1, tests: 1, failures: 1 });
    expect(steps['default/integration']!.problems).toEqual([
      "reports/broken.xml:1:1: not XML: char 't' is not expected.",
    ]);
    expect(tests.failed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'divides',
          status: 'passed',
          flaky: true,
          message: 'expected 2, got 3',
        }),
        expect.objectContaining({
          name: 'connects',
          classname: 'db.Pool',
          status: 'failed',
          flaky: false,
          message: 'connection refused',
          output: 'dial tcp: connection refused\n--- system-out ---\nconnecting to db:5432',
        }),
      ]),
    );
    const log = (await api.storedLog(first.id)).filter((l) => l.step === 'integration').map((l) => l.text);
    expect(log).toContain("reports: reports/broken.xml:1:1: not XML: char 't' is not expected.");
    expect(log).toContain('reports: 1 test: 1 failed (1 file)');

    const shown = await cli('tests', 'acme/web', String(first.number), '--full');
    expect(shown, shown.stderr).toMatchObject({ code: 0 });
    expect(shown.stdout).toContain(`acme/web #${first.number}: 3 tests, 1 failed, 1 flaky in 2s`);
    expect(shown.stdout).toContain(
      'FAIL  db › db.Pool › connects  [default/integration]\n      connection refused',
    );
    expect(shown.stdout).toContain('    | connecting to db:5432');
    expect(shown.stdout).toContain('FLAKY  calc › divides  [default/unit]');
    expect(shown.stdout).toContain("    ! reports/broken.xml:1:1: not XML: char 't' is not expected.");

    // A re-run of the same commit: connects passes now, after failing on it: flaky.
    const rerun = await api.ok<Build>('POST', `/builds/${first.id}/rerun`, {});
    expect((await buildFinished(api, rerun.id)).status).toBe('success');
    const again = await api.ok<BuildTests>('GET', `/builds/${rerun.id}/tests`);
    expect(again.totals).toMatchObject({ tests: 3, failures: 0, flaky: 2 });
    expect(again.failed.find((c) => c.name === 'connects')).toMatchObject({
      status: 'passed',
      flaky: true,
      message: 'connection refused',
    });

    const history = await api.ok<ProjectTests>('GET', '/projects/acme/web/tests?builds=10');
    expect(history.tests.map((t) => [t.name, t.runs, t.failures, t.flaky, t.lastBuild])).toEqual([
      ['connects', 2, 1, 1, rerun.number],
      ['divides', 2, 0, 2, rerun.number],
    ]);
    const one = await api.ok<TestHistory>('GET', `/projects/acme/web/tests/${history.tests[0]!.key}`);
    expect(one.runs.map((r) => [r.build, r.status, r.flaky])).toEqual([
      [rerun.number, 'passed', true],
      [first.number, 'failed', false],
    ]);
    const table = await cli('tests', 'acme/web');
    expect(table, table.stderr).toMatchObject({ code: 0 });
    expect(table.stdout).toMatch(
      /FAILED\s+FLAKY\s+RUNS\s+LAST\s+TEST\n1\s+1\s+2\s+#2\s+db › db.Pool › connects\n/,
    );
    expect((await api.request('GET', '/projects/acme/web/tests/nope')).status).toBe(400);
  });

  it("web UI: the build page shows the totals, each failure's message, its output folded, flaky marked; the project page the failing tests", async () => {
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await page.goto(`${server.url}/projects/acme/web/builds/1`);
      await signIn(page, server.token);
      const tests = page.getByRole('region', { name: 'Tests' });
      await tests.getByText('3 tests').waitFor();
      await tests.getByText('1 failed').waitFor();
      await tests.getByText('1 flaky').waitFor();
      await tests
        .getByText("default/integration: reports/broken.xml:1:1: not XML: char 't' is not expected.")
        .waitFor();
      const failed = tests.getByRole('listitem').filter({ hasText: 'db.Pool › connects' });
      await failed.getByText('connection refused', { exact: true }).waitFor();
      const output = failed.getByText('connecting to db:5432', { exact: false });
      expect(await output.isVisible()).toBe(false);
      await failed.getByText('db.Pool › connects').click();
      await output.waitFor();
      const flaky = tests.getByRole('listitem').filter({ hasText: 'calc › divides' });
      await flaky.getByText('flaky', { exact: true }).waitFor();
      await flaky.getByText('expected 2, got 3').waitFor();
      await screenshots(page, 'build-tests');

      // The project page: the tests that failed in its last builds.
      await page.goto(`${server.url}/projects/acme/web`);
      const failing = page.getByRole('region', { name: 'Failing tests' });
      const row = failing.getByRole('listitem').filter({ hasText: 'db.Pool › connects' });
      await row.getByText('failed in 1 of 2 builds').waitFor();
      await row.getByText('flaky in 1').waitFor();
      await screenshots(page, 'project-failing-tests');
    } finally {
      await browser.close();
    }
  });
});
