#!/usr/bin/env bash
# Builds the images the test suite uses, locally (no registry is reachable on these machines).
#   localhost/busybox:latest  – /bin/busybox from Debian's busybox-static, with /bin/sh and the
#                               usual applet links, imported with `podman import`.
# Idempotent: an image that already exists is left alone (FORCE=1 rebuilds it).
set -euo pipefail

IMAGE="${SLIPWAY_TEST_IMAGE:-localhost/busybox:latest}"

if ! command -v podman >/dev/null 2>&1; then
  echo "build-test-images: podman is not installed (run scripts/setup-podman.sh)" >&2
  exit 1
fi

if [[ "${FORCE:-0}" != 1 ]] && podman image exists "$IMAGE"; then
  echo "build-test-images: $IMAGE already present"
  exit 0
fi

BUSYBOX=""
for candidate in /bin/busybox /usr/bin/busybox; do
  # The dynamically linked `busybox` package also installs /bin/busybox; only the static one
  # runs in an image without a libc.
  if [[ -x "$candidate" ]] && ! ldd "$candidate" >/dev/null 2>&1; then
    BUSYBOX="$candidate"
    break
  fi
done
if [[ -z "$BUSYBOX" ]]; then
  echo "build-test-images: no statically linked busybox found; apt-get install busybox-static" >&2
  exit 1
fi

previous="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/workspace"
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
# Links for every applet (sh, wget, nc, httpd, sleep, …) so images behave like docker.io/busybox.
for applet in $("$root/bin/busybox" --list); do
  [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

tar -C "$root" -c . | podman import --quiet \
  --change 'CMD ["/bin/sh"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  - "$IMAGE" >/dev/null
# A rebuild leaves the old image untagged: drop it unless a container still uses it.
[[ -n "$previous" ]] && podman rmi "$previous" >/dev/null 2>&1 || true
echo "build-test-images: built $IMAGE from $BUSYBOX"
