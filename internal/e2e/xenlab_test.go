package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/testutil"
)

// payloadTag is the build tag of the in-dom0 tests: without it package
// indom0 has no tests, so `go test ./...` on a host never runs them.
const payloadTag = "xenckpt_dom0"

// labMode is XENCKPT_LAB_MODE ("short" unless "full"); -short forces short.
func labMode() string {
	if !testing.Short() && os.Getenv("XENCKPT_LAB_MODE") == "full" {
		return "full"
	}
	return "short"
}

// TestXenLab boots Xen 4.17 with a Linux dom0 in QEMU, runs the in-dom0
// tests of package indom0 there and reports each as a subtest.
//
// Environment: XENCKPT_LAB_MODE=full adds the slower cases (image export
// and host-side verification, repeated cycles); XENCKPT_LAB_WORK=dir keeps
// the build products, serial log and result tar there instead of a
// temporary directory; XENCKPT_LAB_RUN=regexp runs only the matching in-dom0
// tests and XENCKPT_LAB_SKIP=regexp skips some (go test -run/-skip syntax);
// XENCKPT_LAB_TIMEOUT=duration bounds the QEMU run (default 30m, full 35m);
// XENCKPT_LAB_ACCEL and XENCKPT_LAB_CPU override QEMU's -accel and -cpu.
func TestXenLab(t *testing.T) {
	for _, c := range []string{"qemu-system-x86_64", "xz", "ldd", "modprobe", "timeout", "go"} {
		testutil.RequireCommand(t, c, "apt-get install qemu-system-x86 xz-utils kmod (scripts/setup.sh)")
	}
	testutil.RequireFile(t, "/boot/xen-4.17-amd64.gz", "apt-get install xen-hypervisor-4.17-amd64")
	testutil.RequireFile(t, "/usr/lib/xen-4.17/bin/xl", "apt-get install xen-utils-4.17")
	testutil.RequireFile(t, "/bin/busybox", "apt-get install busybox-static")
	if runtime.GOARCH != "amd64" {
		testutil.SkipOrFail(t, "the lab boots x86_64 Xen", "run on amd64")
	}
	mode := labMode()
	work := os.Getenv("XENCKPT_LAB_WORK")
	if work == "" {
		work = t.TempDir()
	} else {
		work, _ = filepath.Abs(work)
		require.NoError(t, os.MkdirAll(work, 0o755))
	}
	t.Logf("lab: mode %s, work dir %s", mode, work)
	ctx := t.Context()
	start := time.Now()

	// QEMU's whole run, then the payload's share of it (lab.go's default:
	// 3 minutes less), then go test's own timeout inside dom0, so that the
	// innermost limit fires first and names the test that hung.
	timeout := 30 * time.Minute
	if mode == "full" {
		timeout = 35 * time.Minute
	}
	if v := os.Getenv("XENCKPT_LAB_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "XENCKPT_LAB_TIMEOUT")
		timeout = d
	}
	if dl, ok := t.Deadline(); ok {
		// Leave go test's own -timeout a minute for the build and results.
		if left := time.Until(dl) - 2*time.Minute; left < timeout {
			if left < 8*time.Minute {
				t.Fatalf("go test -timeout leaves %v; the lab needs about %v: run with -timeout 40m", time.Until(dl).Round(time.Second), timeout)
			}
			timeout = left
		}
	}
	payload := filepath.Join(work, "payload")
	buildPayload(ctx, t, payload, mode, timeout-4*time.Minute)

	cfg := &Config{
		Work:       work,
		Mode:       mode,
		PayloadDir: payload,
		Export:     "project",
		RequireAll: testutil.InCI(),
		Accel:      os.Getenv("XENCKPT_LAB_ACCEL"),
		CPU:        os.Getenv("XENCKPT_LAB_CPU"),
		Timeout:    timeout,
		Logf:       t.Logf,
	}
	if mode == "full" {
		cfg.Export = "all"
	}
	files, err := Build(ctx, cfg)
	require.NoError(t, err, "building the lab")
	res, err := Boot(ctx, cfg, files)
	t.Logf("lab: QEMU wall %.1fs, dom0 ready after %.1fs, total %.1fs", res.Wall.Seconds(), res.ReadyAfter.Seconds(), time.Since(start).Seconds())
	if err != nil {
		t.Fatalf("%v\nlast serial lines:\n%s", err, tail(res.Serial, 40))
	}
	for _, f := range res.Failures {
		t.Errorf("dom0 step failed: %s", f)
	}

	// Each in-dom0 test becomes a subtest.
	log, err := os.ReadFile(filepath.Join(res.Out, "payload.log"))
	require.NoError(t, err, "step payload: reading payload.log from the result tar")
	tests := ParseGoTest(string(log))
	if len(tests) == 0 {
		t.Errorf("step payload: no tests ran in dom0; payload.log:\n%s", log)
	}
	for _, tr := range tests {
		t.Run(tr.Name, func(t *testing.T) {
			body := strings.Join(tr.Output, "\n")
			switch tr.Status {
			case "PASS":
				t.Log("\n" + body)
			case "SKIP":
				t.Skip("skipped in dom0:\n" + body)
			case "FAIL":
				t.Error("failed in dom0:\n" + body)
			default:
				t.Error("never finished in dom0 (payload crashed or timed out):\n" + body)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(res.Out, "payload", "timings.tsv")); err == nil {
		report := TimingReport(ParseTimings(string(b)))
		_ = os.WriteFile(filepath.Join(res.Out, "timings.md"), []byte(report), 0o644)
		t.Logf("timings (tool, operation, guest, seconds):\n%s\nproject vs xl (medians, this run):\n%s", b, report)
	}
	if !res.Pass {
		t.Errorf("dom0 reported RESULT FAIL (serial: %s)\nfirst causes:\n%s", res.Serial, Digest(tests, 30))
	}
	verifyImages(ctx, t, filepath.Join(res.Out, "images"), mode == "full")
}

// buildPayload builds the in-dom0 test binary (static, tagged) and, when
// the module has one, the CLI, plus the run script dom0 executes.
func buildPayload(ctx context.Context, t *testing.T, dir, mode string, testTimeout time.Duration) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	goBuild := func(step, dir string, args ...string) error {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("step %s: go %s: %w\n%s", step, strings.Join(args, " "), err, out)
		}
		return nil
	}
	require.NoError(t, goBuild("vet payload", ".", "vet", "-tags", payloadTag, "./indom0"))
	require.NoError(t, goBuild("build payload", ".", "test", "-c", "-tags", payloadTag, "-o", filepath.Join(dir, "indom0.test"), "./indom0"))
	// The CLI is built in the main module, with its own go.mod and go.sum.
	if hasMain("../../cmd/xenckpt") {
		// A broken CLI fails the test but does not hide the rest of the
		// lab's results.
		if err := goBuild("build cli", "../..", "build", "-o", filepath.Join(dir, "xenckpt"), "./cmd/xenckpt"); err != nil {
			t.Error(err)
		}
	}
	flags := fmt.Sprintf("-test.v -test.timeout=%ds", int(testTimeout.Seconds()))
	if mode == "short" {
		flags += " -test.short"
	}
	if r := os.Getenv("XENCKPT_LAB_RUN"); r != "" {
		flags += " -test.run='" + strings.ReplaceAll(r, "'", "") + "'"
	}
	if r := os.Getenv("XENCKPT_LAB_SKIP"); r != "" {
		flags += " -test.skip='" + strings.ReplaceAll(r, "'", "") + "'"
	}
	run := "#!/bin/sh\n# Generated by TestXenLab: runs the in-dom0 tests.\ncd \"$(dirname \"$0\")\" && exec ./indom0.test " + flags + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "run"), []byte(run), 0o755))
}

