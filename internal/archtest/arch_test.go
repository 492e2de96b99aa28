// Package archtest enforces the project's layering: layers point down, the
// pure packages stay pure, and only the OS backends touch x/sys/unix.
package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const mod = "github.com/xenckpt/xenckpt"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,Deps", mod+"/...")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NoError(t, cmd.Wait())
	require.NotEmpty(t, pkgs)
	return pkgs
}

func within(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func TestLayering(t *testing.T) {
	rules := []struct {
		pkg       string   // the rule applies to this package and those below it
		forbidden []string // import paths (and their subpackages) it may not depend on
	}{
		// Pure packages: no simulator, no OS backends, no orchestration.
		{mod + "/magic", []string{mod + "/xensim", mod + "/domctl", mod + "/xenstore", mod + "/checkpoint", "golang.org/x/sys/unix"}},
		{mod + "/checkpoint/stream", []string{mod + "/xensim", mod + "/domctl", mod + "/xenstore", "golang.org/x/sys/unix"}},
		// xenstore needs no hypercalls.
		{mod + "/xenstore", []string{mod + "/domctl", mod + "/xensim", mod + "/checkpoint"}},
		// domctl and checkpoint never import the simulator.
		{mod + "/domctl", []string{mod + "/xensim", mod + "/checkpoint", mod + "/xenstore"}},
		{mod + "/checkpoint", []string{mod + "/xensim"}},
	}
	for _, p := range listPackages(t) {
		for _, r := range rules {
			if !within(p.ImportPath, r.pkg) {
				continue
			}
			if r.pkg == mod+"/checkpoint" && within(p.ImportPath, mod+"/checkpoint/stream") {
				continue // stream has its own, stricter rule
			}
			for _, d := range p.Deps {
				for _, f := range r.forbidden {
					if within(d, f) && !within(p.ImportPath, f) {
						t.Errorf("%s depends on %s (forbidden: %s must not depend on %s)", p.ImportPath, d, r.pkg, f)
					}
				}
			}
		}
	}
}

// TestUnixImports: only the privcmd backend, the xenbus transport and the
// simulator (which maps memory) import golang.org/x/sys/unix directly.
func TestUnixImports(t *testing.T) {
	allowed := []string{
		mod + "/domctl/internal/privcmd",
		mod + "/xenstore",
		mod + "/xensim",
		mod + "/cmd",
		mod + "/internal",
		mod + "/examples",
	}
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if imp != "golang.org/x/sys/unix" {
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || within(p.ImportPath, a)
			}
			if !ok {
				t.Errorf("%s imports golang.org/x/sys/unix; only %v may", p.ImportPath, allowed)
			}
		}
	}
}
