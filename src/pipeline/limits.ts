/**
 * The compiler's limits. The server compiles files from repositories it does not trust, so
 * every way a small file can ask for a lot of memory or time has a bound here, reported as a
 * compile error at the place that crosses it. The README's limits table lists the same values.
 */

/** Largest pipeline file, in bytes (UTF-8). Checked before parsing: parsing 10 MB took seconds. */
export const MAX_FILE_BYTES = 1024 * 1024;

/**
 * Deepest nesting of mappings and lists. The YAML composer recurses per level (20,000 levels
 * overflowed its stack after seconds); a real pipeline nests about 6.
 */
export const MAX_DEPTH = 64;

/** Longest value after `${…}` substitution, in characters: a command, an image, one env value. */
export const MAX_VALUE_CHARS = 64 * 1024;

/**
 * Most characters of expanded text in one plan: commands, images, artifact paths and env values
 * of every step and service together (top-level env counts once per step it is exported to).
 */
export const MAX_PLAN_CHARS = 4 * 1024 * 1024;

/** Most steps in one stage; each is a record and a container (or process) of the build. */
export const MAX_STEPS_PER_STAGE = 500;

/** Most steps in one pipeline, all stages together. */
export const MAX_STEPS = 2000;

/**
 * Most cells one `matrix` expands to (GitHub Actions has the same bound). Worked out from the
 * axes' lengths before a cell is made: a matrix of 10,000 cells is refused at once.
 */
export const MAX_MATRIX_CELLS = 256;

/**
 * Longest values of a matrix cell as its steps' names show them (`node=20, db=pg` in
 * `test (node=20, db=pg)`): names show in logs, the UI and URLs.
 */
export const MAX_MATRIX_LABEL_CHARS = 128;

/**
 * Deepest nesting of `include:` (the pipeline file's own includes are level 1). Each level is
 * a round of reads before the compile can go on.
 */
export const MAX_INCLUDE_DEPTH = 10;

/** Most files one pipeline may include, all levels together (each file is read once). */
export const MAX_INCLUDES = 100;

/**
 * Most bytes of the pipeline file and every file it includes together; each file on its own
 * has the bound of `MAX_FILE_BYTES`. What the server holds and parses per build.
 */
export const MAX_INCLUDE_TOTAL_BYTES = 2 * 1024 * 1024;

/** `1024` → `1 KiB`, `65536` → `64 KiB`: limits read better in the unit they are set in. */
export function formatSize(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n}`;
}