func hasMain(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range m {
		b, err := os.ReadFile(f)
		if err == nil && bytes.Contains(b, []byte("package main")) {
			return true
		}
	}
	return false
}

// verifyImages runs Xen's own verify-stream-v2 on every exported image:
// the project's (always exported) and, in full mode, xl's.
func verifyImages(ctx context.Context, t *testing.T, dir string, wantXL bool) {
	t.Run("verify-stream-v2", func(t *testing.T) {
		tool := "/usr/lib/xen-4.17/bin/verify-stream-v2"
		testutil.RequireFile(t, tool, "apt-get install xen-utils-4.17 python3")
		imgs, _ := filepath.Glob(filepath.Join(dir, "*"))
		var ours, xls int
		for _, img := range imgs {
			base := filepath.Base(img)
			switch {
			case strings.HasPrefix(base, "xenckpt-"):
				ours++
			case strings.HasPrefix(base, "xl-"):
				xls++
			}
			cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
			start := time.Now()
			cmd := exec.CommandContext(cctx, "python3", tool, "-f", "xl", "-i", img)
			// Debian installs Xen's python package outside python's path.
			cmd.Env = append(os.Environ(), "PYTHONPATH=/usr/lib/xen-4.17/lib/python")
			out, err := cmd.CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("step verify-stream-v2 %s: %v\n%s", base, err, out)
				continue
			}
			t.Logf("verify-stream-v2 -f xl %s: ok (%.1fs)", base, time.Since(start).Seconds())
		}
		if ours == 0 && os.Getenv("XENCKPT_LAB_RUN") != "" && len(imgs) == 0 {
			// A developer's partial run: the tests that write images
			// may not have run at all.
			t.Skipf("no images exported: XENCKPT_LAB_RUN=%q selected no test that writes one", os.Getenv("XENCKPT_LAB_RUN"))
		}
		if ours == 0 {
			t.Errorf("no image written by the project was exported from dom0 (%s)", dir)
		}
		if wantXL && xls == 0 {
			t.Errorf("no xl image was exported from dom0 (%s)", dir)
		}
	})
}

func tail(p string, n int) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
