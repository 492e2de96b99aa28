package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/internal/testutil"
)

func TestCheckpointSim(t *testing.T) {
	for _, tc := range []struct {
		guestType, conv, want string
	}{
		{"pv", "seed", "seed"},
		{"pv32", "seed", "seed"},
		{"pvh", "linux", "upstream"},
	} {
		t.Run(tc.guestType+"-"+tc.conv, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			r := xenckpt(t, t.Context(), "checkpoint", "--sim", "--guest-type", tc.guestType, "--guest-convention", tc.conv,
				"--guest-mem", "4", "--live", "--json", "-o", img)
			require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
			m := jsonOf(t, r)
			assert.Equal(t, "checkpoint", m["operation"])
			assert.Equal(t, true, m["sim"])
			assert.Equal(t, tc.want, m["convention"])
			assert.Equal(t, true, m["source_running"])
			assert.Equal(t, true, m["live"])
			assert.GreaterOrEqual(t, m["pages"], float64(1024))
			assert.Greater(t, m["pause_ms"], 0.0)
			assert.Nil(t, m["error"])
			// An idle guest leaves next to nothing dirty after the first
			// pass (its tick counter's page at most).
			assert.Equal(t, "dirty-threshold", m["precopy_stop"])

			// The image is a valid stream of that guest type.
			r = xenckpt(t, t.Context(), "inspect", "--json", img)
			require.Equal(t, exitOK, r.code, r.stdout)
			want := "pv"
			if tc.guestType == "pvh" {
				want = "hvm"
			}
			assert.Equal(t, want, jsonOf(t, r)["domain_type"])
		})
	}
}

func TestCheckpointLegacyRefused(t *testing.T) {
	// An earlier image at -o survives every refusal untouched.
	img := writeFile(t, "img", []byte("an earlier image"))
	unchanged := func(t *testing.T) {
		t.Helper()
		b, err := os.ReadFile(img)
		require.NoError(t, err)
		assert.Equal(t, "an earlier image", string(b), "a refused checkpoint must not touch an existing FILE")
		left, err := filepath.Glob(filepath.Join(filepath.Dir(img), ".*partial*"))
		require.NoError(t, err)
		assert.Empty(t, left, "no temporary image is left behind")
	}
	// A PV guest with no cancel convention: a typed refusal, the guest runs on.
	r := xenckpt(t, t.Context(), "checkpoint", "--sim", "--guest-convention", "legacy", "--guest-mem", "2", "--json", "-o", img)
	assert.Equal(t, exitUnsupported, r.code, r.stdout)
	m := jsonOf(t, r)
	assert.Equal(t, "unsupported", m["error"].(map[string]any)["class"])
	assert.Equal(t, true, m["source_running"])
	unchanged(t)

	// A PVH guest with PV drivers and no convention is refused before it is
	// suspended (resumed in its domain it would crash), --slow-resume or not.
	for _, slow := range []bool{false, true} {
		args := []string{"checkpoint", "--sim", "--guest-type", "pvh", "--guest-convention", "legacy", "--guest-mem", "2", "-o", img}
		if slow {
			args = append(args, "--slow-resume")
		}
		r = xenckpt(t, t.Context(), append(args, "--json")...)
		assert.Equal(t, exitUnsupported, r.code, r.stdout)
		m = jsonOf(t, r)
		e := m["error"].(map[string]any)
		assert.Equal(t, "unsupported", e["class"])
		assert.Contains(t, e["message"], "cannot be resumed in its domain")
		assert.Equal(t, true, m["source_running"])
		assert.Equal(t, "running", m["guest_state"])
		assert.Equal(t, 0.0, m["pages"], "refused before any page was copied")
		assert.Equal(t, 0.0, m["pause_ms"], "refused before the suspend")
		unchanged(t)

		r = xenckpt(t, t.Context(), args...)
		assert.Equal(t, exitUnsupported, r.code)
		assert.Contains(t, r.stdout, "FAILED")
		assert.Contains(t, r.stdout, "hint: an HVM/PVH guest needs a cancel convention")
		assert.Contains(t, r.stderr, "cannot be resumed in its domain")
	}

	r = xenckpt(t, t.Context(), "checkpoint", "--sim", "--guest-convention", "legacy", "--guest-mem", "2", "--slow-resume", "--json", "-o", img)
	require.Equal(t, exitOK, r.code, r.stdout)
	assert.Equal(t, true, jsonOf(t, r)["source_running"])
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	assert.NotEqual(t, "an earlier image", string(b), "a completed checkpoint replaces FILE")
}

