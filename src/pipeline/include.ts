/**
 * `include:`: a pipeline made of several files. The compiler stays pure: it never reads a
 * file. It is given the texts its caller has read so far (`IncludeTexts`) and answers with
 * the includes it still needs (`missing`); `compileWithIncludes` reads those through an
 * `IncludeResolver` and compiles again, one round per level of nesting.
 *
 * Semantics (README "Includes"): an included file has the keys of a pipeline file except the
 * short form's `steps` (`include`, `image`, `env`, `services`, `stages`, `x-…`). The files are
 * taken depth first: an included file's own includes before it, in the order listed, each file
 * once (a file included again is skipped, so diamonds are fine); the including file comes last.
 * Stages and services are appended in that order; `env` is merged entry by entry and `image`
 * replaced, the later file winning, so the pipeline file wins over everything it includes.
 * Names stay unique across files (two files with a stage `test` is an error at the second,
 * naming the first). A same-repository `file:` in a file of another project is read from that
 * project at the same ref.
 */
import { Buffer } from 'node:buffer';
import { posix } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { YAMLMap } from 'yaml';
import type { PipelineError } from './errors.js';
import {
  formatSize,
  MAX_FILE_BYTES,
  MAX_INCLUDE_DEPTH,
  MAX_INCLUDE_TOTAL_BYTES,
  MAX_INCLUDES,
} from './limits.js';
import { childPath, type Loc } from './located.js';
import type { Loose } from './loose.js';
import { setOwn } from './own.js';
import { parsePipelineYaml } from './parse.js';
import { PipelineSchema, type PipelineFile } from './schema.js';
import { PipelineSource, type FilePos } from './source.js';
import { validateNode, type ValidateShared } from './validate.js';

/** One file to include: of this repository (no `project`), or of another project at a pinned ref. */
export interface IncludeRef {
  /** `owner/name` of another project of the server. */
  project?: string;
  /** With `project`: a full commit sha or a tag. */
  ref?: string;
  /** Normalised path from the repository's root: no `..`, not absolute, no `./`. */
  file: string;
}

/** What reading an include gave: its text, why it could not be read, or its size when too big. */
export type IncludeRead =
  { ok: true; text: string } | { ok: false; message: string } | { ok: false; tooBig: number };

/** Reads included files for `compileWithIncludes` (the server from git, `slipway run` from disk). */
export interface IncludeResolver {
  /**
   * The file's text, or why not, as a sentence that names the file. A file of more than
   * `maxBytes` bytes is answered `tooBig` without being read. Should not throw; a throw is
   * reported as the include's error.
   */
  readInclude(ref: IncludeRef, maxBytes: number): Promise<IncludeRead>;
}

/** The reads so far, by `includeKey`: plain data, so that it crosses to the compile worker. */
export type IncludeTexts = Record<string, IncludeRead>;

/** The key of an include in `IncludeTexts` (unambiguous whatever the path holds). */
export function includeKey(ref: IncludeRef): string {
  return JSON.stringify([ref.project ?? null, ref.ref ?? null, ref.file]);
}

/** How an included file is named in errors: `ci/common.yml`, or `acme/ci@v1:ci/node.yml`. */
export function includeName(ref: IncludeRef): string {
  return ref.project === undefined ? ref.file : `${ref.project}@${ref.ref ?? ''}:${ref.file}`;
}

/**
 * The schema of an included file, and of a pipeline file with `include`: the pipeline file's
 * keys without "exactly one of `stages` and `steps`" (the stages may all come from includes).
 */
export const IncludingSchema = Type.Object(PipelineSchema.properties, {
  additionalProperties: false,
  patternProperties: { '^x-': {} },
});

/** The root mapping of a parsed file has `include`: then it is compiled with its includes. */
export function hasInclude(root: YAMLMap): boolean {
  return root.has('include');
}

/** A file of the compile: the pipeline file or an included one. */
interface Loaded {
  name: string;
  src: PipelineSource;
  value: Loose<PipelineFile>;
  /** Where this file's same-repository includes are read: its project and ref. */
  project?: string;
  ref?: string;
}

