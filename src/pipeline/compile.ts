/**
 * The pipeline compiler: `.slipway.yml` text → `PipelinePlan`, or every error found.
 * Stages: parse (YAML) → validate (schema) → check (names, needs, timeouts) → plan
 * (substitution). Each stage keeps going after errors, so one run reports them all.
 */
import { Buffer } from 'node:buffer';
import { checkPipeline } from './checks.js';
import { sortErrors, type PipelineError } from './errors.js';
import { formatSize, MAX_FILE_BYTES } from './limits.js';
import type { Loose } from './loose.js';
import { parsePipelineYaml } from './parse.js';
import { buildPlan } from './plan.js';
import { hasInclude, IncludingSchema, takeIncludes, type IncludeRef, type IncludeTexts } from './include.js';
import { SourceIndex } from './located.js';
import { PipelineSchema, type PipelineFile } from './schema.js';
import { PipelineSource } from './source.js';
import type { BuildContext, PipelinePlan } from './types.js';
import { NODE_BUDGET, validateNode } from './validate.js';

/** What `compilePipeline` needs: the file and the build it is compiled for. */
export interface CompileInput {
  /** The file's name as messages should show it (e.g. `.slipway.yml`). */
  file: string;
  source: string;
  /** The build the plan is for; its values fill the built-in variables. */
  context: BuildContext;
  /** `--env NAME=value` of the CLI: win over every env block and are exported to every step. */
  overrides?: Record<string, string>;
  /**
   * The files `include:` names, as read so far (`compileWithIncludes` in include.ts). One that
   * is not here is asked for in the result's `missing`.
   */
  includes?: IncludeTexts;
}

/** A plan (with warnings), or every error found: never both. */
export type CompileResult =
  | { ok: true; plan: PipelinePlan; warnings: PipelineError[] }
  | {
      ok: false;
      errors: PipelineError[];
      /** Includes to read and give in `includes` before compiling again (include.ts). */
      missing?: IncludeRef[];
    };

/**
 * Compiles a pipeline file for one build. Never throws for a bad file: every problem is in
 * `errors`, in reading order, each with file, line, column and field path.
 */
export function compilePipeline(input: CompileInput): CompileResult {
  const src = new PipelineSource(input.file, input.source);
  // Before parsing: the parser's time grows with the text (10 MB took seconds).
  const bytes = input.source.length * 3 <= MAX_FILE_BYTES ? 0 : Buffer.byteLength(input.source, 'utf8');
  if (bytes > MAX_FILE_BYTES) {
    const message = `the file is ${bytes} bytes, more than ${formatSize(MAX_FILE_BYTES)}; a pipeline file may be at most ${formatSize(MAX_FILE_BYTES)} (${MAX_FILE_BYTES} bytes)`;
    return { ok: false, errors: [src.error('limit_exceeded', { line: 1, col: 1 }, '', message)] };
  }
  const parsed = parsePipelineYaml(src);
  const errors = [...parsed.errors];
  const warnings = [...parsed.warnings];
  if (!parsed.doc || !parsed.root) return { ok: false, errors: sortErrors(errors) };

  const shared = { index: new SourceIndex(), budget: { left: NODE_BUDGET } };
  const including = hasInclude(parsed.root);
  const schema = including ? IncludingSchema : PipelineSchema;
  const validated = validateNode(src, parsed.doc, parsed.root, schema, shared);
  errors.push(...validated.errors);
  // The validator builds values only from nodes that passed the schema (see Loose).
  let file = (validated.value ?? {}) as Loose<PipelineFile>;
  let files: string[] = [];
  if (including) {
    const included = takeIncludes(src, file, shared, input.includes ?? {});
    errors.push(...included.errors);
    warnings.push(...included.warnings);
    files = included.files;
    if (included.missing.length > 0)
      return { ok: false, errors: sortErrors(errors, files), missing: included.missing };
    file = included.file;
  }
  errors.push(...checkPipeline(src, file, validated.index));
  // Too many steps: planning them all would only take time to report the same.
  if (errors.some((e) => e.code === 'limit_exceeded'))
    return { ok: false, errors: sortErrors(errors, files) };
  const plan = buildPlan(
    {
      src,
      file,
      index: validated.index,
      context: input.context,
      overrides: new Map(Object.entries(input.overrides ?? {})),
    },
    { error: (e) => errors.push(e), warning: (e) => warnings.push(e) },
  );
  if (errors.length > 0) return { ok: false, errors: sortErrors(errors, files) };
  return { ok: true, plan, warnings: sortErrors(warnings, files) };
}

/** Stands in for a build when a file is only checked (`slipway validate`). */
export const PLACEHOLDER_CONTEXT: BuildContext = {
  buildId: 'validate',
  buildNumber: 0,
  project: 'owner/name',
  branch: 'main',
  commit: '0000000000000000000000000000000000000000',
  event: 'push',
  workspace: '/workspace',
};

/**
 * The errors of a pipeline file, for `slipway validate` and editors: compiles it for a
 * placeholder build (built-ins are always defined, so their values do not matter here).
 * Empty when the file is valid.
 */
export function validatePipeline(file: string, source: string): PipelineError[] {
  const result = compilePipeline({ file, source, context: PLACEHOLDER_CONTEXT });
  return result.ok ? [] : result.errors;
}