// TestReplicateLegacyPVHRefused: Remus needs the guest back in its domain
// after every epoch, so a PVH guest without a convention is refused at
// once too, and the primary runs on.
func TestReplicateLegacyPVHRefused(t *testing.T) {
	r := xenckpt(t, t.Context(), "replicate", "--sim", "--guest-type", "pvh", "--guest-convention", "legacy", "--guest-mem", "2",
		"--epochs", "1", "--ssh", "", "--receive-command", "cat >/dev/null", "--json", "somehost")
	assert.Equal(t, exitUnsupported, r.code, r.stdout)
	m := jsonOf(t, r)
	assert.Equal(t, "unsupported", m["error"].(map[string]any)["class"])
	assert.Equal(t, true, m["source_running"])
	assert.Nil(t, m["checkpoints"])
}

// TestMigrateLegacyPVHLeftSuspended: a PVH guest without a convention can
// be migrated, but when the link fails after the suspend it cannot be
// resumed in its domain. Exit 7 would promise a resumed source: the
// command exits 4 and says the domain is left suspended.
func TestMigrateLegacyPVHLeftSuspended(t *testing.T) {
	testutil.RequireCommand(t, "sh", "install a POSIX shell")
	testutil.RequireCommand(t, "head", "install coreutils")
	// The "receiver" says it is ready, takes 200 kB (the image header and a
	// few pages, sent after the suspend in a non-live migration) and
	// goes away.
	r := xenckpt(t, t.Context(), "migrate", "--sim", "--live=false", "--guest-type", "pvh", "--guest-convention", "legacy",
		"--guest-mem", "8", "--ssh", "", "--receive-command", `printf '`+"xenckpt migration receiver ready"+`\n'; head -c 200000 >/dev/null`,
		"--json", "somehost")
	assert.Equal(t, exitUnsupported, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	e := m["error"].(map[string]any)
	assert.Equal(t, "unsupported", e["class"])
	assert.Contains(t, e["message"], "LEFT SUSPENDED")
	assert.Equal(t, false, m["source_running"])
	assert.Equal(t, "suspended", m["guest_state"])
	assert.Nil(t, m["convention"], "the guest was not resumed with any convention")
	assert.Nil(t, m["resumed_by_cli"])

	// The same with a PV guest is resumed (slow resume) and exits 7.
	r = xenckpt(t, t.Context(), "migrate", "--sim", "--live=false", "--guest-convention", "legacy",
		"--guest-mem", "8", "--ssh", "", "--receive-command", `printf '`+"xenckpt migration receiver ready"+`\n'; head -c 200000 >/dev/null`,
		"--json", "somehost")
	assert.Equal(t, exitTransfer, r.code, r.stdout+r.stderr)
	assert.Equal(t, true, jsonOf(t, r)["source_running"])
}

// TestMigrateStalledPipe: --io-timeout holds for a link through a
// receive command (ssh) too. The receiver says it is ready and then
// stalls with the guest suspended (non-live): the write times out, the
// guest is resumed and the stuck receiver is killed, in seconds.
func TestMigrateStalledPipe(t *testing.T) {
	testutil.RequireCommand(t, "sh", "install a POSIX shell")
	testutil.RequireCommand(t, "sleep", "install coreutils")
	start := time.Now()
	r := xenckpt(t, t.Context(), "migrate", "--sim", "--live=false", "--guest-mem", "8", "--io-timeout", "300ms",
		"--ssh", "", "--receive-command", `printf '`+"xenckpt migration receiver ready"+`\n'; sleep 50`, "--json", "somehost")
	assert.Equal(t, exitTransfer, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	assert.Contains(t, m["error"].(map[string]any)["message"], "timeout")
	assert.Equal(t, true, m["source_running"])
	assert.Less(t, time.Since(start), 30*time.Second, "neither the stalled link nor the stuck receiver holds the command")
}

// TestImageOnDevice: -o naming a device writes in place; a failure never
// removes the device.
func TestImageOnDevice(t *testing.T) {
	testutil.RequireFile(t, "/dev/full", "run on Linux with /dev/full")
	r := xenckpt(t, t.Context(), "save", "--sim", "--guest-mem", "2", "--json", "-o", "/dev/null")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	r = xenckpt(t, t.Context(), "checkpoint", "--sim", "--guest-mem", "2", "--json", "-o", "/dev/full")
	assert.NotEqual(t, exitOK, r.code, r.stdout)
	assert.Equal(t, true, jsonOf(t, r)["source_running"])
	for _, dev := range []string{"/dev/null", "/dev/full"} {
		fi, err := os.Stat(dev)
		require.NoError(t, err, "%s must survive", dev)
		assert.NotZero(t, fi.Mode()&os.ModeDevice, dev)
	}
}

func TestGuestFailureClasses(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	for _, tc := range []struct {
		behaviour string
		code      int
	}{
		{"never-ack", exitGuest},
		{"ack-only", exitGuest},
		{"crash", exitGuest},
	} {
		r := xenckpt(t, t.Context(), "save", "--sim", "--guest-mem", "2", "--guest-behaviour", tc.behaviour,
			"--ack-timeout", "200ms", "--suspend-timeout", "300ms", "--json", "-o", img)
		assert.Equal(t, tc.code, r.code, "%s: %s", tc.behaviour, r.stdout)
		m := jsonOf(t, r)
		assert.Equal(t, "guest", m["error"].(map[string]any)["class"], tc.behaviour)
		_, err := os.Stat(img)
		assert.True(t, os.IsNotExist(err), "a failed save leaves no partial image")
	}
}

func TestCancelResumesGuest(t *testing.T) {
	// Ctrl-C while the guest is being asked to suspend: exit 130, and the
	// guest is running afterwards. Cancel once the debug log says the
	// request is out: a fixed 300 ms could end before the simulated guest
	// had booted on a loaded machine.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := xenckptAtStep(t, ctx, `"requested suspend"`, cancel, "-vv", "checkpoint", "--sim", "--guest-mem", "2", "--guest-behaviour", "never-ack",
		"--ack-timeout", "30s", "--json", "-o", filepath.Join(t.TempDir(), "img"))
	assert.Equal(t, exitCancelled, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	assert.Equal(t, "cancelled", m["error"].(map[string]any)["class"])
	assert.Equal(t, true, m["source_running"])
}

func TestSaveRestoreSim(t *testing.T) {
	img := filepath.Join(t.TempDir(), "img")
	r := xenckpt(t, t.Context(), "save", "--sim", "--guest-mem", "4", "--json", "-o", img)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	saved := jsonOf(t, r)
	assert.Nil(t, saved["source_running"], "a completed save does not report the destroyed source")
	assert.Nil(t, saved["precopy_stop"], "no precopy without --live")

	// A separate simulated host restores the image: the guest continues.
	r = xenckpt(t, t.Context(), "restore", "--sim", "--json", img)
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	assert.Equal(t, "restore", m["operation"])
	assert.Equal(t, true, m["guest_running"])
	assert.Equal(t, saved["pages"], m["pages"])
	assert.Greater(t, m["guest_counter"], 0.0)
	assert.Equal(t, 1.0, m["domains_left"])

	// A truncated image fails as an image error and leaves nothing behind.
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	bad := writeFile(t, "bad", b[:len(b)/2])
	r = xenckpt(t, t.Context(), "restore", "--sim", "--json", bad)
	assert.Equal(t, exitImage, r.code, r.stdout)
	assert.Equal(t, 0.0, jsonOf(t, r)["domains_left"])
}

// freePort returns a loopback address that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func TestMigrateSim(t *testing.T) {
	addr := freePort(t)
	done := startReceiver(t, "--sim", "--json", "--listen", addr)
	r := xenckpt(t, t.Context(), "migrate", "--sim", "--guest-mem", "8", "--guest-dirty-rate", "500", "--json", addr)
	rr := <-done
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Equal(t, exitOK, rr.code, rr.stdout+rr.stderr)
	m, rm := jsonOf(t, r), jsonOf(t, rr)
	assert.Equal(t, "migrate", m["operation"])
	assert.Equal(t, addr, m["peer"])
	assert.Equal(t, true, m["live"])
	assert.Equal(t, false, m["source_running"])
	assert.Contains(t, precopyStops, m["precopy_stop"])
	assert.Equal(t, true, rm["guest_running"])
	assert.Equal(t, 1.0, rm["domains_left"])
}

// precopyStops are the values of precopy_stop.
var precopyStops = []any{"dirty-threshold", "downtime", "dirty-rate-exceeds-bandwidth", "max-iterations"}

// TestMigratePrecopyStop: a guest rewriting all its memory every tick over
// a slow link, with the downtime rules off (--max-downtime negative) and a
// threshold nothing meets, stops precopy at --max-iterations and says so.
func TestMigratePrecopyStop(t *testing.T) {
	addr := freePort(t)
	done := startReceiver(t, "--sim", "--json", "--listen", addr)
	r := xenckpt(t, t.Context(), "migrate", "--sim", "--guest-mem", "1", "--guest-dirty-rate", "200000",
		"--rate-limit", "4", "--dirty-threshold", "1", "--max-downtime=-1ns", "--max-iterations", "2", "--json", addr)
	rr := <-done
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	require.Equal(t, exitOK, rr.code, rr.stdout+rr.stderr)
	m := jsonOf(t, r)
	assert.Equal(t, "max-iterations", m["precopy_stop"])
	assert.Equal(t, 2.0, m["rounds"])
	assert.Nil(t, jsonOf(t, rr)["precopy_stop"], "the receiver ran no precopy")
}

// TestPrecopyStopText: the human output names why precopy stopped, for
// every reason the library has.
func TestPrecopyStopText(t *testing.T) {
	for _, stop := range []checkpoint.PrecopyStop{checkpoint.StopDirtyThreshold, checkpoint.StopDowntime,
		checkpoint.StopDiverging, checkpoint.StopMaxIterations} {
		var r opResult
		r.fromResult(&checkpoint.Result{Pages: 10, Rounds: 3, PrecopyStop: stop})
		var b strings.Builder
		r.text(&b)
		assert.Contains(t, b.String(), "3 precopy rounds (stopped: "+string(stop)+")")
		assert.Contains(t, precopyStops, r.PrecopyStop)
	}
	// No precopy: nothing said about it.
	var r opResult
	r.fromResult(&checkpoint.Result{Pages: 10})
	var b strings.Builder
	r.text(&b)
	assert.NotContains(t, b.String(), "precopy")
	assert.Empty(t, r.PrecopyStop)
}

func TestMigrateNoReceiver(t *testing.T) {
	r := xenckpt(t, t.Context(), "migrate", "--sim", "--guest-mem", "2", "--json", freePort(t))
	assert.Equal(t, exitTransfer, r.code, r.stdout)
	m := jsonOf(t, r)
	assert.Equal(t, true, m["source_running"])
	assert.Equal(t, "transfer", m["error"].(map[string]any)["class"])
}

func TestReplicateSim(t *testing.T) {
	addr := freePort(t)
	done := startReceiver(t, "--sim", "--remus", "--json", "--listen", addr)
	r := xenckpt(t, t.Context(), "replicate", "--sim", "--guest-mem", "4", "--guest-dirty-rate", "200",
		"--interval", "10ms", "--epochs", "5", "--live", "--json", addr)
	rr := <-done
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	assert.Equal(t, "replicate", m["operation"])
	assert.Equal(t, 5.0, m["checkpoints"])
	assert.Equal(t, true, m["source_running"])
	assert.Contains(t, precopyStops, m["precopy_stop"], "--live: the first epoch's precopy")
	// An orderly end: the backup discards its replica.
	require.Equal(t, exitOK, rr.code, rr.stdout+rr.stderr)
	rm := jsonOf(t, rr)
	assert.Equal(t, "receive-remus", rm["operation"])
	assert.Equal(t, false, rm["failed_over"])
	assert.Equal(t, 0.0, rm["domains_left"])
}

func TestReplicateFailover(t *testing.T) {
	// The primary is interrupted (Ctrl-C) mid-replication: the stream is
	// cut, the backup fails over to its last complete checkpoint. Under
	// load the first (full) checkpoint can take long: wait longer if the
	// primary had not completed one yet.
	for _, after := range []time.Duration{time.Second, 5 * time.Second} {
		addr := freePort(t)
		done := startReceiver(t, "--sim", "--remus", "--json", "--listen", addr)
		// Count the delay from the connection (the guest is booted by
		// then), not from the start of a possibly slow boot.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		r := xenckptAtStep(t, ctx, `"msg":"connected"`, func() { time.AfterFunc(after, cancel) },
			"-v", "replicate", "--sim", "--guest-mem", "4", "--interval", "20ms", "--json", addr)
		rr := <-done
		t.Logf("primary: %s\nbackup: %s", r.stdout, rr.stdout)
		m, rm := jsonOf(t, r), jsonOf(t, rr)
		assert.Equal(t, true, m["source_running"], "the primary runs on")
		if m["checkpoints"] == nil {
			assert.Equal(t, exitUnsupported, rr.code, "no complete checkpoint: nothing to fail over to")
			assert.Equal(t, 0.0, rm["domains_left"])
			continue
		}
		assert.Equal(t, exitOK, r.code, "stopping an endless replication with Ctrl-C is not a failure")
		require.Equal(t, exitOK, rr.code)
		assert.Equal(t, true, rm["failed_over"])
		assert.Equal(t, true, rm["guest_running"])
		assert.NotZero(t, rm["domain"])
		return
	}
	t.Fatal("the primary never completed a checkpoint")
}

