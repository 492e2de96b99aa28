#!/usr/bin/env bash
# The main job on the embedded simulator: boots a simulated Xen host with
# guests and runs the whole story (capabilities, checkpoint with cancel, save
# and restore, live migration over loopback TCP, a cut migration, Remus).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v go >/dev/null || { echo "demo: Go 1.26 is required (https://go.dev/dl)"; exit 1; }
exec go run ./cmd/xenckpt demo "$@"
