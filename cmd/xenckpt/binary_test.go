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
