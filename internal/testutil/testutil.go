// Package testutil holds the project's test helpers: honest skips that
// become failures in CI, and small environment checks.
//
// It imports testing only through testing.TB, so any package's tests may use
// it; it is internal because its API is for this module's tests alone.
package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (the CI environment variable
// is set and not "false" or "0"), or with XENCKPT_REQUIRE_ALL=1. There a
// missing component is a failure, never a skip.
func InCI() bool {
	if v := os.Getenv("XENCKPT_REQUIRE_ALL"); v == "1" {
		return true
	}
	v, ok := os.LookupEnv("CI")
	return ok && v != "" && v != "false" && v != "0"
}

// SkipOrFail skips the test with reason and the fix that would let it run;
// in CI (see InCI) it fails the test instead, so a skip never hides a
// missing component there.
func SkipOrFail(tb testing.TB, reason, fix string) {
	tb.Helper()
	msg := fmt.Sprintf("%s (fix: %s)", reason, fix)
	if InCI() {
		tb.Fatalf("required in CI: %s", msg)
	}
	tb.Skip(msg)
}

// RequireFile skips (or fails in CI) unless path exists.
func RequireFile(tb testing.TB, path, fix string) {
	tb.Helper()
	if _, err := os.Stat(path); err != nil {
		SkipOrFail(tb, fmt.Sprintf("%s is not available: %v", path, err), fix)
	}
}

// RequireCommand skips (or fails in CI) unless name is on PATH, and returns
// its path.
func RequireCommand(tb testing.TB, name, fix string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(tb, fmt.Sprintf("command %s not found", name), fix)
	}
	return p
}

// RequireRoot skips (or fails in CI) unless the process runs as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(tb, "test needs root", "run the test binary as root (sudo)")
	}
}
