/**
 * Regular expressions written by users: a pipeline's `when.branch`, a project's branch filter,
 * a build-scripts descriptor's `branches`. Every one of them is checked and matched here, and
 * nowhere else (a test in user-regex.test.ts fails when other code builds a RegExp at run time).
 *
 * JavaScript's RegExp backtracks: `(a+)+` against thirty `a` and a `b` held the event loop for
 * over a minute. These patterns run on RE2 instead, through `re2js`, a pure-JS port: matching
 * takes time linear in the subject for a given program. `re2js` rather than the `re2` native
 * binding because the binding's current releases need Node 22 (Slipway supports Node 20.19)
 * and a native build; a pure-JS engine installs anywhere `npm ci` does.
 *
 * "Linear" has a factor, the size of the compiled program, and compiling costs in proportion to
 * it too: `(?:[a-z]{0,200}){0,1}` five times is 110 characters, 2,000 instructions, and hundreds
 * of milliseconds against a long subject. So three bounds make every call short whatever the
 * input: the pattern's length, its size with counted repetitions expanded (estimated before
 * compiling, checked again after), and the length of the subject.
 */
import type { RE2JS } from 're2js';
import { re2js } from './re2.js';

/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_LENGTH = 1_000;
/**
 * Largest compiled program accepted, in RE2 instructions. Real branch filters are a few dozen
 * (`main|release/.*` is 20) and a pattern without counts compiles to about one per character,
 * so a little over the longest pattern; the bound is there for `x{1000}`-style blow-ups.
 */
export const MAX_PROGRAM_SIZE = 1_100;
/**
 * Longest subject matched, in characters: the server's limit on a branch name (webhooks and the
 * API take at most 255). Git allows longer refs; a longer subject never matches
 * (`matchUserRegex` says why) instead of costing more time. With the bounds above, fuzzing
 * 3,000 patterns found no match slower than 0.3 s, nor compile slower than 0.2 s, on 2 cores at load 18.
 */
export const MAX_SUBJECT_LENGTH = 255;

/** A pattern that passed `compileUserRegex`; matches whole subjects only. */
export interface UserRegex {
  /** The pattern as the user wrote it. */
  readonly source: string;
  /** Whether the whole subject matches (the pattern is anchored at both ends). */
  matches(subject: string): boolean;
}

export type UserRegexResult = { ok: true; regex: UserRegex } | { ok: false; problem: string };

/** The outcome of matching: a clear `problem` when the pattern cannot be used or the subject is too long. */
export type UserMatch = { ok: true; matched: boolean } | { ok: false; problem: string };

/** What users write in place of RE2's syntax, and where RE2 has no equivalent at all. */
const SUPPORTED =
  'patterns use RE2 syntax, which has no backreferences and no lookaround (https://github.com/google/re2/wiki/Syntax)';

/**
 * Compiles a pattern as it will be matched: anchored at both ends, `^(?:pattern)$`. Returns why
 * it cannot be used instead of throwing: a syntax error, a construct RE2 does not support
 * (backreferences, lookahead, lookbehind) named as such, or a size beyond the bounds above.
 */
export function compileUserRegex(pattern: string): UserRegexResult {
  const cached = cache.get(pattern);
  if (cached !== undefined) return cached;
  const result = compile(pattern);
  if (cache.size >= CACHE_SIZE) {
    const oldest = cache.keys().next();
    if (oldest.done !== true) cache.delete(oldest.value);
  }
  cache.set(pattern, result);
  return result;
}

/** Why a pattern cannot be used, or undefined when it can: for validating input where it is set. */
export function userRegexProblem(pattern: string): string | undefined {
  const result = compileUserRegex(pattern);
  return result.ok ? undefined : result.problem;
}

/** Matches a whole subject against a user pattern; never throws. */
export function matchUserRegex(pattern: string, subject: string): UserMatch {
  const result = compileUserRegex(pattern);
  if (!result.ok) return result;
  if (subject.length > MAX_SUBJECT_LENGTH) {
    return {
      ok: false,
      problem: `${subject.length} characters is longer than the ${MAX_SUBJECT_LENGTH} a pattern is matched against`,
    };
  }
  return { ok: true, matched: result.regex.matches(subject) };
}

/** Compiled patterns by source: a branch filter is matched on every push, `when.branch` per stage. */
const cache = new Map<string, UserRegexResult>();
const CACHE_SIZE = 256;