/** One open include while the files are walked depth first: for cycles and their chain. */
interface Frame {
  key: string;
  name: string;
  /** The include entry that took this file in (absent for the pipeline file). */
  via?: FilePos;
}

/** What `takeIncludes` found: the merged file, or the includes the caller must read first. */
export interface Included {
  /** The pipeline file with every included file merged in (valid only without errors). */
  file: Loose<PipelineFile>;
  errors: PipelineError[];
  warnings: PipelineError[];
  /** Includes not read yet: read them (`IncludeTexts`) and compile again. */
  missing: IncludeRef[];
  /** The files' names, the pipeline file first: the order errors are sorted in. */
  files: string[];
}

/**
 * Takes in the includes of the pipeline file `main` (validated into `shared.index`) from
 * `texts`, depth first, and merges them. Every problem is an error at the include entry
 * (or, inside an included file, at its own line and column).
 */
export function takeIncludes(
  src: PipelineSource,
  main: Loose<PipelineFile>,
  shared: ValidateShared,
  texts: IncludeTexts,
): Included {
  const errors: PipelineError[] = [];
  const warnings: PipelineError[] = [];
  const missing: IncludeRef[] = [];
  const { index } = shared;
  const mainFile = normalise(src.file);
  const root: Loaded = { name: src.file, src, value: main };
  const done = new Set<string>();
  const order: Loaded[] = [];
  const stack: Frame[] = [{ key: includeKey({ file: mainFile ?? src.file }), name: src.file }];
  let count = 0;
  let bytes = Buffer.byteLength(src.text, 'utf8');
  let countReported = false;

  const visitFile = (file: Loaded): void => {
    const list = file.value.include;
    if (!list) return;
    list.forEach((entry, i) => {
      const loc = index.at(list, i);
      if (entry === undefined || loc === undefined || entry.file === undefined) return;
      const fail = (message: string) => errors.push(src.error('include', loc.pos, loc.path, message));
      const ref = refOf(entry, file, loc, fail);
      if (ref === undefined) return;
      const key = includeKey(ref);
      const name = includeName(ref);
      const open = stack.findIndex((f) => f.key === key);
      if (open >= 0) {
        const links = stack
          .slice(open + 1)
          .map((f, j) => `${link(stack[open + j]!, f.via!)} includes ${f.name}`);
        links.push(`${link(stack[stack.length - 1]!, loc.pos)} includes ${name}`);
        fail(
          `include cycle at ${loc.path}: ${links.join(', ')}; a file may not include itself, directly or through others`,
        );
        return;
      }
      if (done.has(key)) return;
      if (stack.length > MAX_INCLUDE_DEPTH) {
        done.add(key);
        fail(
          `${name} at ${loc.path} would be included ${stack.length} levels deep (${stack.map((f) => f.name).join(' → ')} → ${name}); includes may nest at most ${MAX_INCLUDE_DEPTH} levels`,
        );
        return;
      }
      if (count >= MAX_INCLUDES) {
        if (!countReported)
          fail(
            `${name} at ${loc.path} is one file too many: a pipeline may include at most ${MAX_INCLUDES} files, all levels together`,
          );
        countReported = true;
        return;
      }
      count += 1;
      done.add(key);
      const read = texts[key];
      if (read === undefined) {
        missing.push(ref);
        return;
      }
      if (!read.ok) {
        fail(
          'tooBig' in read
            ? tooBigMessage(name, loc.path, read.tooBig)
            : `cannot include ${name} at ${loc.path}: ${read.message}`,
        );
        return;
      }
      const size =
        read.text.length * 3 <= MAX_FILE_BYTES ? read.text.length : Buffer.byteLength(read.text, 'utf8');
      if (size > MAX_FILE_BYTES || bytes + size > MAX_INCLUDE_TOTAL_BYTES) {
        fail(tooBigMessage(name, loc.path, size, bytes));
        return;
      }
      bytes += size;
      const child = load(name, read.text, ref);
      if (child === undefined) return;
      stack.push({ key, name, via: loc.pos });
      visitFile(child);
      stack.pop();
      order.push(child);
    });
  };

  /** Parses and validates an included file; its nodes are then located through `src`. */
  const load = (name: string, text: string, ref: IncludeRef): Loaded | undefined => {
    const own = new PipelineSource(name, text, true);
    const parsed = parsePipelineYaml(own);
    warnings.push(...parsed.warnings);
    if (!parsed.doc || !parsed.root) {
      // An empty file (comments only too) includes nothing: harmless. Any other reason is an error in it.
      if (parsed.errors.some((e) => e.code !== 'required')) errors.push(...parsed.errors);
      return undefined;
    }
    errors.push(...parsed.errors);
    const validated = validateNode(own, parsed.doc, parsed.root, IncludingSchema, shared);
    errors.push(...validated.errors);
    src.adopt(parsed.doc, own);
    const value = validated.value as Loose<PipelineFile> | undefined;
    if (value === undefined) return undefined;
    if (value.steps !== undefined) {
      const at = index.at(value, 'steps');
      errors.push(
        own.error(
          'invalid_value',
          at?.keyPos ?? at?.pos ?? { line: 1, col: 1 },
          'steps',
          'an included file cannot use the short form: put its steps in a stage (`stages: [{name: …, steps: […]}]`)',
        ),
      );
    }
    return {
      name,
      src: own,
      value,
      ...(ref.project !== undefined ? { project: ref.project } : {}),
      ...(ref.ref !== undefined ? { ref: ref.ref } : {}),
    };
  };

  visitFile(root);
  const files = [src.file, ...order.map((f) => f.name)];
  if (missing.length > 0) {
    // For callers that do not read includes (and the round before those are read).
    for (const ref of missing) {
      const at = findEntry(main, shared, ref) ?? { line: 1, col: 1 };
      errors.push(
        src.error(
          'include',
          at,
          '',
          `${includeName(ref)} is included but was not read: includes are read by \`slipway run\`, \`slipway validate\` and the server`,
        ),
      );
    }
    return { file: main, errors, warnings, missing, files };
  }
  return { file: merge(src, root, order, shared, errors), errors, warnings, missing, files };
}

