import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerExecutor } from '../../executors/docker/docker-executor.js';
import { enginePlan, findTestEngine } from '../../executors/docker/testing/test-engine.js';
import { RecordingSink } from '../../executors/executor.case.js';
import { runStep } from '../../executors/lifecycle.js';
import type { BuildHandle } from '../../executors/types.js';
import { DEFAULT_REPORT_LIMITS, readReports } from './collector.js';
import { DEFAULT_JUNIT_LIMITS } from '../../reports/junit.js';
import { ReportParser } from '../../reports/parse-pool.js';

const found = await findTestEngine();
const plan = enginePlan(found);
if (plan.action === 'skip') console.warn(plan.reason);
if (plan.action === 'fail') {
  describe('test reports on docker', () => {
    it('has a container engine to test against', () => {
      throw new Error(plan.reason);
    });
  });
}
const live = found.available ? found : undefined;

/** The same reading as on the local executor, from a container's workspace volume. */
describe.skipIf(!live)('test reports from a docker workspace', { timeout: 120_000 }, () => {
  let executor: DockerExecutor;
  let handle: BuildHandle;

  beforeAll(async () => {
    executor = new DockerExecutor({ client: live!.client, engine: live!.engine, stopGraceMs: 500 });
    handle = await executor.prepare({
      buildId: `reports-${process.pid.toString(36)}${Date.now().toString(36)}`,
      project: 't/reports',
      branch: 'main',
      image: live!.image,
      services: [],
    });
  }, 120_000);
  afterAll(async () => {
    if (handle) await executor.destroy(handle);
  }, 120_000);

  it('reads the report a failed step wrote, and refuses a link out of the workspace', async () => {
    const sink = new RecordingSink();
    const exit = await runStep(
      executor,
      handle,
      {
        key: 'test/unit',
        stage: 'test',
        step: 'unit',
        image: live!.image,
        commands: [
          'mkdir -p reports',
          `printf '%s' '<testsuite name="s"><testcase classname="c" name="ok"/><testcase classname="c" name="bad"><failure message="boom">trace</failure></testcase></testsuite>' > reports/unit.xml`,
          'ln -s /etc/passwd reports/passwd.xml',
          'exit 1',
        ],
        env: {},
        secrets: {},
        attempt: 1,
      },
      sink,
      new AbortController().signal,
    );
    expect(exit, sink.lines.map((l) => l.text).join('\n')).toEqual({ kind: 'exited', exitCode: 1 });
    const said: string[] = [];
    const result = await readReports(executor, handle, ['reports/*.xml'], {
      limits: DEFAULT_REPORT_LIMITS,
      junit: DEFAULT_JUNIT_LIMITS,
      parser: new ReportParser(),
      say: (text) => said.push(text),
    });
    expect(result.totals).toMatchObject({ tests: 2, failures: 1 });
    expect(result.cases.find((c) => c.name === 'bad')).toMatchObject({
      status: 'failed',
      message: 'boom',
      output: 'trace',
    });
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatch(/^reports\/passwd\.xml: not read: /);
    expect(said).toEqual(result.problems);
  });
});
