#!/usr/bin/env bash
# The test command (`npm test`): typecheck, lint and build side by side, then the whole suite.
# Each of them is one process on one core, so on a machine of two cores side by side they take
# about half the time they take one after the other. Their output is printed whole, one job
# after the other, so that it reads as if they had run in order.
#
# --setup: also installs and starts what the suite needs (scripts/test-setup.sh: Podman,
# PostgreSQL, Chromium) alongside them; `npm run test:all` passes it.
set -euo pipefail
cd "$(dirname "$0")/.."

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
names=()
pids=()
start() {
  local name="$1"
  shift
  "$@" >"$logs/$name" 2>&1 &
  names+=("$name")
  pids+=("$!")
}

[[ "${1:-}" == --setup ]] && start setup bash scripts/test-setup.sh
start typecheck npm run typecheck
start lint npm run lint
start build npm run build

failed=()
for i in "${!names[@]}"; do
  status=ok
  wait "${pids[$i]}" || { status=failed; failed+=("${names[$i]}"); }
  echo "=== ${names[$i]}: $status"
  cat "$logs/${names[$i]}"
done
if ((${#failed[@]} > 0)); then
  echo "=== not testing: ${failed[*]} failed" >&2
  exit 1
fi
exec npx vitest run
