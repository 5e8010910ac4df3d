/**
 * Property-based fuzzing of the compiler (issue 10): random YAML-ish text and random mutations
 * of the valid fixtures must give a plan or a list of located errors, never a throw, and no
 * single compile may hold the thread long. Bounded in runs and in time.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePipeline, type CompileResult } from './index.js';
import { TEST_CONTEXT } from './testing/context.js';

/** Per compile; the inputs are small, so this is far above what any takes even at load 8. */
const MAX_COMPILE_MS = 2_000;

const validDir = join(import.meta.dirname, 'fixtures', 'valid');
const fixtures = readdirSync(validDir)
  .filter((f) => f.endsWith('.yml'))
  .map((f) => readFileSync(join(validDir, f), 'utf8'));

/** Pieces that make up pipeline files, and the ones that break them. */
const PIECES = [
  'steps:',
  'stages:',
  'services:',
  'env:',
  'image: busybox',
  '- ',
  'name: a',
  'name: b',
  'commands:',
  'needs: [a]',
  'when:',
  'branch: main',
  'timeout: 5m',
  'retries: 2',
  'approval: true',
  '[',
  ']',
  '{',
  '}',
  ',',
  ':',
  '? ',
  '"',
  "'",
  '|',
  '>-',
  '#',
  '&a ',
  '*a',
  '<<: *a',
  '!!str ',
  '!tag ',
  '---',
  '...',
  '${A}',
  '${A}${A}',
  '${',
  '$${A}',
  '$$',
  '${A-B}',
  'A: ${B}',
  'B: ${A}',
  'C: "${C}"',
  'from_secret: s',
  '\\u',
  '\t',
  '\n',
  '\n  ',
  '\n    ',
  '  ',
  'x',
  '0',
  'true',
  'null',
  '~',
  '1e9',
  '__proto__: 1',
  'constructor:',
  '\u00e9',
  '\ud83d',
  '\r\n',
];

const yamlish = fc.array(fc.constantFrom(...PIECES), { maxLength: 80 }).map((p) => p.join(''));

/** One edit of a text: cut a span, insert a piece, repeat a line or swap two lines. */
const mutation = fc.oneof(
  fc.tuple(fc.nat(), fc.nat({ max: 40 })).map(([at, n]) => (t: string) => {
    const i = at % (t.length + 1);
    return t.slice(0, i) + t.slice(i + n);
  }),
  fc.tuple(fc.nat(), fc.constantFrom(...PIECES)).map(([at, piece]) => (t: string) => {
    const i = at % (t.length + 1);
    return t.slice(0, i) + piece + t.slice(i);
  }),
  fc.tuple(fc.nat(), fc.nat({ max: 5 })).map(([at, times]) => (t: string) => {
    const lines = t.split('\n');
    const i = at % lines.length;
    lines.splice(i, 0, ...Array<string>(times).fill(lines[i] ?? ''));
    return lines.join('\n');
  }),
  fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => (t: string) => {
    const lines = t.split('\n');
    const i = a % lines.length;
    const j = b % lines.length;
    [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
    return lines.join('\n');
  }),
);

const mutated = fc
  .tuple(fc.constantFrom(...fixtures), fc.array(mutation, { minLength: 1, maxLength: 6 }))
  .map(([text, edits]) => edits.reduce((t, edit) => edit(t), text));

let slowest = 0;

/** Compiles and checks the property: a plan or located errors, no throw, quickly. */
function compileChecked(source: string): CompileResult {
  const started = performance.now();
  const result = compilePipeline({ file: 'fuzz.yml', source, context: TEST_CONTEXT });
  const ms = performance.now() - started;
  slowest = Math.max(slowest, ms);
  expect(ms, `compile took ${Math.round(ms)} ms`).toBeLessThan(MAX_COMPILE_MS);
  if (result.ok) {
    expect(result.plan.stages.length).toBeGreaterThan(0);
  } else {
    expect(result.errors.length).toBeGreaterThan(0);
    for (const e of result.errors) {
      expect(e.line).toBeGreaterThanOrEqual(1);
      expect(e.col).toBeGreaterThanOrEqual(1);
      expect(e.message.length).toBeGreaterThan(0);
      // A clear error for people: never a stack trace or an internal failure.
      expect(e.message).not.toMatch(/\n\s+at |Maximum call stack|Invalid string length|undefined is not/);
    }
  }
  return result;
}

describe('compiler fuzzing: a plan or located errors, never a throw, never long', () => {
  const options = { numRuns: 400, interruptAfterTimeLimit: 60_000, markInterruptAsFailure: false };

  it('random YAML-ish text', () => {
    fc.assert(
      fc.property(yamlish, (source) => void compileChecked(source)),
      options,
    );
  }, 120_000);

  it('random mutations of the valid fixtures', () => {
    fc.assert(
      fc.property(mutated, (source) => void compileChecked(source)),
      options,
    );
    // For the record when it grows: `npx vitest run src/pipeline/compile.fuzz.test.ts`.
    console.log(`slowest fuzzed compile: ${Math.round(slowest)} ms`);
  }, 120_000);
});
