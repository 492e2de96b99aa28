#!/usr/bin/env bash
# The project's whole test suite, from a fresh Debian machine:
#   scripts/test.sh            install packages, then every tier (CI runs exactly this)
#   scripts/test.sh --quick    skip the QEMU tier and long fuzzing (local iteration)
# Tiers: vet + staticcheck, unit tests with -race (simulator, embedded
# xenstored, real xenstored/oxenstored under the LD_PRELOAD shim, Xen's headers,
# verify-stream-v2), short fuzzing of every Fuzz target, a one-iteration
# benchmark smoke run, and real Xen 4.17 booted in QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

scripts/setup.sh

export GOFLAGS="${GOFLAGS:-} -mod=mod"
fuzztime="${FUZZTIME:-10s}"

step() { printf '\n=== %s\n' "$*"; }

step "gofmt"
bad=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$bad" ]; then echo "gofmt needed:"; echo "$bad"; exit 1; fi

step "go vet"
go vet ./...

step "staticcheck"
go tool staticcheck ./...

step "cross-build (darwin, arm64)"
# The library builds everywhere (off Linux the privcmd backend returns
# ErrNotSupported); the simulator, CLI and examples need Linux (memfd).
libs=$(go list -f '{{if .GoFiles}}{{.ImportPath}}{{end}}' ./... | grep -v -E '/(xensim|cmd|examples|internal/e2e)(/|$)')
GOOS=darwin go build $libs
GOOS=darwin go test -c -o /dev/null $(go list ./magic/... ./checkpoint/stream/... ./xenstore/...)
GOARCH=arm64 go build ./...

step "unit and integration tests (-race)"
go test -race -count=1 -timeout 10m ./...

# fuzz runs one target. Go 1.26's fuzz coordinator can report a bare
# "context deadline exceeded" when -fuzztime ends while a worker is busy on a
# loaded machine (golang/go#75804, fixed in Go 1.27): no input failed and
# none is written. Such a run counts as passed; any other failure, or any
# new file under testdata/fuzz/<target> (a crasher), fails the suite.
fuzz() {
  local pkg=$1 f=$2 dir log before after rc=0
  dir="$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$f"
  log=$(mktemp)
  before=$( (ls "$dir" 2>/dev/null || true) | wc -l)
  go test -run '^$' -fuzz "^${f}\$" -fuzztime "$fuzztime" "$pkg" >"$log" 2>&1 || rc=$?
  cat "$log"
  after=$( (ls "$dir" 2>/dev/null || true) | wc -l)
  if [ "$rc" != 0 ] && [ "$before" = "$after" ] &&
    grep -qx '    context deadline exceeded' "$log" &&
    ! grep -q -e 'Failing input written' -e '^panic' -e '_test.go:[0-9]*:' "$log"; then
    echo "note: $f hit Go's fuzz shutdown race (golang/go#75804); no failing input, counted as passed"
    rc=0
  fi
  rm -f "$log"
  return "$rc"
}

step "fuzzing (${fuzztime} per target)"
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "fuzz $pkg $f"
    fuzz "$pkg" "$f"
  done
done

step "benchmark smoke run"
go test -run '^$' -bench . -benchtime=1x -timeout 20m ./...

if [ "$quick" = 0 ] && [ -f internal/e2e/go.mod ]; then
  step "real Xen 4.17 in QEMU"
  (cd internal/e2e && go test -count=1 -timeout 40m -v ./...)
fi
step "all tiers passed"