/** `a.yml:3:5`: where a frame's file includes the next one. */
function link(frame: Frame, at: FilePos): string {
  return `${frame.name}:${at.line}:${at.col}`;
}

function tooBigMessage(name: string, path: string, size: number, before?: number): string {
  if (size > MAX_FILE_BYTES)
    return `${name} included at ${path} is ${size} bytes, more than ${formatSize(MAX_FILE_BYTES)}; an included file may be at most ${formatSize(MAX_FILE_BYTES)} (${MAX_FILE_BYTES} bytes)`;
  const total = before === undefined ? '' : ` (${before + size} bytes)`;
  return `${name} included at ${path} takes the pipeline's files past ${formatSize(MAX_INCLUDE_TOTAL_BYTES)}${total}; the pipeline file and the files it includes may be at most ${formatSize(MAX_INCLUDE_TOTAL_BYTES)} together`;
}

/** Where the pipeline file names `ref` (for the "not read" error); undefined for a nested one. */
function findEntry(main: Loose<PipelineFile>, shared: ValidateShared, ref: IncludeRef): FilePos | undefined {
  const list = main.include ?? [];
  const i = list.findIndex(
    (e) => e?.file !== undefined && normalise(e.file) === ref.file && e.project === ref.project,
  );
  return i < 0 ? undefined : shared.index.at(list, i)?.pos;
}

/** A path from the root of a repository, normalised; undefined when it leaves the repository. */
export function normalise(file: string): string | undefined {
  if (file.startsWith('/') || file.includes('\\') || file.includes('\0')) return undefined;
  const parts = file.split('/');
  if (parts.some((p) => p === '..')) return undefined;
  const normal = posix.normalize(file).replace(/^(\.\/)+/, '');
  return normal === '' || normal === '.' ? undefined : normal;
}

