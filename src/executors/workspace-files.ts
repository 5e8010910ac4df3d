/**
 * Which workspace files a step's `artifacts:` patterns select, shared by every executor's
 * `collectFiles` so that the same pattern picks the same files everywhere.
 *
 * Patterns are workspace-relative globs: `*` and `?` within one path segment, `**` across
 * segments, `[abc]` / `[!abc]` classes, `{a,b}` alternatives, `\` escapes. A pattern that
 * matches a directory takes everything below it (`dist` = `dist/**`). Absolute patterns and
 * `..` segments are refused: an artifact never comes from outside the workspace.
 */
import { posix } from 'node:path';
import { re2js } from '../pipeline/re2.js';

export interface PatternProblem {
  pattern: string;
  reason: string;
}

export interface ArtifactPatterns {
  /** The patterns as given (index = the `patternIndex` of matches). */
  readonly patterns: readonly string[];
  /**
   * Index of the first pattern that matches `path` or one of its parent directories, or -1.
   * `path` is workspace-relative with `/` separators.
   */
  match(path: string): number;
  /**
   * First path segments the patterns can reach, or undefined when a pattern starts with a
   * wildcard (then only the whole workspace will do). Executors that must fetch the workspace
   * in pieces (the docker volume) fetch just these.
   */
  readonly topLevel: readonly string[] | undefined;
  /**
   * Per (brace-expanded) pattern: its leading wildcard-free segments (`dist/js` of
   * `dist/js/*.js`, all of `dist/app.tgz`) and of those the ones that must be directories
   * for it to match anything (`dist/js`, resp. `dist`).
   */
  readonly literalPrefixes: readonly { index: number; prefix: string; dirs: string }[];
  /** Patterns that can only match below `path`, i.e. need it to be a directory on their way. */
  through(path: string): number[];
}

const MAX_EXPANSIONS = 256;

/** Compiles patterns; the ones that cannot be used come back as problems, with the reason. */
export function compileArtifactPatterns(patterns: readonly string[]): {
  set: ArtifactPatterns;
  problems: PatternProblem[];
} {
  const problems: PatternProblem[] = [];
  const compiled: { index: number; regex: PathMatcher; prefix: string; dirs: string }[] = [];
  patterns.forEach((pattern, index) => {
    const normalized = normalizePattern(pattern);
    if ('reason' in normalized) {
      problems.push({ pattern, reason: normalized.reason });
      return;
    }
    const expanded = expandBraces(normalized.pattern);
    if (expanded === undefined) {
      problems.push({ pattern, reason: `it expands to more than ${MAX_EXPANSIONS} patterns` });
      return;
    }
    for (const variant of expanded) {
      const again = normalizePattern(variant);
      if ('reason' in again) {
        problems.push({ pattern, reason: again.reason });
        return;
      }
      const prefix = literalPrefix(again.pattern);
      const dirs = prefix === again.pattern ? posix.dirname(prefix).replace(/^\.$/, '') : prefix;
      compiled.push({ index, regex: globRegex(again.pattern), prefix, dirs });
    }
  });
  const tops = new Set<string>();
  let everything = false;
  for (const c of compiled) {
    if (c.prefix === '') everything = true;
    else tops.add(c.prefix.split('/')[0]!);
  }
  const set: ArtifactPatterns = {
    patterns,
    topLevel: everything ? undefined : [...tops].sort(),
    literalPrefixes: compiled.map((c) => ({ index: c.index, prefix: c.prefix, dirs: c.dirs })),
    match(path) {
      for (let candidate = path; ;) {
        const hit = compiled.find((c) => c.regex.test(candidate));
        if (hit) return hit.index;
        const parent = posix.dirname(candidate);
        if (parent === candidate || parent === '.' || parent === '') return -1;
        candidate = parent;
      }
    },
    through(path) {
      return [
        ...new Set(
          compiled.filter((c) => c.dirs === path || c.dirs.startsWith(`${path}/`)).map((c) => c.index),
        ),
      ];
    },
  };
  return { set, problems };
}

/**
 * `./dist//app.tgz/` → `dist/app.tgz`; refuses what would leave the workspace or name all of it.
 */
export function normalizePattern(pattern: string): { pattern: string } | { reason: string } {
  if (pattern.trim() === '') return { reason: 'it is empty' };
  if (pattern.includes('\0')) return { reason: 'it contains a NUL character' };
  if (pattern.startsWith('/') || /^[A-Za-z]:[\\/]/.test(pattern)) {
    return { reason: 'it is an absolute path; artifacts are paths relative to the workspace' };
  }
  const segments = pattern.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) return { reason: 'it contains ".." and would leave the workspace' };
  if (segments.length === 0) return { reason: 'it names the whole workspace; use "**" to mean every file' };
  return { pattern: segments.join('/') };
}

/**
 * Whether a path found in a workspace is one an artifact may have: relative, `/`-separated,
 * without empty, `.` or `..` segments, backslashes or NULs (also what blob keys allow).
 */
