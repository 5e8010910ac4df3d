/**
 * The step wrapper: the command of every step's ephemeral container (POSIX sh: busybox ash,
 * dash, bash). Ephemeral containers cannot be stopped one by one through the API, so the
 * wrapper stops itself when the pod's `slipway.dev/stop` annotation, which the kubelet writes
 * to the downwardAPI file `/slipway/control/stop`, names its container as a whole word.
 *
 * Arguments (after `$0`): the script, the container's own name, the grace in seconds between
 * SIGTERM and SIGKILL, and (tests only) another control directory.
 *
 * - The step runs as `/bin/sh -e -c "$1"` in the background, with the container's env;
 * - a poller checks the stop file every 0.2 s (`sleep 1` where fractional sleep fails): on a
 *   match it sends SIGTERM to the step shell, waits the grace, then SIGKILL;
 * - SIGTERM/SIGINT to the wrapper (the pod deleted) are forwarded the same way;
 * - the wrapper's own stderr is /dev/null (the step keeps the container's): a shell reports a
 *   job killed by a signal there ("Killed"), which is not the step's output;
 * - the wrapper waits for the step and exits with its status, so the container's exit code is
 *   the step's (143 or 137 when stopped). The wrapper is the container's PID 1: when it exits,
 *   whatever the step left running dies with it.
 *
 * Its variables start with `_slipway_` and the arguments stay positional, so the step's own
 * environment (which the step shell inherits) is never changed.
 */
export const STEP_WRAPPER = `_slipway_stop="\${4:-/slipway/control}/stop"
exec 3>&2 2>/dev/null
/bin/sh -e -c "$1" 2>&3 3>&- &
_slipway_child=$!
_slipway_trapped=
trap '_slipway_trapped=1; kill -TERM "$_slipway_child" 2>/dev/null; (sleep "$3"; kill -KILL "$_slipway_child" 2>/dev/null) &' TERM INT
(
  trap - TERM INT
  while :; do
    if [ -f "$_slipway_stop" ]; then
      case " $(tr '\\n\\t' '  ' < "$_slipway_stop" 2>/dev/null) " in
        *" $2 "*)
          kill -TERM "$_slipway_child" 2>/dev/null
          sleep "$3"
          kill -KILL "$_slipway_child" 2>/dev/null
          exit 0
          ;;
      esac
    fi
    sleep 0.2 2>/dev/null || sleep 1
  done
) </dev/null &
_slipway_poller=$!
while :; do
  _slipway_trapped=
  wait "$_slipway_child"
  _slipway_status=$?
  if [ -n "$_slipway_trapped" ] && kill -0 "$_slipway_child" 2>/dev/null; then continue; fi
  break
done
kill "$_slipway_poller" 2>/dev/null
exit "$_slipway_status"
`;

/**
 * Arguments as the kubelet must hand them over, unchanged: it expands `$(NAME)` of the
 * container's env in `command` and `args` and reduces `$$` to `$`, so every `$` of a script
 * (`$$`, `$(date)`, `$(HOME)`) is written `$$`.
 */
export function literalArgs(args: readonly string[]): string[] {
  return args.map((arg) => arg.replaceAll('$', '$$$$'));
}

/**
 * The ephemeral container's `command`: `/bin/sh -c <wrapper> slipway-step <script> <name> <grace>`.
 * The script is the step's commands joined by newlines, passed as an argument (no quoting).
 */
export function stepCommand(
  commands: readonly string[],
  containerName: string,
  graceSeconds: number,
): string[] {
  const grace = Number.isFinite(graceSeconds) && graceSeconds > 0 ? Math.ceil(graceSeconds) : 0;
  return ['/bin/sh', '-c', STEP_WRAPPER, 'slipway-step', commands.join('\n'), containerName, String(grace)];
}
