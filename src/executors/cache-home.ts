/**
 * Caches of container executors (docker, kubernetes) reach what only the step's own container
 * sees, its HOME (`~/.npm`) and, on kubernetes, a workspace the server cannot write between
 * steps, through a staging directory the executor mounts into the step (a volume, an
 * `emptyDir`): one directory per step, named by {@link cacheStepDir}, holding
 *
 * - `h/` (and on kubernetes `w/`): restored files, copied into `$HOME` (the workspace) before
 *   the commands run. `w/` is removed then (a retry finds the workspace as the first attempt
 *   left it); `h/` stays, for a retry's fresh container and HOME;
 * - `keep/`: the `~/` paths the step keeps for the cache, copied there after its commands
 *   succeeded, where `cacheFiles.out` reads them.
 *
 * The copies are the step's own (`cp -a`, as the step's user, in the step's image): a step
 * whose image has no `cp` or whose HOME is not writable gets a line in its log and runs on; a
 * cache never changes a step's exit code.
 */
import { createHash } from 'node:crypto';

/** Whether a cache path is one of the step's HOME (`~/.npm`) rather than of the workspace. */
export function isHomePath(path: string): boolean {
  return path === '~' || path.startsWith('~/');
}

/** The staging directory of step `key` under `root` (a path in the step's container). */
export function cacheStepDir(root: string, key: string): string {
  return `${root}/${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

export interface CacheHomeScriptOptions {
  /** The step's staging directory, see {@link cacheStepDir}. */
  stepDir: string;
  /** `~/` paths kept after success (`StepSpec.cacheHome.save`). */
  save: readonly string[];
  /** Where `w/` goes, when the executor stages workspace paths too (kubernetes). */
  workspace?: string;
}

/**
 * A POSIX sh script that runs `commands` (the step's script, as `/bin/sh -e -c` would) between
 * the restore and the keep. Its exit status is the commands'.
 */
export function cacheHomeScript(commands: string, options: CacheHomeScriptOptions): string {
  const dir = quote(options.stepDir);
  const lines = [
    // Run under `sh -e` (the kubernetes step wrapper) too: a failing copy, or a `wait` a signal
    // cut short, must not end the step here.
    `set +e`,
    `_slipway_cache=${dir}`,
    // Copies the entries of $1 into the directory $2, not $1 itself: its mode (the staging
    // directory's 0777) must not become HOME's. busybox's cp -a, run by a step user that is not
    // root, says "can't preserve ownership" for every file it copies (and succeeds): not the
    // step's output. Other complaints are kept; the caller says what failed.
    `_slipway_copy() {`,
    `  _slipway_ok=0`,
    `  for _slipway_entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do`,
    `    if [ -e "$_slipway_entry" ] || [ -L "$_slipway_entry" ]; then`,
    `      _slipway_errors=$(cp -a "$_slipway_entry" "$2"/ 2>&1 >/dev/null) || _slipway_ok=1`,
    `      if [ -n "$_slipway_errors" ]; then printf '%s\n' "$_slipway_errors" | grep -v "preserve ownership" >&2; fi`,
    `    fi`,
    `  done`,
    `  return "$_slipway_ok"`,
    `}`,
    // The restore: HOME first (its own directory may not exist in the image), then the workspace.
    `if [ -d "$_slipway_cache/h" ]; then`,
    `  if mkdir -p "$HOME" && _slipway_copy "$_slipway_cache/h" "$HOME"; then :; else echo "slipway: cache: the restored ~/ paths could not be copied into $HOME" >&2; fi`,
    `fi`,
  ];
  if (options.workspace !== undefined) {
    lines.push(
      `if [ -d "$_slipway_cache/w" ]; then`,
      `  if _slipway_copy "$_slipway_cache/w" ${quote(options.workspace)}; then :; else echo "slipway: cache: the restored paths could not be copied into the workspace" >&2; fi`,
      `  rm -rf "$_slipway_cache/w" 2>/dev/null || :`,
      `fi`,
    );
  }
  // The commands run in a child shell so that the keep can follow them. The signals a stop
  // sends this shell (the init passes SIGTERM on; on Kubernetes it is PID 1, where a signal
  // without a trap is ignored) are passed on to it: its own traps run as they would if it were
  // the container's shell, and this one waits for its end (`wait` returns early on a trap; its
  // stderr is busybox's "Terminated", which a step without the wrapper does not print).
  lines.push(
    `_slipway_pid=`,
    ...['TERM', 'INT', 'HUP'].map((sig) => `trap 'kill -${sig} "$_slipway_pid" 2>/dev/null' ${sig}`),
    `/bin/sh -e -c ${quote(commands)} &`,
    `_slipway_pid=$!`,
    `wait "$_slipway_pid" 2>/dev/null`,
    `_slipway_status=$?`,
    `while kill -0 "$_slipway_pid" 2>/dev/null; do wait "$_slipway_pid" 2>/dev/null; _slipway_status=$?; done`,
    `trap - TERM INT HUP`,
  );
  if (options.save.length > 0) {
    const relative = options.save.map((p) => quote(p.replace(/^~\/?/, '')));
    lines.push(
      `if [ "$_slipway_status" -eq 0 ]; then`,
      `  rm -rf "$_slipway_cache/keep" 2>/dev/null || :`,
      `  for _slipway_path in ${relative.join(' ')}; do`,
      `    if [ -e "$HOME/$_slipway_path" ] || [ -L "$HOME/$_slipway_path" ]; then`,
      `      _slipway_to="$_slipway_cache/keep/$_slipway_path"`,
      `      if mkdir -p "\${_slipway_to%/*}" && cp -a "$HOME/$_slipway_path" "$_slipway_to"; then :; else echo "slipway: cache: ~/$_slipway_path could not be kept for the cache" >&2; fi`,
      `    fi`,
      `  done`,
      `fi`,
    );
  }
  lines.push(`exit "$_slipway_status"`);
  return lines.join('\n') + '\n';
}

/** A single-quoted sh word: nothing in it is expanded. */
function quote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