/** A tag or a commit: git's ref rules, short of asking git (the resolver does). */
const REF = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[A-Za-z0-9._/+-]{1,255}(?<![./])$/;

/** The ref an include entry names, checked; undefined after reporting why not. */
function refOf(
  entry: NonNullable<NonNullable<Loose<PipelineFile>['include']>[number]>,
  from: Loaded,
  loc: Loc,
  fail: (message: string) => void,
): IncludeRef | undefined {
  const raw = entry.file ?? '';
  const file = normalise(raw);
  if (file === undefined) {
    fail(
      `include ${JSON.stringify(raw)} at ${childPath(loc.path, 'file')} leaves the repository; write a path from the root of the repository, without ".." and not absolute`,
    );
    return undefined;
  }
  if (file.split('/').includes('.git')) {
    fail(
      `include ${JSON.stringify(raw)} at ${childPath(loc.path, 'file')} is inside .git; include files of the repository`,
    );
    return undefined;
  }
  if (entry.project === undefined) {
    if (entry.ref !== undefined) {
      fail(
        `"ref" at ${childPath(loc.path, 'ref')} needs "project": a file of this repository is read at the build's commit`,
      );
      return undefined;
    }
    // A same-repository file of another project's file: that project's, at the same ref.
    return from.project === undefined ? { file } : { project: from.project, ref: from.ref ?? '', file };
  }
  if (entry.ref === undefined) {
    fail(
      `include of ${entry.project} at ${loc.path} needs "ref": a commit (40 hexadecimal digits) or a tag, so that the file cannot change under the pipeline`,
    );
    return undefined;
  }
  if (!REF.test(entry.ref)) {
    fail(
      `invalid ref ${JSON.stringify(entry.ref)} at ${childPath(loc.path, 'ref')}; expected a commit (40 hexadecimal digits) or a tag`,
    );
    return undefined;
  }
  return { project: entry.project, ref: entry.ref, file };
}

/**
 * The pipeline file with the included files (in `order`) merged in, as one validated value
 * whose parts keep their own locations. A file without includes is never merged.
 */
