#!/usr/bin/env bash
# Regenerates ztypes_le64.go and abicheck/zlayout.go from the Xen headers in
# /usr/include/xen (Debian libxen-dev 4.17). Needs cgo and gcc. Run by
# go generate in internal/abi; the freshness test runs it with an output
# directory (default: this directory) and compares.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-.}
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
go tool cgo -objdir "$d" -godefs types_xen.go | go run mkpost.go -layout "$d/zlayout.go" > "$d/ztypes.go"
mkdir -p "$out/abicheck"
mv "$d/ztypes.go" "$out/ztypes_le64.go"
mv "$d/zlayout.go" "$out/abicheck/zlayout.go"
