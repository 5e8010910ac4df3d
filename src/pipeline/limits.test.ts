/**
 * Attacks on the compiler's resources (issue 10): each input once took the server's memory or
 * its event loop; each must now end in a clear, located error, quickly and without building
 * what it asks for. The exact texts of the smaller cases are fixtures in `fixtures/invalid/`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compilePipeline, formatPipelineError } from './index.js';
import { MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUE_CHARS } from './limits.js';
import { TEST_CONTEXT } from './testing/context.js';

function errorsOf(source: string): string[] {
  const result = compilePipeline({ file: 'p.yml', source, context: TEST_CONTEXT });
  return result.ok ? [] : result.errors.map(formatPipelineError);
}

/** Runs `fn` and says how long it kept the thread, and how much the heap grew meanwhile. */
function measure<T>(fn: () => T): { result: T; ms: number; heapGrowth: number } {
  global.gc?.();
  const heap = process.memoryUsage().heapUsed;
  const started = performance.now();
  const result = fn();
  const ms = performance.now() - started;
  // Measured before anything is collected: the peak of what the call kept alive is in it.
  const heapGrowth = process.memoryUsage().heapUsed - heap;
  return { result, ms, heapGrowth };
}

/** The file of the issue: 25 chained doublings, `A1: "${A0}${A0}"` and so on (586 bytes). */
function chain(levels: number): string {
  const lines = ['env:', '  A0: "0123456789abcdef"'];
  for (let i = 1; i <= levels; i++) lines.push(`  A${i}: "\${A${i - 1}}\${A${i - 1}}"`);
  lines.push('steps:', '  - name: boom', `    commands: ["echo \${A${levels}}"]`);
  return lines.join('\n') + '\n';
}

