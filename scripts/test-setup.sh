#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh machine of this kind (Debian 12,
# root): Podman (real containers) with the test images, PostgreSQL. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-podman.sh
bash scripts/start-postgres.sh >/dev/null
bash scripts/setup-chromium.sh
