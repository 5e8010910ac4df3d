import { copyFile, mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalExecutor } from '../executors/local/local-executor.js';
import type { BuildHandle } from '../executors/types.js';
import { DEFAULT_JUNIT_LIMITS } from './junit.js';
import { DEFAULT_REPORT_LIMITS, readReports } from './read.js';
import { ReportParser } from './parse-pool.js';

describe('readReports from a local workspace', () => {
  let tmpRoot: string;
  let executor: LocalExecutor;
  let handle: BuildHandle;
  const said: string[] = [];
  const read = (globs: string[]) =>
    readReports(executor, handle, globs, {
      limits: DEFAULT_REPORT_LIMITS,
      junit: DEFAULT_JUNIT_LIMITS,
      parser: new ReportParser(),
      say: (text) => said.push(text),
    });

  beforeAll(async () => {
    tmpRoot = await mkdtemp(join(tmpdir(), 'slipway-reports-'));
    executor = new LocalExecutor({ tmpRoot });
    handle = await executor.prepare({
      buildId: `reports-${process.pid}`,
      project: 't/reports',
      branch: 'main',
      services: [],
    });
    const ws = handle.workspace;
    await mkdir(join(ws, 'reports/unit'), { recursive: true });
    const fixtures = join(import.meta.dirname, 'fixtures');
    await copyFile(join(fixtures, 'surefire.xml'), join(ws, 'reports/unit/TEST-calc.xml'));
    await copyFile(join(fixtures, 'vitest.xml'), join(ws, 'reports/vitest.xml'));
    await writeFile(join(ws, 'reports/broken.xml'), '<testsuite>\n  <testcase name="a">\n</testsuite>\n');
    // 200 MB that take no disk: refused by their size, never read.
    await writeFile(join(ws, 'reports/huge.xml'), '');
    await truncate(join(ws, 'reports/huge.xml'), 200 * 1024 * 1024);
    await symlink('/etc/passwd', join(ws, 'reports/passwd.xml'));
  });

  afterAll(async () => {
    if (handle) await executor.destroy(handle);
    await rm(tmpRoot, { recursive: true, force: true });
  });

  it('reads what parses, and says why each other file was not', async () => {
    said.length = 0;
    const result = await read(['reports/**/*.xml']);
    expect(result.files).toBe(2);
    expect(result.totals).toEqual({ tests: 8, failures: 2, errors: 1, skipped: 2, timeMs: 1_000_038 });
    expect(result.cases.filter((c) => c.status === 'failed').map((c) => c.name)).toEqual([
      'divides',
      'math > divides',
    ]);
    expect(result.problems).toHaveLength(3);
    expect(result.problems).toContain(
      "reports/broken.xml:3:1: not XML: Expected closing tag 'testcase' (opened in line 2, col 3) instead of closing tag 'testsuite'.",
    );
    expect(result.problems).toContain(
      'reports/huge.xml: not read: 200 MiB is over the limit of 50 MiB per report file',
    );
    expect(result.problems.find((p) => p.startsWith('reports/passwd.xml: not read: '))).toBeDefined();
    expect(said).toEqual(result.problems);
  });

  it('says when nothing matched', async () => {
    const result = await read(['out/*.xml']);
    expect(result).toMatchObject({ files: 0, problems: ['nothing matched "out/*.xml"'] });
  });
});
