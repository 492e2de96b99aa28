package xenstoretest_test

import (
	"bufio"
	"context"
	"fmt"
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
	"github.com/xenckpt/xenckpt/xenstore/internal/xsdaemon"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

const fixTools = "apt-get install xenstore-utils (scripts/setup.sh)"

// toolSession runs Debian's xenstore-* tools (libxenstore) against the
// daemon on sock and returns a transcript: each command, its exit status
// and output.
func toolSession(t *testing.T, sock string) []string {
	t.Helper()
	env := append(os.Environ(), "XENSTORED_PATH="+sock)
	var log []string
	run := func(args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		log = append(log, fmt.Sprintf("$ %s [%d]\n%s", strings.Join(args, " "), code, out))
	}
	run("xenstore-write", "/ct/a", "1", "/ct/b", "two words")
	run("xenstore-read", "/ct/a", "/ct/b")
	run("xenstore-read", "/ct/missing")
	run("xenstore-ls", "-f", "/ct")
	run("xenstore-chmod", "/ct/a", "b5", "r7", "w9")
	run("xenstore-chmod", "/ct/b", "q1")
	run("xenstore-ls", "-p", "/ct")
	run("xenstore-list", "/ct")
	run("xenstore-exists", "/ct/a")
	run("xenstore-exists", "/ct/zz")
	run("xenstore-write", "/ct/deep/x/y", "1")
	run("xenstore-rm", "-t", "/ct/deep/x/y")
	run("xenstore-ls", "/ct")
	run("xenstore-rm", "/ct/nope/x")
	run("xenstore-chmod", "-r", "/ct", "n0", "r3")
	run("xenstore-ls", "-p", "/ct")

	// Watch: wait for the initial event before changing anything.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := exec.CommandContext(ctx, "xenstore-watch", "-n", "4", "/ct/w")
	w.Env = env
	stdout, err := w.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, w.Start())
	sc := bufio.NewScanner(stdout)
	require.True(t, sc.Scan(), "initial watch event")
	events := []string{sc.Text()}
	run("xenstore-write", "/ct/w/x", "1")
	run("xenstore-write", "/ct/other", "1")
	run("xenstore-rm", "/ct/w/x")
	run("xenstore-chmod", "/ct/w", "n0")
	for sc.Scan() {
		events = append(events, sc.Text())
	}
	require.NoError(t, w.Wait())
	log = append(log, "watch events:\n"+strings.Join(events, "\n"))

	// A listing over 4096 bytes: libxenstore falls back to DIRECTORY_PART.
	var script strings.Builder
	for i := range 500 {
		fmt.Fprintf(&script, "/ct/big/entry-%04d v ", i)
	}
	run(append([]string{"xenstore-write"}, strings.Fields(script.String())...)...)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel2()
	cmd := exec.CommandContext(ctx2, "xenstore-list", "/ct/big")
	cmd.Env = env
	out, err := cmd.Output()
	require.NoError(t, err, "xenstore-list of a big directory")
	log = append(log, fmt.Sprintf("big listing: %d entries", len(strings.Fields(string(out)))))
	return log
}

func TestCToolsAgainstEmbedded(t *testing.T) {
	for _, tool := range []string{"xenstore-write", "xenstore-read", "xenstore-ls", "xenstore-watch", "xenstore-chmod"} {
		testutil.RequireCommand(t, tool, fixTools)
	}
	srv := xenstoretest.NewServer(nil)
	sock := filepath.Join(t.TempDir(), "socket")
	l, err := net.Listen("unix", sock)
	require.NoError(t, err)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	got := toolSession(t, sock)
	joined := strings.Join(got, "\n")
	assert.Contains(t, joined, "$ xenstore-read /ct/a /ct/b [0]\n1\ntwo words\n")
	assert.Contains(t, joined, "a = \"1\"  . . . . . . . . . . . . . . . . . . . . . . . . . .  (b5,r7,w9)")
	assert.Contains(t, joined, "watch events:\n/ct/w\n/ct/w/x\n/ct/w/x\n/ct/w")
	assert.Contains(t, joined, "big listing: 500 entries")

	// The same session on Debian's cxenstored must read exactly the same.
	d := xsdaemon.StartCXenstored(t)
	want := toolSession(t, d.Socket)
	assert.Equal(t, want, got, "the C tools see the embedded server as they see cxenstored")
}
