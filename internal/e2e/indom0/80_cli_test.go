//go:build xenckpt_dom0

package indom0

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/testutil"
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

// TestCLI runs the project's CLI in dom0 on the lab's real artefacts: the
// guest kernel's capabilities and an image xl wrote.
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
}