function merge(
  src: PipelineSource,
  main: Loaded,
  order: Loaded[],
  shared: ValidateShared,
  errors: PipelineError[],
): Loose<PipelineFile> {
  const { index } = shared;
  const files = [...order, main];
  const out: Loose<PipelineFile> = {};
  const self = index.self(main.value);
  if (self) index.setSelf(out, self);
  const put = (key: keyof PipelineFile, value: unknown, loc: Loc | undefined) => {
    setOwn(out, key, value);
    if (loc) index.setChild(out, key, loc);
  };
  // image: the last file that sets one.
  for (const f of files)
    if (f.value.image !== undefined) put('image', f.value.image, index.at(f.value, 'image'));
  // env: entry by entry, a later file's entry replacing an earlier one's.
  const envs = files.filter((f) => f.value.env !== undefined);
  if (envs.length > 0) {
    const env: Record<string, unknown> = {};
    const at = index.at(main.value, 'env') ?? index.at(envs[0]!.value, 'env');
    if (at) index.setSelf(env, at);
    for (const f of envs) {
      const from = f.value.env as Record<string, unknown>;
      for (const key of index.keys(from)) {
        setOwn(env, String(key), from[String(key)]);
        const loc = index.at(from, key);
        if (loc) index.setChild(env, key, loc);
      }
    }
    put('env', env, at);
  }
  const concat = (key: 'services' | 'stages', parts: { list: unknown[]; owner: object }[]) => {
    if (parts.length === 0) return;
    const list: unknown[] = [];
    const at = index.at(main.value, key) ?? index.at(parts[0]!.owner, key);
    if (at) index.setSelf(list, at);
    for (const { list: part } of parts) {
      part.forEach((item, i) => {
        const loc = index.at(part, i);
        if (loc) index.setChild(list, list.length, loc);
        list.push(item);
      });
    }
    put(key, list, at);
  };
  concat(
    'services',
    files.flatMap((f) => (f.value.services ? [{ list: f.value.services, owner: f.value }] : [])),
  );
  const stages = order.flatMap((f) => (f.value.stages ? [{ list: f.value.stages, owner: f.value }] : []));
  const own = main.value;
  if (own.stages !== undefined && own.steps !== undefined) {
    const second = index.at(own, 'steps');
    errors.push(
      src.error(
        'conflicting_keys',
        second?.keyPos ?? { line: 1, col: 1 },
        '',
        'keys "stages" and "steps" cannot be used together at the top level; use exactly one of them',
      ),
    );
  }
  if (own.stages !== undefined) stages.push({ list: own.stages, owner: own });
  else if (own.steps !== undefined && stages.length === 0) {
    // No stage from an include: the short form stays the short form.
    setOwn(out, 'steps', own.steps);
    const at = index.at(own, 'steps');
    if (at) index.setChild(out, 'steps', at);
  } else if (own.steps !== undefined) {
    // The short form after included stages: its steps are a stage named `default`, last.
    const at = index.at(own, 'steps');
    const pos = at?.keyPos ?? at?.pos ?? { line: 1, col: 1 };
    const stage = { name: 'default', steps: own.steps };
    const loc: Loc = { path: 'steps', node: at?.node ?? null, pos };
    index.setSelf(stage, loc);
    index.setChild(stage, 'name', loc);
    if (at) index.setChild(stage, 'steps', at);
    const list = [stage];
    index.setChild(list, 0, loc);
    stages.push({ list, owner: own });
  }
  concat('stages', stages);
  if (out.stages === undefined && out.steps === undefined) {
    errors.push(
      src.error(
        'required',
        self?.pos ?? { line: 1, col: 1 },
        '',
        'missing required key "stages" or "steps" at the top level: neither this file nor the files it includes have stages',
      ),
    );
  }
  return out;
}

/** A compile (in this thread or a worker) given the includes read so far. */
export type CompileFn<I, R> = (input: I & { includes: IncludeTexts }) => Promise<R> | R;

/**
 * Compiles `input`, reading the includes the compiler asks for through `resolver` and
 * compiling again, until it asks for none (one round per level: at most `MAX_INCLUDE_DEPTH`).
 * Reads one file at a time, at most `MAX_INCLUDE_TOTAL_BYTES` in all: what a hostile file can
 * make the caller hold is bounded.
 */
export async function compileWithIncludes<
  I extends { source: string },
  R extends { ok: boolean; missing?: IncludeRef[] },
>(input: I, resolver: IncludeResolver | undefined, compile: CompileFn<I, R>): Promise<R> {
  const texts: IncludeTexts = {};
  let total = Buffer.byteLength(input.source, 'utf8');
  for (let round = 0; ; round++) {
    const result = await compile({ ...input, includes: texts });
    if (result.ok || !result.missing || result.missing.length === 0 || resolver === undefined) return result;
    // Each round reads at least one new file; the compiler stops asking at the depth limit.
    if (round > MAX_INCLUDE_DEPTH + 1) return result;
    for (const ref of result.missing) {
      const left = MAX_INCLUDE_TOTAL_BYTES - total;
      let read: IncludeRead;
      if (left <= 0) {
        const max = formatSize(MAX_INCLUDE_TOTAL_BYTES);
        read = {
          ok: false,
          message: `the pipeline file and the files it includes would be more than ${max} together`,
        };
      } else {
        read = await resolver.readInclude(ref, Math.min(MAX_FILE_BYTES, left)).catch((error: unknown) => ({
          ok: false as const,
          message: error instanceof Error ? error.message : String(error),
        }));
      }
      if (read.ok) total += Buffer.byteLength(read.text, 'utf8');
      texts[includeKey(ref)] = read;
    }
  }
}
