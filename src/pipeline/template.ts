/**
 * `${NAME}` substitution in one string, independent of where the names come from.
 *
 * - `${NAME}` is replaced by what `lookup` finds (letters, digits and `_`, not starting
 *   with a digit);
 * - `$${NAME}` becomes the literal text `${NAME}`, left to the shell;
 * - `$NAME` and `$$` (the shell's PID) are left alone;
 * - any other `${…}` (`${A:-b}`, `${}`, a missing `}`) is a problem, not silently passed on,
 *   so that a typo never reaches the shell as an empty string.
 */

/** What a name stands for, as far as the caller knows. */
export type Resolution =
  | { kind: 'value'; value: string }
  | { kind: 'unknown' }
  /** Defined by `from_secret`: no value until run time. */
  | { kind: 'secret' }
  /** Resolving it needs itself; `chain` is the loop, e.g. [A, B, A]. */
  | { kind: 'cycle'; chain: string[] };

/** Resolves one name; called once per reference. */
export type Lookup = (name: string) => Resolution;

/** A `${…}` that could not be replaced, with its place in the input string. */
export interface TemplateProblem {
  /** `too_long`: the result would pass `maxLength` at `index` (`text` is the reference, or empty for plain text). */
  kind: 'unknown' | 'secret' | 'cycle' | 'invalid' | 'too_long';
  /** Index of the `$` in the input string. */
  index: number;
  /** The reference as written, e.g. `${FOO}`. */
  text: string;
  name: string;
  chain?: string[];
}

/** What `${…}` may contain: a POSIX variable name. */
export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `${matrix.node}`: a value of a matrix cell (its keys may have `-`, as in GitHub Actions). */
export const MATRIX_REFERENCE = /^matrix\.[A-Za-z_][A-Za-z0-9_-]*$/;

/**
 * Replaces the references in `text`; unresolved ones stay as written and are listed in `problems`.
 * Stops with a `too_long` problem before the result would pass `maxLength` characters: chained
 * references double a value per level, and 25 levels once took the server to 1.85 GB.
 */
export function substitute(
  text: string,
  lookup: Lookup,
  maxLength = Infinity,
): { value: string; problems: TemplateProblem[] } {
  const problems: TemplateProblem[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c !== '$' || (next !== '$' && next !== '{')) {
      // Plain text up to the next `$` in one piece.
      const dollar = text.indexOf('$', i + 1);
      const end = dollar < 0 ? text.length : dollar;
      if (out.length + (end - i) > maxLength) {
        problems.push({ kind: 'too_long', index: i + maxLength - out.length, text: '', name: '' });
        return { value: out, problems };
      }
      out += text.slice(i, end);
      i = end;
    } else if (next === '$') {
      // `$${` → `${` (the rest is copied as it is); a lone `$$` stays `$$` for the shell.
      const kept = text[i + 2] === '{' ? '$' : '$$';
      if (out.length + kept.length > maxLength) {
        problems.push({ kind: 'too_long', index: i, text: '', name: '' });
        return { value: out, problems };
      }
      out += kept;
      i += 2;
    } else {
      const close = text.indexOf('}', i + 2);
      const end = close < 0 ? text.length : close + 1;
      const ref = text.slice(i, end);
      const name = close < 0 ? text.slice(i + 2) : text.slice(i + 2, close);
      const wellFormed = VARIABLE_NAME.test(name) || MATRIX_REFERENCE.test(name);
      const found = close >= 0 && wellFormed ? lookup(name) : undefined;
      const added = found?.kind === 'value' ? found.value.length : ref.length;
      if (out.length + added > maxLength) {
        problems.push({ kind: 'too_long', index: i, text: found?.kind === 'value' ? ref : '', name });
        return { value: out, problems };
      } else if (found?.kind === 'value') {
        out += found.value;
      } else {
        const chain = found?.kind === 'cycle' ? { chain: found.chain } : {};
        problems.push({ kind: found?.kind ?? 'invalid', index: i, text: ref, name, ...chain });
        out += ref;
      }
      i = end;
    }
  }
  return { value: out, problems };
}
