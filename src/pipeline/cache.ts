/**
 * The `cache:` key of a step: its key template (with `${hashFiles(...)}` calls, evaluated on
 * the checkout before the build starts), restore-key prefixes and paths, checked here so that
 * every problem points at its line and column.
 */
import type { PipelineError } from './errors.js';
import type { Loc } from './located.js';
import type { PipelineSource } from './source.js';
import type { CacheKeyPart } from './types.js';

/** Longest cache key (and restore-key prefix) after substitution and hashing. */
export const MAX_CACHE_KEY = 256;
/** Most paths one cache may have. */
export const MAX_CACHE_PATHS = 32;

/** What a cache key may consist of once substituted: no spaces, quotes or shell characters. */
export const CACHE_KEY_CHARS = /^[A-Za-z0-9._\-+=:@/]*$/;

/** `${hashFiles('a', "b/**")}` (whitespace allowed around the arguments). */
const FUNCTION_CALL = /\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(([^)]*)\)\s*\}/g;
const QUOTED = /^\s*(?:'([^']*)'|"([^"]*)")\s*$/;

/** A `${name(args)}` in `text`: its place, name and arguments (undefined: not quoted strings). */
interface Call {
  index: number;
  length: number;
  name: string;
  args: string[] | undefined;
}

function calls(text: string): Call[] {
  return [...text.matchAll(FUNCTION_CALL)].map((m) => {
    const raw = m[2]!.trim();
    const pieces = raw === '' ? [] : raw.split(',');
    const args = pieces.map((p) => QUOTED.exec(p)).map((q) => (q ? (q[1] ?? q[2]!) : undefined));
    return {
      index: m.index,
      length: m[0].length,
      name: m[1]!,
      args: args.every((a) => a !== undefined) ? args : undefined,
    };
  });
}

/**
 * Splits a key template into text (for `${NAME}` substitution by `expand`) and hashFiles
 * calls. Reports other functions and malformed calls at `loc`.
 */
export function parseCacheKey(
  src: PipelineSource,
  text: string,
  loc: Loc | undefined,
  expand: (text: string) => string,
  report: (e: PipelineError) => void,
): CacheKeyPart[] {
  const parts: CacheKeyPart[] = [];
  // Problems found so far (by substitution too): a key with one is not checked further.
  let problems = 0;
  const outer = report;
  report = (e) => {
    problems++;
    outer(e);
  };
  const at = (index: number) => (loc ? src.valuePos(loc.node, index) : { line: 1, col: 1 });
  const path = loc?.path ?? '';
  let from = 0;
  const pushText = (t: string) => {
    if (t !== '') parts.push({ text: expand(t) });
  };
  for (const call of calls(text)) {
    pushText(text.slice(from, call.index));
    from = call.index + call.length;
    if (call.name !== 'hashFiles') {
      report(
        src.error(
          'invalid_value',
          at(call.index),
          path,
          `${path}: unknown function "${call.name}" in a cache key; the only one is hashFiles('glob', …)`,
        ),
      );
      continue;
    }
    if (!call.args || call.args.length === 0 || call.args.some((a) => a.trim() === '')) {
      report(
        src.error(
          'invalid_value',
          at(call.index),
          path,
          `${path}: hashFiles takes one or more quoted, non-empty globs, e.g. hashFiles('package-lock.json')`,
        ),
      );
      continue;
    }
    const bad = call.args.find((a) => pathProblem(a) !== undefined);
    if (bad !== undefined) {
      report(
        src.error('invalid_value', at(call.index), path, `${path}: hashFiles('${bad}'): ${pathProblem(bad)}`),
      );
      continue;
    }
    parts.push({ hashFiles: call.args });
  }
  pushText(text.slice(from));
  const literal = parts.map((p) => ('text' in p ? p.text : '')).join('');
  // `${…}` left in: a substitution failed, and said so.
  if (problems > 0 || literal.includes('${')) return parts;
  if (!CACHE_KEY_CHARS.test(literal)) {
    const ch = [...literal].find((c) => !CACHE_KEY_CHARS.test(c)) ?? '';
    report(
      src.error(
        'invalid_value',
        at(0),
        path,
        `${path}: a cache key may only contain letters, digits and . _ - + = : @ /, not ${JSON.stringify(ch)}`,
      ),
    );
  }
  const length = literal.length + 64 * parts.filter((p) => 'hashFiles' in p).length;
  if (length > MAX_CACHE_KEY)
    report(
      src.error(
        'invalid_value',
        at(0),
        path,
        `${path}: a cache key may be at most ${MAX_CACHE_KEY} characters (a hashFiles counts 64), this one is ${length}`,
      ),
    );
  if (parts.length === 0 && calls(text).length === 0)
    report(src.error('invalid_value', at(0), path, `${path}: a cache key must not be empty`));
  return parts;
}

/** Checks one restore-key prefix after substitution. */
export function restoreKeyProblem(prefix: string): string | undefined {
  if (prefix === '') return 'a restore key must not be empty';
  if (/\$\{\s*[A-Za-z_]\w*\s*\(/.test(prefix))
    return 'functions such as hashFiles are only allowed in the key';
  if (prefix.length > MAX_CACHE_KEY) return `a restore key may be at most ${MAX_CACHE_KEY} characters`;
  if (!CACHE_KEY_CHARS.test(prefix))
    return 'a restore key may only contain letters, digits and . _ - + = : @ /';
  return undefined;
}

/**
 * Why a cache path (or hashFiles glob) is refused, or undefined. Paths are relative to the
 * workspace, or to the step's HOME with `~/`; never absolute, never with a `..` segment.
 */
export function pathProblem(path: string, home = false): string | undefined {
  if (path.trim() === '') return 'a path must not be empty';
  let rest = path;
  if (home && (path === '~' || path.startsWith('~/'))) {
    rest = path.slice(2);
    if (rest === '' || rest === '.')
      return 'name a path under HOME ("~/.npm"), not HOME itself: it holds what the step is given too';
  } else if (path.startsWith('~'))
    return home
      ? 'only "~/…" (the step\'s HOME) is understood, not "~user"'
      : '"~" is only allowed in cache paths';
  if (rest.startsWith('/'))
    return 'an absolute path is not allowed: paths are relative to the workspace (or "~/" for HOME)';
  if (rest.split('/').includes('..'))
    return 'a ".." segment is not allowed: a cache stays inside the workspace or HOME';
  if (/[\0\n\r]/.test(rest)) return 'a path must not contain control characters';
  if (home && /[*?[\]{}]/.test(rest)) return 'cache paths are files or directories, not globs';
  return undefined;
}
