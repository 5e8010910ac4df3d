#!/usr/bin/env bash
# Installs and configures Podman as the container engine of the `docker` executor, starts its
# Docker-compatible API socket and builds the test images. Idempotent and non-interactive:
# safe to run on every CI start and on a developer machine (as root, like these machines).
#
#   scripts/setup-podman.sh            # everything
#   SKIP_IMAGES=1 scripts/setup-podman.sh
#
# Environment: PODMAN_SOCKET (default /run/podman/podman.sock), SKIP_IMAGES=1, SKIP_NETWORK_CHECK=1.
# See ../shared/ENVIRONMENT.md for why runc and the ulimits are needed on these hosts.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

SOCKET="${PODMAN_SOCKET:-/run/podman/podman.sock}"
CONF=/etc/containers/containers.conf
LOG="$SOCKET.log"
PIDFILE="$SOCKET.pid"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "setup-podman: $*"; }
die() { echo "setup-podman: $*" >&2; exit 1; }

if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || die "must run as root"
  exec sudo -E -n bash "${BASH_SOURCE[0]}" "$@"
fi

# --- 1. packages ------------------------------------------------------------------------------
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
command -v runc >/dev/null 2>&1 || [[ -x /usr/sbin/runc ]] || missing+=(runc)
{ [[ -x /bin/busybox ]] && dpkg -s busybox-static >/dev/null 2>&1; } || missing+=(busybox-static)
dpkg -s uidmap >/dev/null 2>&1 || missing+=(uidmap)
# The init the executor runs steps under (HostConfig.Init), so SIGTERM reaches the step's shell.
[[ -x /usr/libexec/podman/catatonit ]] || missing+=(catatonit)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  # Try without refreshing the package lists first; refresh only if that fails.
  if ! apt-get install -y -q "${missing[@]}" </dev/null; then
    apt-get update -q </dev/null
    apt-get install -y -q "${missing[@]}" </dev/null
  fi
else
  log "packages present (podman, runc, busybox-static, uidmap, catatonit)"
fi

# --- 2. /etc/containers/containers.conf ---------------------------------------------------------
# Sets keys inside TOML sections, keeping everything else in the file: replaces an uncommented
# `key = …` in the section, inserts it after the section header, or appends the section.
set_toml_key() { # file section key value
  local file="$1" section="$2" key="$3" value="$4" tmp
  tmp="$(mktemp)"
  awk -v section="[$section]" -v key="$key" -v value="$value" '
    function flush_key() { if (in_section && !done) { print key " = " value; done = 1 } }
    {
      line = $0; trimmed = line; gsub(/^[ \t]+|[ \t]+$/, "", trimmed)
      if (trimmed ~ /^\[/) {
        flush_key()
        in_section = (trimmed == section); if (in_section) seen = 1
        print line; next
      }
      if (in_section && !done && trimmed ~ ("^" key "[ \t]*=")) {
        print key " = " value; done = 1
        # A multi-line array value: skip its continuation lines up to the closing bracket.
        if (trimmed ~ /\[/ && trimmed !~ /\]/) skipping = 1
        next
      }
      if (skipping) { if (trimmed ~ /\]/) skipping = 0; next }
      print line
    }
    END {
      flush_key()
      if (!seen) { print ""; print section; print key " = " value }
    }' "$file" >"$tmp"
  if ! cmp -s "$tmp" "$file"; then
    cp "$tmp" "$file"
    changed=1
  fi
  rm -f "$tmp"
}

changed=0
mkdir -p /etc/containers
[[ -f "$CONF" ]] || touch "$CONF"
set_toml_key "$CONF" containers default_ulimits '["nofile=20000:20000", "nproc=1000:1000"]'
set_toml_key "$CONF" engine runtime '"runc"'
if ((changed)); then log "updated $CONF"; else log "$CONF already configured"; fi

# --- 3. the Docker-compatible API socket ----------------------------------------------------------
socket_answers() {
  curl -fsS --max-time 2 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1
}
if ! command -v curl >/dev/null 2>&1; then
  socket_answers() { podman --url "unix://$SOCKET" version >/dev/null 2>&1; }
fi

if ((changed)) && socket_answers; then
  # A service started before the config changed still runs with the old settings.
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; then
    log "restarted the API service to apply the new configuration"
    for _ in $(seq 1 50); do socket_answers || break; sleep 0.1; done
  else
    log "warning: an API service not started by this script is running; restart it to apply $CONF"
  fi
fi

if socket_answers; then
  log "API socket answers at unix://$SOCKET"
else
  mkdir -p "$(dirname "$SOCKET")"
  rm -f "$SOCKET"
  log "starting podman system service on unix://$SOCKET (log: $LOG)"
  # setsid + nohup: the service outlives this script and the CI step that ran it. From /: the
  # conmon it starts per container writes a file `oom` into its working directory when the
  # container is OOM-killed (a test does that), which must not be the repository.
  setsid nohup env -C / podman system service --time=0 "unix://$SOCKET" </dev/null >"$LOG" 2>&1 &
  echo $! | tee "$PIDFILE" >/dev/null
  for _ in $(seq 1 100); do
    socket_answers && break
    sleep 0.2
  done
  socket_answers || { cat "$LOG" >&2 || true; die "the API socket did not answer within 20 s"; }
  log "API socket answers at unix://$SOCKET"
fi

# --- 4. test images -----------------------------------------------------------------------------
if [[ "${SKIP_IMAGES:-0}" != 1 ]]; then
  "$HERE/build-test-images.sh"
fi

# --- 5. container networking sanity check ----------------------------------------------------------
# Builds with services share one network namespace: an infra container on the default bridge
# network, which services and steps join (`--network container:<infra>`), so a service is
# localhost:<port> for every step. Check exactly that once here, so a broken host fails loudly
# in set-up rather than as a test timeout.
if [[ "${SKIP_IMAGES:-0}" != 1 && "${SKIP_NETWORK_CHECK:-0}" != 1 ]]; then
  image="${SLIPWAY_TEST_IMAGE:-localhost/busybox:latest}"
  tag="slipway-netcheck-$$"
  cleanup_netcheck() {
    # One at a time: the service depends on the infra container's namespace.
    podman rm -f -t 0 "$tag-svc" >/dev/null 2>&1 || true
    podman rm -f -t 0 "$tag-infra" >/dev/null 2>&1 || true
  }
  trap cleanup_netcheck EXIT
  ok=0
  if podman run -d -i --name "$tag-infra" "$image" sh -c 'read _' >/dev/null &&
    podman run -d --name "$tag-svc" --network "container:$tag-infra" "$image" httpd -f -p 18080 -h /etc >/dev/null &&
    podman run --rm --network "container:$tag-infra" "$image" sh -c \
      'i=0; until wget -q -O /dev/null http://localhost:18080/passwd; do i=$((i+1)); [ $i -lt 50 ] || exit 1; sleep 0.1; done' &&
    podman exec "$tag-infra" sh -c 'ip -4 addr show | grep -q "inet .* eth0"'; then
    ok=1
  fi
  cleanup_netcheck
  trap - EXIT
  if ((ok)); then
    log "container networking works (default bridge network; a service on localhost in a shared namespace)"
  else
    die "container networking check failed: a step could not reach a service on localhost (see 'podman network ls', 'podman run --rm $image ip addr')"
  fi
fi
log "done"