func TestCapsSim(t *testing.T) {
	for _, tc := range []struct {
		guestType, conv, want, source string
		cancel                        any
	}{
		{"pv", "seed", "seed", "magic", 0.0},
		{"pvh", "linux", "upstream", "elf-note", 1.0},
		{"pv", "legacy", "none", "default", nil},
	} {
		r := xenckpt(t, t.Context(), "caps", "--sim", "--guest-type", tc.guestType, "--guest-convention", tc.conv, "--guest-mem", "1", "--json")
		require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
		m := jsonOf(t, r)
		assert.Equal(t, tc.want, m["convention"], tc.conv)
		assert.Equal(t, tc.source, m["convention_source"], tc.conv)
		assert.Equal(t, tc.cancel, m["cancel_value"], tc.conv)
		assert.Equal(t, "1", m["feature_suspend"])
	}
}

func TestDomainArgs(t *testing.T) {
	for _, args := range [][]string{
		{"checkpoint", "-o", "x"},               // DOMID missing
		{"checkpoint", "abc", "-o", "x"},        // not a number
		{"checkpoint", "0", "-o", "x"},          // dom0
		{"checkpoint", "--sim", "3", "-o", "x"}, // DOMID with --sim
		{"checkpoint", "--sim"},                 // -o missing
		{"migrate", "--sim"},                    // HOST missing
		{"save", "--sim", "--guest-type", "arm", "-o", "x"},
		{"caps"},
	} {
		r := xenckpt(t, t.Context(), args...)
		assert.Equal(t, exitUsage, r.code, "%v: %s", args, r.stderr)
	}
}

func TestMigrateInterrupted(t *testing.T) {
	addr := freePort(t)
	done := startReceiver(t, "--sim", "--json", "--listen", addr, "--io-timeout", "5s")
	// 32 MiB at 16 MiB/s take 2 s once connected: Ctrl-C half a second
	// after the connection lands mid-stream. (A delay counted from the
	// start could fire before the connection on a loaded machine, and the
	// receiver would then wait for one forever.)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := xenckptAtStep(t, ctx, `"msg":"connected"`, func() { time.AfterFunc(500*time.Millisecond, cancel) },
		"-v", "migrate", "--sim", "--guest-mem", "32", "--rate-limit", "16", "--json", addr)
	rr := <-done
	t.Logf("migrate: %s\nreceive: %s", r.stdout, rr.stdout)
	assert.Equal(t, exitCancelled, r.code, r.stdout)
	m := jsonOf(t, r)
	assert.Equal(t, true, m["source_running"], "Ctrl-C resumes the source")
	assert.NotEqual(t, exitOK, rr.code, rr.stdout)
	assert.Equal(t, 0.0, jsonOf(t, rr)["domains_left"], "the receiver destroys its half-built domain")
}
