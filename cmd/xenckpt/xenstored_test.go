package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/testutil"
	"github.com/xenckpt/xenckpt/xenstore"
)

// waitSocket waits until something listens on path.
func waitSocket(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// The file appears at bind(), before listen(): dial to be sure.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no socket at %s", path)
}

func TestXenstoredInProcess(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "xs.sock")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan result, 1)
	go func() { done <- xenckpt(t, ctx, "xenstored", "--socket", sock) }()
	waitSocket(t, sock)

	c, err := xenstore.DialSocket(t.Context(), sock, nil)
	require.NoError(t, err)
	require.NoError(t, c.Write(t.Context(), "/local/domain/1/name", []byte("guest1")))
	v, err := c.Read(t.Context(), "/local/domain/1/name")
	require.NoError(t, err)
	assert.Equal(t, "guest1", string(v))
	require.NoError(t, c.Close())

	// A second daemon on the same live socket is refused.
	r := xenckpt(t, t.Context(), "xenstored", "--socket", sock)
	assert.Equal(t, exitFailure, r.code)
	assert.Contains(t, r.stderr, "already serves")

	cancel() // Ctrl-C: a clean exit that removes the socket
	r = <-done
	assert.Equal(t, exitOK, r.code, r.stderr)
	assert.Contains(t, r.stderr, "XENSTORED_PATH="+sock)
	_, err = os.Stat(sock)
	assert.True(t, os.IsNotExist(err), "socket removed on exit")
}

// TestXenstoredRealClient runs the built binary and talks to it with Xen's
// own C tools (xenstore-utils), which find the daemon through XENSTORED_PATH.
func TestXenstoredRealClient(t *testing.T) {
	write := testutil.RequireCommand(t, "xenstore-write", "apt-get install xenstore-utils")
	read := testutil.RequireCommand(t, "xenstore-read", "apt-get install xenstore-utils")
	ls := testutil.RequireCommand(t, "xenstore-ls", "apt-get install xenstore-utils")
	rm := testutil.RequireCommand(t, "xenstore-rm", "apt-get install xenstore-utils")

	bin := buildBinary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "xs.sock")
	d := exec.Command(bin, "xenstored", "--socket", sock, "-v")
	stderr, err := d.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, d.Start())
	logs := make(chan string, 1)
	go func() {
		var b strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		logs <- b.String()
	}()
	t.Cleanup(func() { _ = d.Process.Kill() })
	waitSocket(t, sock)

	env := append(os.Environ(), "XENSTORED_PATH="+sock)
	tool := func(path string, args ...string) string {
		t.Helper()
		c := exec.Command(path, args...)
		c.Env = env
		out, err := c.CombinedOutput()
		require.NoError(t, err, "%s %v: %s", filepath.Base(path), args, out)
		return strings.TrimSpace(string(out))
	}
	tool(write, "/local/domain/7/name", "guest7", "/local/domain/7/control/shutdown", "")
	assert.Equal(t, "guest7", tool(read, "/local/domain/7/name"))
	listing := tool(ls, "/local/domain/7")
	assert.Contains(t, listing, `name = "guest7"`)
	assert.Contains(t, listing, "control")
	tool(rm, "/local/domain/7/name")
	c := exec.Command(read, "/local/domain/7/name")
	c.Env = env
	assert.Error(t, c.Run(), "a removed node is gone for the C client too")

	// SIGINT is Ctrl-C: exit 0, socket removed.
	require.NoError(t, d.Process.Signal(os.Interrupt))
	assert.Contains(t, <-logs, "xenstored stopped") // read to EOF before Wait closes the pipe
	require.NoError(t, d.Wait())
	_, err = os.Stat(sock)
	assert.True(t, os.IsNotExist(err))
}

func TestXenstoredBadSocket(t *testing.T) {
	r := xenckpt(t, t.Context(), "xenstored", "--socket", filepath.Join(t.TempDir(), "no", "such", "dir", "xs.sock"))
	assert.Equal(t, exitNotFound, r.code, r.stderr)
	f := writeFile(t, "plain", []byte("x"))
	r = xenckpt(t, t.Context(), "xenstored", "--socket", f)
	assert.Equal(t, exitUsage, r.code, "refuses to replace a file that is not a socket: %s", r.stderr)
}
