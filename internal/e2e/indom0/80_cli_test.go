//go:build xenckpt_dom0

package indom0

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/testutil"
	"github.com/xenckpt/xenckpt/magic"
)

// cli returns the project's CLI, which TestXenLab puts beside this test
// binary in /payload.
func cli(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	p := filepath.Join(filepath.Dir(exe), "xenckpt")
	testutil.RequireFile(t, p, "build cmd/xenckpt (TestXenLab does when the package has a main)")
	return p
}

func runCLI(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli(t), args...).CombinedOutput()
	require.NoError(t, err, "xenckpt %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// runCLIJSON runs the CLI with --json and decodes its stdout into res
// (stderr, with the logs, goes into the failure message only).
func runCLIJSON(t *testing.T, res any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cli(t), append([]string{"--json"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "xenckpt %s:\n%s%s", strings.Join(args, " "), out, stderr.String())
	require.NoError(t, json.Unmarshal(out, res), "xenckpt --json output:\n%s", out)
}

// TestCLI runs the project's CLI in dom0 on the lab's real artefacts: the
// guest kernel's capabilities, an image xl wrote, and a checkpoint with
// cancel of the running PVH guest.
func TestCLI(t *testing.T) {
	requireDom0(t)
	t.Run("caps kernel", func(t *testing.T) {
		out := runCLI(t, "caps", "/boot/vmlinuz")
		t.Log(out)
		assert.Contains(t, strings.ToLower(out), "upstream")
	})
	t.Run("inspect xl image", func(t *testing.T) {
		out := runCLI(t, "inspect", xlImage(t, "pvh", "xl-ckpt-pvh"))
		t.Log(lastLines(out, 30))
		assert.NotEmpty(t, strings.TrimSpace(out))
	})
	t.Run("checkpoint pvh", func(t *testing.T) {
		g := ensureGuest(t, "pvh")
		dom := g.domid(t)
		_, m0 := g.freshTick(t)
		img := filepath.Join(t.TempDir(), "cli-ckpt-pvh")
		var res struct {
			Convention    string `json:"convention"`
			SourceRunning bool   `json:"source_running"`
		}
		runCLIJSON(t, &res, "checkpoint", strconv.Itoa(int(dom)), "-o", img, "--kernel", "/boot/vmlinuz")
		assert.Equal(t, magic.ConventionUpstream.String(), res.Convention)
		assert.True(t, res.SourceRunning, "the CLI reports the guest running")
		assert.Equal(t, dom, g.domid(t), "checkpoint must keep the same domain")
		g.waitTick(t, g.mark(), tickWait)
		consecutive(t, "after the CLI's checkpoint", g.ticksSince(m0-1))
		fi, err := os.Stat(img)
		require.NoError(t, err)
		assert.Positive(t, fi.Size())
	})
	t.Run("migrate pvh", func(t *testing.T) {
		// xenckpt migrate with --ssh "" runs the receive command locally,
		// as xl migrate -s "" does: two processes, the real handshake.
		g := ensureGuest(t, "pvh")
		dom := g.domid(t)
		_, m0 := g.freshTick(t)
		var res struct {
			Operation string `json:"operation"`
		}
		runCLIJSON(t, &res, "migrate", strconv.Itoa(int(dom)), "localhost",
			"--ssh", "", "--receive-command", cli(t)+" receive --kernel /boot/vmlinuz", "--kernel", "/boot/vmlinuz")
		assert.Equal(t, "migrate", res.Operation)
		assert.NotEqual(t, dom, g.domid(t), "the guest's name now resolves to the new domain")
		g.waitTick(t, g.mark(), tickWait)
		consecutive(t, "after the CLI's migration", g.ticksSince(m0-1))
	})
}
