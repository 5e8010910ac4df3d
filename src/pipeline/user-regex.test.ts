import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compileUserRegex,
  matchUserRegex,
  MAX_PATTERN_LENGTH,
  MAX_SUBJECT_LENGTH,
  userRegexProblem,
} from './user-regex.js';

const matches = (pattern: string, subject: string): boolean => {
  const result = matchUserRegex(pattern, subject);
  if (!result.ok) throw new Error(result.problem);
  return result.matched;
};

describe('matchUserRegex', () => {
  it.each([
    ['main|release/.*', 'main', true],
    ['main|release/.*', 'release/1.2', true],
    ['main|release/.*', 'mainline', false],
    ['main|release/.*', 'xmain', false],
    ['main|release/.*', 'hotfix/release/1', false],
    ['feature/.+', 'feature/login', true],
    ['feature/.+', 'feature/', false],
    ['[a-z0-9-]+', 'fix-42', true],
    ['[a-z0-9-]+', 'Fix-42', false],
    ['[^/]+', 'a/b', false],
    ['v\\d+\\.\\d+', 'v1.20', true],
    ['release\\/.*', 'release/2', true],
    ['(?<kind>feature|fix)/.*', 'fix/x', true],
    ['(?i)MAIN', 'main', true],
    ['\\p{L}+', 'ünïcode', true],
    ['.*', '', true],
    ['', '', true],
    ['', 'main', false],
  ])('%j on %j → %s (anchored at both ends)', (pattern, subject, expected) => {
    expect(matches(pattern, subject)).toBe(expected);
  });

  it('runs (a+)+ against thirty a and a b at once (JavaScript backtracking took over a minute)', () => {
    const started = performance.now();
    expect(matches('(a+)+', `${'a'.repeat(30)}b`)).toBe(false);
    expect(matches('(a|aa)*c', 'a'.repeat(MAX_SUBJECT_LENGTH))).toBe(false);
    // Generous: a machine at load 8 is slow, but not a minute slow.
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('does not match a subject longer than the bound, and says why', () => {
    const long = 'a'.repeat(MAX_SUBJECT_LENGTH + 1);
    expect(matchUserRegex('a+', long)).toEqual({
      ok: false,
      problem: `${MAX_SUBJECT_LENGTH + 1} characters is longer than the ${MAX_SUBJECT_LENGTH} a pattern is matched against`,
    });
    const compiled = compileUserRegex('a+');
    expect(compiled.ok && compiled.regex.matches(long)).toBe(false);
    expect(matches('a+', 'a'.repeat(MAX_SUBJECT_LENGTH))).toBe(true);
  });
});

describe('userRegexProblem', () => {
  const re2 =
    'patterns use RE2 syntax, which has no backreferences and no lookaround (https://github.com/google/re2/wiki/Syntax)';
  it.each([
    ['(a)\\1', `backreferences (\`\\1\`) are not supported; ${re2}`],
    ['(?<v>x)\\k<v>', `named backreferences (\`\\k<name>\`) are not supported; ${re2}`],
    ['(?=main)m.*', `lookahead (\`(?=…)\`) is not supported; ${re2}`],
    ['(?!wip/).*', `lookahead (\`(?!…)\`) is not supported; ${re2}`],
    ['.*(?<=-ok)', `lookbehind (\`(?<=…)\`) is not supported; ${re2}`],
    ['.*(?<!-wip)', `lookbehind (\`(?<!…)\`) is not supported; ${re2}`],
    ['release/(.*', 'missing closing ): `release/(.*`'],
    ['[a-', 'missing closing ]: `[a-`'],
    // On its own it does not compile; inside `^(?:…)$` it would, and match unanchored.
    ['a)|(b', 'unexpected ): `a)|(b`'],
    ['a**', 'invalid nested repetition operator: `**`'],
    ['a{1001}', 'invalid repeat count: `{1001}` (a count is at most 1000, nested counts multiplied too)'],
  ])('%j: %s', (pattern, problem) => {
    expect(userRegexProblem(pattern)).toBe(problem);
  });

  it('refuses a pattern longer than the bound', () => {
    expect(userRegexProblem('a'.repeat(MAX_PATTERN_LENGTH + 1))).toBe(
      `the pattern is ${MAX_PATTERN_LENGTH + 1} characters long; at most ${MAX_PATTERN_LENGTH} are allowed`,
    );
    expect(userRegexProblem('a'.repeat(MAX_PATTERN_LENGTH))).toBeUndefined();
  });

  it('refuses a pattern whose counted repetitions expand too far, before and after compiling', () => {
    // Estimated too big: never compiled at all.
    expect(userRegexProblem('a{1000}b{1000}c{1000}')).toMatch(
      /^the pattern is too large: it expands to about 3003 /,
    );
    // Under the estimate's slack, over the bound once compiled.
    expect(userRegexProblem('[a-z]{0,800}')).toMatch(
      /^the pattern is too large: it expands to about \d+ instructions, at most 1100/,
    );
    // A long list of literal branch names stays well inside.
    const names = Array.from({ length: 55 }, (_, i) => `release-${i}/hotfix`).join('|');
    expect(names.length).toBeGreaterThan(900);
    expect(userRegexProblem(names)).toBeUndefined();
  });
});

describe('user patterns, fuzzed', () => {
  const atom = fc.constantFrom(
    'a',
    'b',
    '/',
    '.',
    '[a-z]',
    '[^/]',
    '\\d',
    '\\w',
    '\\p{L}',
    '\\',
    '(',
    ')',
    '[',
    '{2}',
  );
  const pattern: fc.Arbitrary<string> = fc.letrec<{ re: string }>((tie) => ({
    re: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      atom,
      fc.tuple(tie('re'), tie('re')).map(([a, b]) => a + b),
      fc.tuple(tie('re'), tie('re')).map(([a, b]) => `${a}|${b}`),
      tie('re').map((a) => `(${a})`),
      fc
        .tuple(tie('re'), fc.constantFrom('*', '+', '?', '*?', '{0,9}', '{3,}', '{40,200}', '{999}'))
        .map(([a, q]) => `(?:${a})${q}`),
      fc.constantFrom('(a)\\1', '(?=a)', '(?<!b)', '\\k<x>'),
    ),
  })).re;
  const subject = fc.string({ unit: fc.constantFrom('a', 'b', '/', '-', '1', 'é', '!'), maxLength: 200 });

  it('gives a clear problem or a result, never throws, and never holds the event loop long', () => {
    let slowest = 0;
    fc.assert(
      fc.property(pattern, fc.array(subject, { minLength: 1, maxLength: 4 }), (p, subjects) => {
        const started = performance.now();
        const compiled = compileUserRegex(p);
        if (compiled.ok) {
          for (const s of subjects) expect(typeof compiled.regex.matches(s)).toBe('boolean');
          // Adversarial for backtracking engines: one letter repeated, then one that breaks it.
          expect(typeof compiled.regex.matches(`${'a'.repeat(199)}!`)).toBe('boolean');
        } else {
          expect(compiled.problem).toMatch(/\S/);
          expect(compiled.problem).not.toMatch(/\n\s+at /);
        }
        slowest = Math.max(slowest, performance.now() - started);
      }),
      { numRuns: 400, interruptAfterTimeLimit: 60_000 },
    );
    // Slowest seen idle is a few tens of milliseconds; generous for a machine at load 8.
    expect(slowest).toBeLessThan(2_000);
  }, 90_000);
});

describe('no RegExp built from user input', () => {
  /**
   * Every `new RegExp(` / `RegExp(` in the server's, CLI's and web UI's code outside tests, with
   * why it is safe. A new one fails here: user input goes through user-regex.ts instead.
   */
  const allowed = new Map<string, string>([
    ['src/server/api/app.ts', 'a constant query parameter name'],
    ['src/server/scheduler/executor-pool.ts', 'a number from configuration'],
    ['src/server/secrets/store.ts', 'SECRET_NAME_PATTERN, a constant'],
    ['src/cli/remote/commit-status-commands.ts', 'SECRET_NAME_PATTERN, a constant (--token-secret)'],
    ['src/pipeline/validate.ts', 'schema patterns, all constants of schema.ts'],
    ['src/pipeline/duration.ts', 'DURATION_PATTERN, a constant'],
    ['src/store/projects.ts', 'SLUG_PATTERN, a constant'],
    [
      'src/executors/kubernetes/testing/stand-in/kubelet/container-config.ts',
      'the image reference grammar, constants (the in-test stand-in kubelet)',
    ],
  ]);
  const root = join(import.meta.dirname, '..', '..');

  function* sources(dir: string): Generator<string> {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist') yield* sources(path);
      } else if (/\.(ts|tsx)$/.test(entry.name) && !/\.test\.tsx?$|\.case\.ts$/.test(entry.name)) yield path;
    }
  }

  it('outside user-regex.ts, only where the pattern is the program own', () => {
    const found = new Set<string>();
    for (const dir of ['src', 'web/src']) {
      for (const path of sources(join(root, dir))) {
        const text = readFileSync(path, 'utf8');
        if (/\bRegExp\s*\(/.test(text)) found.add(relative(root, path));
      }
    }
    const unexpected = [...found].filter((f) => !allowed.has(f) && f !== 'src/pipeline/user-regex.ts');
    expect(unexpected, 'use compileUserRegex/matchUserRegex of src/pipeline/user-regex.ts').toEqual([]);
  });
});
