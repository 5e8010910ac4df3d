/**
 * Errors (and warnings) of the pipeline compiler. They are data, not exceptions: the compiler
 * collects every problem it finds so that one run of `slipway validate` shows them all.
 */

/** What kind of problem an error is. One value per cause, so callers can branch or count. */
export type PipelineErrorCode =
  /** The file is not well-formed YAML (also: duplicate keys, unresolvable aliases). */
  | 'yaml_syntax'
  /** The file holds more than one YAML document (`---`). */
  | 'multi_document'
  /** A key that is not allowed at that place (often a typo; the message suggests one). */
  | 'unknown_key'
  /** A value of the wrong kind (a number where a list was expected, …). */
  | 'type'
  /** A required key is missing. */
  | 'required'
  /** Two keys that exclude each other are both given (top-level `steps` and `stages`). */
  | 'conflicting_keys'
  /** A value of the right kind that is not allowed (bad duration, event, regex, port, …). */
  | 'invalid_value'
  /** `${NAME}` names no variable in scope. */
  | 'unknown_variable'
  /** `${…}` is not a well-formed reference (`${}`, `${A-B}`, a missing `}`). */
  | 'invalid_variable'
  /** Env values that reference each other in a loop. */
  | 'variable_cycle'
  /** `${NAME}` names a `from_secret` variable, whose value is unknown until run time. */
  | 'secret_variable'
  /** `needs` names a step that is not in the same stage. */
  | 'needs_unknown'
  /** Steps of a stage that need each other in a loop. */
  | 'needs_cycle'
  /** Two stages, two steps of a stage, or two services share a name. */
  | 'duplicate_name'
  /**
   * An `include:` that cannot be taken in: a file that is not there or not readable, a path that
   * leaves the repository, a ref that is not pinned, another project unknown, a cycle.
   */
  | 'include'
  /**
   * A bound of `limits.ts` is crossed: file size, nesting depth, number of values or steps,
   * expanded length of a value or of the whole plan.
   */
  | 'limit_exceeded'
  /** (warning) An env entry replaces a built-in variable such as `SLIPWAY_BRANCH`. */
  | 'shadows_builtin'
  /** (warning) Something YAML itself warns about, such as an unknown tag. */
  | 'yaml_warning';

/** One problem in a pipeline file, located precisely enough for an editor to jump to it. */
export interface PipelineError {
  code: PipelineErrorCode;
  /**
   * The file as given to the compiler, or the included file the error is in: `ci/common.yml`
   * for one of the same repository, `owner/name@ref:ci/node.yml` for another project's.
   */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, in characters (UTF-16 code units) of the line. */
  col: number;
  /** Field path such as `stages[0].steps[1].commands`; empty for the top level. */
  path: string;
  /** Complete sentence for people, already including the path. */
  message: string;
}

/** The one-line form used by the CLI and logs: `<file>:<line>:<col>: <message>`. */
export function formatPipelineError(e: PipelineError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.message}`;
}

/** How a field path reads inside a message: the path, or "the top level" for the root. */
export function describePath(path: string): string {
  return path === '' ? 'the top level' : path;
}

/**
 * Errors in reading order (line, column), without repeats. Repeats happen by design: a
 * top-level env value is resolved once per step, and would otherwise be reported per step.
 * With included files, `files` gives their order (the main file first): errors go file by file.
 */
export function sortErrors(errors: readonly PipelineError[], files: readonly string[] = []): PipelineError[] {
  const seen = new Set<string>();
  const unique = errors.filter((e) => {
    const key = `${e.file}:${e.line}:${e.col}:${e.code}:${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const rank = (file: string) => {
    const at = files.indexOf(file);
    return at < 0 ? 0 : at;
  };
  // Array.prototype.sort is stable, so errors at one position keep the order they were found in.
  return unique.sort((a, b) => rank(a.file) - rank(b.file) || a.line - b.line || a.col - b.col);
}