describe('compiler limits against resource attacks', () => {
  it('25 chained doublings (${A0}${A0}) fail at the value that crosses 64 KiB, with bounded memory', () => {
    const { result, ms, heapGrowth } = measure(() => errorsOf(chain(25)));
    expect(result).toEqual([
      `p.yml:15:15: the value of A13 at env.A13 expands to more than 64 KiB at "\${A12}"; a value may be at most 64 KiB (${MAX_VALUE_CHARS} characters) after substitution`,
    ]);
    // Before the limit this took 1.5 GB and ended in "Invalid string length".
    expect(heapGrowth).toBeLessThan(100 * 1024 * 1024);
    expect(ms).toBeLessThan(2_000);
  });

  it('a file over 1 MiB is refused before it is parsed', () => {
    const line = '      - echo hello world this is a line of text\n';
    const source =
      'steps:\n  - name: a\n    commands:\n' + line.repeat(Math.ceil((10 * 1024 * 1024) / line.length));
    const { result, ms } = measure(() => errorsOf(source));
    const bytes = Buffer.byteLength(source);
    expect(result).toEqual([
      `p.yml:1:1: the file is ${bytes} bytes, more than 1 MiB; a pipeline file may be at most 1 MiB (${MAX_FILE_BYTES} bytes)`,
    ]);
    // Parsing it took 8 s.
    expect(ms).toBeLessThan(2_000);
  });

  it('counts the size in UTF-8 bytes, not characters', () => {
    const pad = 'é'.repeat(MAX_FILE_BYTES / 2); // 1 MiB of bytes in half as many characters
    expect(errorsOf(`# ${pad}\nsteps: [{ name: a, commands: [x] }]\n`)[0]).toMatch(
      /^p\.yml:1:1: the file is \d+ bytes, more than 1 MiB;/,
    );
  });

  it.each([
    [
      'lists in lists',
      (n: number) => `steps: [{ name: a, commands: [x], env: { X: ${'['.repeat(n)}${']'.repeat(n)} } }]`,
    ],
    [
      'mappings in mappings',
      (n: number) => `x: ${'{a: '.repeat(n)}1${'}'.repeat(n)}\nsteps: [{ name: a, commands: [x] }]`,
    ],
    [
      'block mappings',
      (n: number) =>
        'x:\n' +
        Array.from({ length: n }, (_, i) => `${' '.repeat(i + 1)}a:`).join('\n') +
        ' 1\nsteps: [{ name: a, commands: [x] }]',
    ],
  ])('thousands of levels of %s: a clear error, quickly', (_, nest) => {
    // 20,000 levels took 8 s; block mappings are indented one more per level, so fewer fit.
    const { result, ms } = measure(() => errorsOf(nest(1000)));
    expect(result).toHaveLength(1);
    expect(result[0]).toMatch(
      new RegExp(
        `^p\\.yml:\\d+:\\d+: mappings and lists nest more than ${MAX_DEPTH} levels deep here; a pipeline file may nest them at most ${MAX_DEPTH} levels deep$`,
      ),
    );
    // It took 8 s and ended in "Maximum call stack size exceeded".
    expect(ms).toBeLessThan(2_000);
  });

  it('nesting up to the limit is fine', () => {
    // The step list, the step and its env are 3 levels, plus the top-level mapping.
    const n = MAX_DEPTH - 4;
    expect(
      errorsOf(`steps: [{ name: a, commands: [x], env: { X: ${'['.repeat(n)}${']'.repeat(n)} } }]`),
    ).toEqual([
      'p.yml:1:45: expected a string, a number, a boolean or a secret reference (e.g. {from_secret: NAME}) at steps[0].env.X, got a list',
    ]);
    expect(
      errorsOf(`steps: [{ name: a, commands: [x], env: { X: ${'['.repeat(n + 1)}${']'.repeat(n + 1)} } }]`),
    ).toEqual([
      `p.yml:1:105: mappings and lists nest more than ${MAX_DEPTH} levels deep here; a pipeline file may nest them at most ${MAX_DEPTH} levels deep`,
    ]);
  });

  it('a file of more than 100,000 values without aliases says so, not that aliases expand it', () => {
    const source = `steps:\n  - name: a\n    commands: [${Array(100_001).fill('x').join(',')}]\n`;
    const errors = errorsOf(source);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      /^p\.yml:3:\d+: too many values at steps\[0\]\.commands\[\d+\]: the file has more than 100000 values$/,
    );
  });

  it('the variable-cycle fixture and `C: ${C}` both say cycle', () => {
    const dir = join(import.meta.dirname, 'fixtures', 'invalid');
    expect(readFileSync(join(dir, 'self-reference.errors.txt'), 'utf8')).toContain(
      'variable cycle: C refers to itself',
    );
    expect(errorsOf('env:\n  C: "${C}"\nsteps: [{ name: a, commands: [x] }]\n')).toEqual([
      'p.yml:2:7: variable cycle: C refers to itself at env.C; "${C}" in the value of C can only extend a C defined further out (a built-in, or an env block around this one), and there is none',
    ]);
  });

  it('a value may still extend an outer one of the same name', () => {
    const result = compilePipeline({
      file: 'p.yml',
      source: 'env:\n  P: /bin\nsteps:\n  - name: a\n    env: { P: "${P}:/x" }\n    commands: [x]\n',
      context: TEST_CONTEXT,
    });
    expect(result.ok && result.plan.stages[0]?.steps[0]?.env.P).toBe('/bin:/x');
  });

  it('a value of exactly 64 KiB is allowed', () => {
    const half = 'x'.repeat(MAX_VALUE_CHARS / 2);
    const result = compilePipeline({
      file: 'p.yml',
      source: `env:\n  H: "${half}"\n  F: "\${H}\${H}"\n  G: "\${F}."\nsteps: [{ name: a, commands: ["echo $F"] }]\n`,
      context: TEST_CONTEXT,
    });
    expect(result.ok ? [] : result.errors.map(formatPipelineError)).toEqual([
      `p.yml:4:11: the value of G at env.G expands to more than 64 KiB here; a value may be at most 64 KiB (${MAX_VALUE_CHARS} characters) after substitution`,
    ]);
    const ok = compilePipeline({
      file: 'p.yml',
      source: `env:\n  H: "${half}"\n  F: "\${H}\${H}"\nsteps: [{ name: a, commands: ["echo $F"] }]\n`,
      context: TEST_CONTEXT,
    });
    expect(ok.ok && ok.plan.env.F?.length).toBe(MAX_VALUE_CHARS);
  });
});
