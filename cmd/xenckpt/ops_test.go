package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	img := filepath.Join(t.TempDir(), "img")
	// A guest with no cancel convention: a typed refusal, the guest runs on.
	r := xenckpt(t, t.Context(), "checkpoint", "--sim", "--guest-convention", "legacy", "--guest-mem", "2", "--json", "-o", img)
	assert.Equal(t, exitUnsupported, r.code, r.stdout)
	m := jsonOf(t, r)
	assert.Equal(t, "unsupported", m["error"].(map[string]any)["class"])
	assert.Equal(t, true, m["source_running"])
	r = xenckpt(t, t.Context(), "checkpoint", "--sim", "--guest-convention", "legacy", "--guest-mem", "2", "--slow-resume", "--json", "-o", img)
	require.Equal(t, exitOK, r.code, r.stdout)
	assert.Equal(t, true, jsonOf(t, r)["source_running"])
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
	assert.Equal(t, true, rm["guest_running"])
	assert.Equal(t, 1.0, rm["domains_left"])
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
		"--interval", "10ms", "--epochs", "5", "--json", addr)
	rr := <-done
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	m := jsonOf(t, r)
	assert.Equal(t, "replicate", m["operation"])
	assert.Equal(t, 5.0, m["checkpoints"])
	assert.Equal(t, true, m["source_running"])
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
