#!/usr/bin/env bash
# The test command (`npm test`): typecheck, lint and build side by side, and the whole suite
# once the build is done.
# Each of them is one process on one core, so on a machine of two cores side by side they take
# about half the time they take one after the other. Their output is printed whole, one job
# after the other, so that it reads as if they had run in order.
#
# --setup: also installs and starts what the suite needs (scripts/test-setup.sh: Podman,
# PostgreSQL, Chromium) alongside them; `npm run test:all` passes it.
# --rebuild: also runs the dependencies' install scripts alongside them (`npm rebuild`), for a
# tree installed with `npm ci --ignore-scripts` (.ci/run): better-sqlite3 compiles SQLite from
# source on a machine that cannot download its prebuilt binary (minutes, on one core), and
# type-check, lint and build need none of it, so the other core does them meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
names=()
pids=()
start() {
  local name="$1"
  shift
  # Each job notes its wall time beside its output: the phases are what CI's time budget is
  # spent on (.ci/run).
  (
    status=0
    "$@" >"$logs/$name" 2>&1 || status=$?
    echo "$SECONDS" >"$logs/$name.seconds"
    exit "$status"
  ) &
  names+=("$name")
  pids+=("$!")
}

for arg in "$@"; do
  case "$arg" in
    --setup) start setup bash scripts/test-setup.sh ;;
    # JOBS: node-gyp compiles SQLite and better-sqlite3's C++ side by side, not one after the
    # other. -O1 (after the package's -O3, so it wins): the same SQLite, compiled in a third of
    # the CPU time (sqlite3.c: 36 s instead of 115 s); the tests do not measure its speed.
    # --no-bin-links: npm ci linked them, and the jobs beside this one run tsc and eslint.
    # Every package with an install script but ssh2 and its cpu-features: they compile optional
    # accelerators of dockerode's SSH transport, which Slipway never uses (16 s of CPU).
    --rebuild) start rebuild sh -c 'JOBS=max CFLAGS=-O1 CXXFLAGS=-O1 npm rebuild --no-bin-links --no-audit --no-fund \
      $(node scripts/install-scripts.mjs --except ssh2 cpu-features)' ;;
    *) echo "test.sh: unknown option $arg (--setup, --rebuild)" >&2 && exit 2 ;;
  esac
done
# Type-check and lint: `npm run typecheck` and `npm run lint` in one process that hands tsc's
# programs to the typed lint rules (scripts/check.mjs: 70% of the two's CPU time). They
# start at a lower priority: the suite waits for the jobs above only, and those get the cores
# first (better-sqlite3's compilation is the longest); once the suite starts, the checks go back
# to this script's priority (renice_tree below), so that they end before it does.
own_nice="$(nice)"
start checks nice -n 10 node scripts/check.mjs
# `npm run build` (package.json) with --noCheck: tsc's output is the same, in half its CPU time,
# and the checks job beside it type-checks these files and the tests with the same options.
start build sh -c 'npx tsc -p tsconfig.build.json --noCheck && node scripts/build-cli.mjs && npm run build:web'

failed=()
finish() {
  local status=ok
  wait "${pids[$1]}" || { status=failed; failed+=("${names[$1]}"); }
  echo "=== ${names[$1]}: $status (ended at $(cat "$logs/${names[$1]}.seconds" 2>/dev/null || echo "?") s)"
  cat "$logs/${names[$1]}"
}

# The suite needs what setup, rebuild and build make; type-check and lint only read the code. So
# the suite starts as soon as those are done, beside type-check and lint (on a loaded machine
# every process gets its share of the cores: five get more than three), and their verdict is
# printed after the suite's.
checks=()
for i in "${!names[@]}"; do
  case "${names[$i]}" in
    checks) checks+=("$i") ;;
    *) finish "$i" ;;
  esac
done
if ((${#failed[@]} > 0)); then
  for i in "${checks[@]}"; do finish "$i"; done
  echo "=== not testing: ${failed[*]} failed" >&2
  exit 1
fi
# A process and, top-down (a child forked meanwhile inherits its parent's new priority), all of
# its descendants. Lowering the niceness again needs privileges (root, CAP_SYS_NICE): without
# them the checks keep their low priority, which costs time, not a verdict.
renice_tree() {
  local pid
  for pid in "$@"; do
    renice -n "$own_nice" -p "$pid" >/dev/null 2>&1 || true
    # shellcheck disable=SC2046 # one pid a word
    renice_tree $(pgrep -P "$pid" || true)
  done
}
for i in "${checks[@]}"; do renice_tree "${pids[$i]}"; done
tests=0
npx vitest run || tests=$?
echo "=== suite: exit code $tests (ended at $SECONDS s)"
for i in "${checks[@]}"; do finish "$i"; done
if ((${#failed[@]} > 0)); then
  echo "=== failed: ${failed[*]}" >&2
  exit 1
fi
exit "$tests"