function compile(pattern: string): UserRegexResult {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return {
      ok: false,
      problem: `the pattern is ${pattern.length} characters long; at most ${MAX_PATTERN_LENGTH} are allowed`,
    };
  }
  const tooBig = (size: number): UserRegexResult => ({
    ok: false,
    problem: `the pattern is too large: it expands to about ${size} instructions, at most ${MAX_PROGRAM_SIZE} are allowed (use smaller counts in {n,m})`,
  });
  const estimate = expandedSize(pattern);
  if (estimate > MAX_PROGRAM_SIZE * ESTIMATE_SLACK) return tooBig(estimate);
  let re: RE2JS;
  try {
    // On its own first: `a)|(b` must not close the anchoring group and match unanchored.
    const { RE2JS } = re2js();
    RE2JS.compile(pattern);
    re = RE2JS.compile(`^(?:${pattern})$`);
  } catch (error) {
    return { ok: false, problem: explain(error) };
  }
  const size = re.programSize();
  if (size > MAX_PROGRAM_SIZE) return tooBig(size);
  return {
    ok: true,
    regex: {
      source: pattern,
      // testExact asks for no submatches, which lets re2js use its DFA.
      matches: (subject) => subject.length <= MAX_SUBJECT_LENGTH && re.testExact(subject),
    },
  };
}

/** The RE2 error in plain words, naming the JavaScript construct RE2 does not have. */
function explain(error: unknown): string {
  const { RE2JSException, RE2JSSyntaxException } = re2js();
  if (!(error instanceof RE2JSException)) return error instanceof Error ? error.message : String(error);
  if (error instanceof RE2JSSyntaxException) {
    const at = error.input ?? '';
    if (/^\\[1-9]/.test(at)) return `backreferences (\`${at.slice(0, 2)}\`) are not supported; ${SUPPORTED}`;
    if (at.startsWith('\\k')) return `named backreferences (\`\\k<name>\`) are not supported; ${SUPPORTED}`;
    if (at.startsWith('(?=') || at.startsWith('(?!'))
      return `lookahead (\`${at.slice(0, 3)}…)\`) is not supported; ${SUPPORTED}`;
    if (at.startsWith('(?<=') || at.startsWith('(?<!'))
      return `lookbehind (\`${at.slice(0, 4)}…)\`) is not supported; ${SUPPORTED}`;
    const near = at === '' ? '' : `: \`${at.length > 40 ? `${at.slice(0, 40)}…` : at}\``;
    if (error.error === 'invalid repeat count')
      return `${error.error}${near} (a count is at most 1000, nested counts multiplied too)`;
    return `${error.error}${near}`;
  }
  return error.message.replace(/^error parsing regexp: /, '');
}

/**
 * How far the estimate may exceed the bound before the pattern is refused without compiling:
 * the estimate counts a little differently from RE2 (a class is one, a capture adds two), and
 * the exact check after compiling is what decides near the bound.
 */
const ESTIMATE_SLACK = 2;

/**
 * The size of a pattern with its counted repetitions expanded, as RE2 will expand them:
 * `(ab){3}` is about three times `(ab)`. Read from the text without parsing it properly: it only
 * has to keep a pattern that would compile to a huge program from being compiled at all.
 */
export function expandedSize(pattern: string): number {
  interface Frame {
    size: number;
    /** Size of the last atom, which a following quantifier repeats. */
    last: number;
  }
  const stack: Frame[] = [];
  let cur: Frame = { size: 0, last: 0 };
  const atom = (size: number) => {
    cur.size += size;
    cur.last = size;
  };
  const n = pattern.length;
  let i = 0;
  while (i < n) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === 'Q') {
        const end = pattern.indexOf('\\E', i + 2);
        const stop = end < 0 ? n : end;
        cur.size += stop - (i + 2);
        cur.last = 1;
        i = end < 0 ? n : end + 2;
        continue;
      }
      if ((next === 'p' || next === 'P' || next === 'x') && pattern[i + 2] === '{') {
        const end = pattern.indexOf('}', i);
        i = end < 0 ? n : end + 1;
      } else i += 2;
      atom(1);
    } else if (c === '[') {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      while (j < n && pattern[j] !== ']') {
        if (pattern[j] === '\\') j += 2;
        else if (pattern.startsWith('[:', j)) {
          const end = pattern.indexOf(':]', j + 2);
          j = end < 0 ? j + 1 : end + 2;
        } else j++;
      }
      i = j + 1;
      atom(1);
    } else if (c === '(') {
      stack.push(cur);
      cur = { size: 0, last: 0 };
      i++;
    } else if (c === ')') {
      const inner = cur.size + 2;
      cur = stack.pop() ?? { size: 0, last: 0 };
      atom(inner);
      i++;
    } else if (c === '|') {
      cur.size += 1;
      cur.last = 0;
      i++;
    } else if (c === '*' || c === '+' || c === '?') {
      cur.size += 1;
      i++;
    } else if (c === '{') {
      const m = /^\{(\d{1,7})(,(\d{0,7}))?\}/.exec(pattern.slice(i, i + 20));
      if (m === null) {
        atom(1);
        i++;
        continue;
      }
      const min = Number(m[1]);
      const count = m[2] === undefined ? min : m[3] === '' ? min + 1 : Math.max(min, Number(m[3]));
      cur.size += cur.last * (Math.max(count, 1) - 1) + 1;
      cur.last *= Math.max(count, 1);
      i += m[0].length;
    } else {
      atom(1);
      i++;
    }
  }
  let size = cur.size;
  while (stack.length > 0) size += stack.pop()!.size;
  return size;
}
