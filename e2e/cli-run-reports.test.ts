import { describe, expect, it } from 'vitest';
import { runCli, workdir } from './cli-helpers.js';

/** A failing test run that writes its JUnit report, as a test step does. */
const REPORT = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<testsuites>',
  '  <testsuite name="math" tests="3" failures="1" errors="0" skipped="1">',
  '    <testcase classname="math" name="adds" time="0.01"/>',
  '    <testcase classname="math" name="divides" time="0.02">',
  '      <failure message="expected 2 to be 3">AssertionError: expected 2 to be 3\n    at divides (math.test.js:9:5)</failure>',
  '    </testcase>',
  '    <testcase classname="math" name="later"><skipped/></testcase>',
  '  </testsuite>',
  '</testsuites>',
].join('\n');

const PIPELINE = [
  'steps:',
  '  - name: test',
  '    reports: { junit: "reports/*.xml" }',
  '    commands:',
  '      - mkdir -p reports && cp fixture.xml reports/junit.xml',
  '      - exit 1',
  '  - name: lint',
  '    reports: { junit: "missing/*.xml" }',
  '    commands: [echo linted]',
  '',
].join('\n');

describe('slipway run: test reports', () => {
  it('prints the totals and each failed test with its message, and says when no report matched', async () => {
    const dir = await workdir({ '.slipway.yml': PIPELINE, 'fixture.xml': REPORT });
    const result = await runCli(['run', '--executor', 'local', '--project', 'acme/web'], { cwd: dir });
    expect(result.stdout).toContain(
      '--- default/test reports: 3 tests: 1 passed, 1 failed, 1 skipped (1 file)',
    );
    expect(result.stdout).toContain('--- default/test reports: failed: math › divides: expected 2 to be 3');
    expect(result.stdout).toContain('--- default/lint reports: nothing matched "missing/*.xml"');
    expect(result.code).toBe(1);
  });
});
