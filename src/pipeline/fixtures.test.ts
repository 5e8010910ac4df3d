/**
 * Fixture-driven compiler tests. `fixtures/valid/x.yml` must compile to `x.plan.json` (and
 * warn exactly `x.warnings.txt`, if present); `fixtures/invalid/x.yml` must fail with exactly
 * the lines of `x.errors.txt`. After an intended change of messages or plans, regenerate with
 * `UPDATE_FIXTURES=1 npx vitest run src/pipeline` and review the diff.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePipeline, formatPipelineError, type PipelineError } from './index.js';
import { TEST_CONTEXT } from './testing/context.js';

const dir = join(import.meta.dirname, 'fixtures');
const update = process.env.UPDATE_FIXTURES === '1';

function yamlFiles(sub: string): string[] {
  return readdirSync(join(dir, sub))
    .filter((f) => f.endsWith('.yml'))
    .sort();
}

function compileFixture(sub: string, name: string): ReturnType<typeof compilePipeline> {
  const source = readFileSync(join(dir, sub, name), 'utf8');
  return compilePipeline({ file: `${sub}/${name}`, source, context: TEST_CONTEXT });
}

/** Compares with the expected file, or writes it in update mode. */
function expectFile(path: string, actual: string): void {
  if (update) {
    writeFileSync(path, actual);
    return;
  }
  expect(existsSync(path), `${path} is missing (UPDATE_FIXTURES=1 creates it)`).toBe(true);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

const lines = (errors: PipelineError[]): string => errors.map(formatPipelineError).join('\n') + '\n';

describe('valid fixtures', () => {
  it.each(yamlFiles('valid'))('%s', (name) => {
    const result = compileFixture('valid', name);
    if (!result.ok) expect.fail(lines(result.errors));
    const base = join(dir, 'valid', name.replace(/\.yml$/, ''));
    expectFile(`${base}.plan.json`, JSON.stringify(result.plan, null, 2) + '\n');
    const warnings = `${base}.warnings.txt`;
    if (result.warnings.length > 0 || existsSync(warnings)) expectFile(warnings, lines(result.warnings));
  });
});

describe('invalid fixtures', () => {
  it.each(yamlFiles('invalid'))('%s', (name) => {
    const result = compileFixture('invalid', name);
    if (result.ok) expect.fail('compiled, but errors were expected');
    expectFile(join(dir, 'invalid', name.replace(/\.yml$/, '.errors.txt')), lines(result.errors));
  });

  it('has at least 15 fixtures', () => {
    expect(yamlFiles('invalid').length).toBeGreaterThanOrEqual(15);
  });
});