export function artifactPathProblem(path: string): string | undefined {
  if (path === '') return 'the path is empty';
  if (path.startsWith('/')) return 'the path is absolute';
  if (path.includes('\0')) return 'the path contains a NUL character';
  if (path.includes('\\')) return 'the path contains a backslash';
  if (path.split('/').some((s) => s === '' || s === '.' || s === '..'))
    return 'the path has an empty, "." or ".." segment';
  return undefined;
}

/**
 * Where a symlink at `linkPath` points, as a workspace-relative path resolved lexically
 * (symlinks along the way are not followed here); undefined when it points outside the
 * workspace. `mount` is where the workspace is mounted, for absolute targets.
 */
export function resolveLinkTarget(linkPath: string, target: string, mount: string): string | undefined {
  let resolved: string;
  if (target.startsWith('/')) {
    const root = mount.replace(/\/+$/, '');
    const normalized = posix.normalize(target);
    if (normalized === root) return '';
    if (!normalized.startsWith(`${root}/`)) return undefined;
    resolved = normalized.slice(root.length + 1);
  } else {
    resolved = posix.normalize(posix.join(posix.dirname(linkPath), target));
  }
  if (resolved === '..' || resolved.startsWith('../')) return undefined;
  return resolved === '.' ? '' : resolved.replace(/\/+$/, '');
}

function literalPrefix(pattern: string): string {
  const segments = pattern.split('/');
  const literal: string[] = [];
  for (const segment of segments) {
    if (/[*?[{\\]/.test(segment)) break;
    literal.push(segment);
  }
  return literal.join('/');
}

/** `a{b,c{d,e}}` → `ab`, `acd`, `ace`; undefined past {@link MAX_EXPANSIONS}. */
function expandBraces(pattern: string): string[] | undefined {
  const out: string[] = [];
  const queue = [pattern];
  while (queue.length > 0) {
    const current = queue.shift()!;
    const group = firstBraceGroup(current);
    if (group === undefined) {
      out.push(current);
    } else {
      const before = current.slice(0, group.start);
      const after = current.slice(group.end + 1);
      for (const option of group.options) queue.push(before + option + after);
    }
    if (out.length + queue.length > MAX_EXPANSIONS) return undefined;
  }
  return out;
}

function firstBraceGroup(text: string): { start: number; end: number; options: string[] } | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      i++;
      continue;
    }
    if (c !== '{') continue;
    let depth = 0;
    const options: string[] = [];
    let from = i + 1;
    for (let j = i; j < text.length; j++) {
      const d = text[j];
      if (d === '\\') {
        j++;
        continue;
      }
      if (d === '{') depth++;
      else if (d === '}') {
        depth--;
        if (depth === 0) {
          options.push(text.slice(from, j));
          // `{a}` has no alternatives: it stays literal, as in the shell.
          if (options.length < 2) break;
          return { start: i, end: j, options };
        }
      } else if (d === ',' && depth === 1) {
        options.push(text.slice(from, j));
        from = j + 1;
      }
    }
  }
  return undefined;
}

/** A compiled glob: whether a workspace-relative path matches it whole. */
interface PathMatcher {
  test(path: string): boolean;
}

/**
 * Globs are written by pipeline authors and matched on the server against names a build chose:
 * with a backtracking engine `*a*a*a*a*a*a*a*a*b` against a name of sixty `a` ran for over 20 s.
 * RE2 (re2js, as for branch patterns in src/pipeline/user-regex.ts) matches in linear time.
 */
function globRegex(pattern: string): PathMatcher {
  const segments = pattern.split('/');
  let source = '';
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === '**') source += last ? '.+' : '(?:[^/]+/)*';
    else source += segmentSource(segment) + (last ? '' : '/');
  });
  const compiled = re2js().RE2JS.compile(source);
  return { test: (path) => compiled.matches(path) };
}

function segmentSource(segment: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '\\' && i + 1 < segment.length) {
      out += escapeRegex(segment[++i]!);
    } else if (c === '*') {
      while (segment[i + 1] === '*') i++;
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const close = classEnd(segment, i);
      if (close === -1) {
        out += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      let negate = false;
      if (body.startsWith('!') || body.startsWith('^')) {
        negate = true;
        body = body.slice(1);
      }
      const escaped = body.replace(/[\\\]^]/g, (m) => `\\${m}`);
      out += negate ? `[^/${escaped}]` : `[${escaped}]`;
      i = close;
    } else {
      out += escapeRegex(c);
    }
  }
  return out;
}

/** Index of the `]` closing a class opened at `open`; a `]` right after `[` or `[!` is literal. */
function classEnd(segment: string, open: number): number {
  let i = open + 1;
  if (segment[i] === '!' || segment[i] === '^') i++;
  if (segment[i] === ']') i++;
  for (; i < segment.length; i++) if (segment[i] === ']') return i;
  return -1;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, (m) => `\\${m}`);
}
