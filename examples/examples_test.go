// Package examples_test builds and runs every example program on the
// simulator, and drives the xenckpt binary across two network namespaces.
package examples_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// binDir holds the binaries built by this test process; TestMain removes it.
var binDir string

var buildOnce sync.Map // package path -> *builtBinary

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "xenckpt-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// build compiles pkg (relative to the module root) once per test binary
// and returns the path of the executable.
func build(t *testing.T, pkg string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(pkg, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", b.path, pkg)
		cmd.Dir = ".."
		b.out, b.err = cmd.CombinedOutput()
	})
	require.NoError(t, b.err, "go build %s: %s", pkg, b.out)
	return b.path
}

func buildXenckpt(t *testing.T) string { return build(t, "./cmd/xenckpt") }
