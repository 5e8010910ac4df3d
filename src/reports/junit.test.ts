import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_JUNIT_LIMITS, parseJUnit, type ParsedCase } from './junit.js';

const fixture = (name: string) =>
  parseJUnit(readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8'));
const byName = (cases: ParsedCase[], name: string) => cases.find((c) => c.name === name)!;

describe('parseJUnit: what the five producers write', () => {
  it('pytest (xunit1): file, failure with captured stdout, skip with message, error in setup', () => {
    const r = fixture('pytest.xml');
    expect(r.error).toBeUndefined();
    expect(r.totals).toEqual({ tests: 4, failures: 1, errors: 1, skipped: 1, timeMs: 6 });
    const div = byName(r.cases, 'test_div');
    expect(div).toMatchObject({
      suite: 'pytest',
      classname: 'tests.test_math',
      file: 'tests/test_math.py',
      status: 'failed',
      durationMs: 2,
      message: 'ZeroDivisionError: division by zero',
    });
    expect(div.output).toContain('>       assert 1 / 0 == 0');
    expect(div.output).toContain(
      '--- system-out ---\n--------------------------------- Captured stdout call',
    );
    expect(byName(r.cases, 'test_skip')).toMatchObject({
      status: 'skipped',
      message: 'pytest.skip: not on linux',
    });
    expect(byName(r.cases, 'test_query')).toMatchObject({
      status: 'error',
      message: `failed on setup with "fixture 'db' not found"`,
    });
    expect(byName(r.cases, 'test_add')).toEqual({
      suite: 'pytest',
      classname: 'tests.test_math',
      name: 'test_add',
      file: 'tests/test_math.py',
      status: 'passed',
      durationMs: 1,
      flaky: false,
    });
  });

  it('jest-junit: a failure without a message attribute takes its first line', () => {
    const r = fixture('jest-junit.xml');
    expect(r.totals).toEqual({ tests: 3, failures: 1, errors: 0, skipped: 1, timeMs: 7 });
    const div = byName(r.cases, 'math divides');
    expect(div).toMatchObject({
      suite: 'math',
      classname: 'math divides',
      file: '/app/src/math.test.js',
      status: 'failed',
      message: 'Error: expect(received).toBe(expected) // Object.is equality',
    });
    expect(div.output).toContain('at Object.toBe (/app/src/math.test.js:9:17)');
    expect(byName(r.cases, 'math skips').status).toBe('skipped');
  });

  it('gotestsum: subtests, numeric character references, a skip whose message is the output', () => {
    const r = fixture('gotestsum.xml');
    expect(r.totals).toEqual({ tests: 4, failures: 2, errors: 0, skipped: 1, timeMs: 10 });
    const sub = byName(r.cases, 'TestDiv/by_zero');
    expect(sub).toMatchObject({
      suite: 'example.com/calc',
      classname: 'example.com/calc',
      message: 'Failed',
    });
    expect(sub.output).toBe(
      '=== RUN   TestDiv/by_zero\n    calc_test.go:21: got 0, want error\n--- FAIL: TestDiv/by_zero (0.00s)',
    );
    expect(byName(r.cases, 'TestSkip').message).toContain('calc_test.go:30: needs network');
  });

  it('Surefire: CDATA, reruns that all failed, a flaky pass, errors, times with thousands separators', () => {
    const r = fixture('surefire.xml');
    expect(r.totals).toEqual({ tests: 5, failures: 1, errors: 1, skipped: 1, timeMs: 1_000_035 });
    const div = byName(r.cases, 'divides');
    expect(div).toMatchObject({
      suite: 'com.acme.CalcTest',
      status: 'failed',
      flaky: false,
      message: 'org.opentest4j.AssertionFailedError: expected: <2> but was: <3>',
    });
    expect(div.output).toContain('--- rerun 1 ---');
    expect(div.output).toContain('dividing 6 by 2 again');
    expect(div.output).toContain('--- system-out ---\ndividing 6 by 2');
    expect(byName(r.cases, 'connects')).toMatchObject({
      status: 'passed',
      flaky: true,
      durationMs: 1_000_020,
      message: 'java.net.ConnectException: Connection refused',
    });
    expect(byName(r.cases, 'reads')).toMatchObject({
      status: 'error',
      message: 'java.io.FileNotFoundException: /tmp/x (No such file or directory)',
    });
  });

  it('Vitest: entities in names, message with its type, per-case output', () => {
    const r = fixture('vitest.xml');
    expect(r.totals).toEqual({ tests: 3, failures: 1, errors: 0, skipped: 1, timeMs: 3 });
    const div = byName(r.cases, 'math > divides');
    expect(div).toMatchObject({
      suite: 'src/math.test.ts',
      message: 'AssertionError: expected 3 to be 2 // Object.is equality',
    });
    expect(div.output).toMatch(
      /^AssertionError: expected 3 to be 2[^]*❯ src\/math.test.ts:9:17\n--- system-out ---\ndividing$/,
    );
  });

  it('nested suites, cases directly in <testsuites>, suite output given to its failed cases', () => {
    const r =
      parseJUnit(`<testsuites><testcase name="top"/><testsuite name="outer"><system-err>boom</system-err>
      <testsuite name="inner"><testcase classname="c" name="deep"><failure message="no"/></testcase></testsuite>
      <testsuites><testsuite name="again"><testcase name="x"/></testsuite></testsuites></testsuite></testsuites>`);
    // Grouped by element kind, not in document order: the object parser keeps no order between them.
    expect(r.cases.map((c) => [c.suite, c.name])).toEqual([
      ['inner', 'deep'],
      ['again', 'x'],
      ['', 'top'],
    ]);
    expect(byName(r.cases, 'deep').output).toBe('--- suite system-err ---\nboom');
  });
});

describe('parseJUnit: bad and hostile input', () => {
  it('not XML: an error with line and column, no cases', () => {
    const notXml = parseJUnit('this is not xml');
    expect(notXml.cases).toEqual([]);
    expect(notXml.error).toMatch(/^1:1: not XML: /);
    expect(parseJUnit('<testsuite>\n  <testcase name="a">\n</testsuite>').error).toMatch(
      /^3:\d+: not XML: Expected closing tag 'testcase'/,
    );
  });

  it('XML that is not JUnit says what root it expected', () => {
    expect(parseJUnit('<html><body/></html>').error).toBe(
      'expected <testsuites> or <testsuite> as the root element, found <html>',
    );
  });

  it('an external entity (XXE) is refused, never resolved', () => {
    const r = parseJUnit(
      '<?xml version="1.0"?><!DOCTYPE t [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><testsuite><testcase name="&xxe;"/></testsuite>',
    );
    expect(r.error).toMatch(/^not accepted: .*external entit/i);
    expect(JSON.stringify(r)).not.toContain('root:');
  });

  it('billion laughs: nested entities are not expanded, the result stays small', () => {
    let doctype = '<!ENTITY l0 "lollollollollollollollollollol">';
    for (let i = 1; i < 10; i++) doctype += `<!ENTITY l${i} "${`&l${i - 1};`.repeat(10)}">`;
    const r = parseJUnit(
      `<?xml version="1.0"?><!DOCTYPE t [${doctype}]><testsuite><testcase name="&l9;"/></testsuite>`,
    );
    expect(JSON.stringify(r).length).toBeLessThan(10_000);
  });

  it('many built-in and numeric references are not bounded like declared entities', () => {
    const trace = '&lt;init&gt;&#10;'.repeat(20_000);
    const r = parseJUnit(
      `<testsuite><testcase name="t"><failure message="m">${trace}</failure></testcase></testsuite>`,
    );
    expect(r.error).toBeUndefined();
    expect(r.cases[0]!.output).toMatch(/^<init>\n<init>\n/);
  });

  it('deep nesting is refused with a clear error', () => {
    const depth = 5000;
    const r = parseJUnit(`${'<testsuite>'.repeat(depth)}<testcase name="x"/>${'</testsuite>'.repeat(depth)}`);
    expect(r.error).toMatch(/^not accepted: .*nest/i);
  });

  it('bounds cases, messages, output and names, and says what it cut', () => {
    const long = 'x'.repeat(DEFAULT_JUNIT_LIMITS.maxOutputChars + 10);
    const cases = Array.from(
      { length: 5 },
      (_, i) => `<testcase name="t${i}"><failure message="${'m'.repeat(5000)}">${long}</failure></testcase>`,
    );
    const r = parseJUnit(`<testsuite>${cases.join('')}</testsuite>`, {
      ...DEFAULT_JUNIT_LIMITS,
      maxCases: 3,
    });
    expect(r.totals.failures).toBe(5);
    expect(r.cases).toHaveLength(3);
    expect(r.dropped).toBe(2);
    expect(r.cases[0]!.message!.length).toBeLessThan(DEFAULT_JUNIT_LIMITS.maxMessageChars + 100);
    expect(r.cases[0]!.output).toMatch(/\n… cut: 10 more characters$/);
    expect(r.notes).toEqual([
      '2 test cases not kept: at most 3 are kept of one file',
      '3 messages cut at 4096 characters',
      '3 outputs cut at 65536 characters',
    ]);
  });
});
