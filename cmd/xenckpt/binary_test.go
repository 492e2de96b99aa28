package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
)

// buildBinary builds xenckpt once per test process, for the tests that
// need it as a separate process.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		var dir string
		if dir, binErr = os.MkdirTemp("", "xenckpt-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(dir, "xenckpt")
		binOut, binErr = exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	})
	require.NoError(t, binErr, "%s", binOut)
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestMigrateOverPipe runs the receiver as a child process speaking on its
// stdin/stdout, as "ssh HOST xenckpt receive" does (here --ssh "" runs it
// locally, like xl migrate -s "").
func TestMigrateOverPipe(t *testing.T) {
	bin := buildBinary(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "migrate", "--sim", "--guest-mem", "4", "--json",
		"--ssh", "", "--receive-command", bin+" receive --sim --json", "somehost")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stdout: %s\nstderr: %s", stdout.String(), stderr.String())

	var m map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &m), stdout.String())
	assert.Equal(t, "migrate", m["operation"])
	assert.Equal(t, "somehost", m["peer"])
	assert.Equal(t, false, m["source_running"])

	// The receiver's result went to its stderr (stdout carried the stream).
	var rm map[string]any
	dec := json.NewDecoder(strings.NewReader(stderr.String()))
	require.NoError(t, dec.Decode(&rm), stderr.String())
	assert.Equal(t, "receive", rm["operation"])
	assert.Equal(t, "stdio", rm["peer"])
	assert.Equal(t, true, rm["guest_running"])
}

// TestVerboseLogs: -v gives structured logs on stderr, stdout stays clean.
func TestVerboseLogs(t *testing.T) {
	r := xenckpt(t, t.Context(), "-vv", "checkpoint", "--sim", "--guest-mem", "1", "-o", filepath.Join(t.TempDir(), "img"), "--json")
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, `"msg":"simulated guest booted"`)
	assert.Contains(t, r.stderr, `"level":"DEBUG"`, "library debug records pass through")
	jsonOf(t, r) // stdout is one JSON document
	r = xenckpt(t, t.Context(), "-v", "checkpoint", "--sim", "--guest-mem", "1", "-o", filepath.Join(t.TempDir(), "img"))
	require.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "level=INFO msg=\"simulated guest booted\"")
}

// TestInterruptBinary: Ctrl-C (SIGINT) on the real process while the guest
// is being asked to suspend: exit 130, and the guest runs on.
func TestInterruptBinary(t *testing.T) {
	bin := buildBinary(t)
	var stdout bytes.Buffer
	var stderr lockedBuffer
	cmd := exec.CommandContext(t.Context(), bin, "checkpoint", "--sim", "--guest-mem", "1", "--guest-behaviour", "never-ack",
		"--ack-timeout", "30s", "--json", "-o", filepath.Join(t.TempDir(), "img"), "-vv")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	// Interrupt once the debug log says the suspend request is out (a
	// fixed delay after the boot could land before it, or before the boot
	// on a loaded machine).
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), `"msg":"requested suspend"`) {
		require.True(t, time.Now().Before(deadline), "no suspend request logged; stderr: %s", stderr.String())
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	err := cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "stderr: %s", stderr.String())
	assert.Equal(t, exitCancelled, ee.ExitCode())
	var m map[string]any
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &m), stdout.String())
	assert.Equal(t, "cancelled", m["error"].(map[string]any)["class"])
	assert.Equal(t, true, m["source_running"])
}

// lockedBuffer is a bytes.Buffer a child process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReplicateToFileAndInspect records a Remus stream through a local
// pipe command and reads it back: one checkpoint boundary per epoch.
func TestReplicateToFileAndInspect(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "remus.stream")
	r := xenckpt(t, t.Context(), "replicate", "--sim", "--guest-mem", "2", "--epochs", "3", "--interval", "5ms",
		"--ssh", "", "--receive-command", "cat > "+rec, "--json", "recorder")
	require.Equal(t, exitOK, r.code, r.stdout+r.stderr)
	assert.Equal(t, 3.0, jsonOf(t, r)["checkpoints"])
	r = xenckpt(t, t.Context(), "inspect", "--json", rec)
	require.Equal(t, exitOK, r.code, r.stdout)
	m := jsonOf(t, r)
	assert.Equal(t, 3.0, m["checkpoints"])
	assert.Equal(t, 3.0, m["record_counts"].(map[string]any)["CHECKPOINT"])
	assert.Equal(t, 3.0, m["libxl_record_counts"].(map[string]any)["CHECKPOINT_END"])
	assert.Equal(t, true, m["complete"])
}

// TestEvents: --events streams the library's progress as JSON lines on
// stderr, one per event, ending with "done".
func TestEvents(t *testing.T) {
	r := xenckpt(t, t.Context(), "checkpoint", "--sim", "--guest-mem", "2", "--live", "--events", "--json", "-o", filepath.Join(t.TempDir(), "img"))
	require.Equal(t, exitOK, r.code, r.stderr)
	var phases []string
	dec := json.NewDecoder(strings.NewReader(r.stderr))
	for dec.More() {
		var ev map[string]any
		require.NoError(t, dec.Decode(&ev), r.stderr)
		assert.Equal(t, "progress", ev["event"])
		phases = append(phases, ev["phase"].(string))
	}
	require.NotEmpty(t, phases)
	assert.Equal(t, "precopy", phases[0])
	assert.Contains(t, phases, "suspended")
	assert.Contains(t, phases, "resumed")
	assert.Equal(t, "done", phases[len(phases)-1])
	jsonOf(t, r) // the result is still one document on stdout
}
