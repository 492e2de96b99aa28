//go:build linux

package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/testutil"
)

// Two simulated Xen hosts in two network namespaces joined by a veth pair:
// "xenckpt migrate" runs in one, "xenckpt receive" in the other, as two
// separate processes talking over a real TCP path. The addresses live only
// inside the namespaces this test creates.
const (
	addrA = "10.99.0.1"
	addrB = "10.99.0.2"
)

type netnsPair struct {
	a, b    string // namespace names
	vethA   string // the veth end inside a
	ipPath  string
	created []string
}

func (p *netnsPair) ip(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(p.ipPath, args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// newNetnsPair creates the namespaces and the link; cleanup always deletes
// them (deleting a namespace deletes the veth end inside it).
func newNetnsPair(t *testing.T) *netnsPair {
	testutil.RequireRoot(t)
	p := &netnsPair{
		ipPath: testutil.RequireCommand(t, "ip", "apt-get install iproute2"),
		a:      fmt.Sprintf("xckpt-a-%d", os.Getpid()),
		b:      fmt.Sprintf("xckpt-b-%d", os.Getpid()),
		vethA:  "xckpt0",
	}
	t.Cleanup(func() {
		for _, ns := range p.created {
			if out, err := exec.Command(p.ipPath, "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("deleting namespace %s: %v: %s", ns, err, out)
			}
		}
	})
	for _, ns := range []string{p.a, p.b} {
		p.ip(t, "netns", "add", ns)
		p.created = append(p.created, ns)
		p.ip(t, "-n", ns, "link", "set", "lo", "up")
	}
	p.ip(t, "-n", p.a, "link", "add", p.vethA, "type", "veth", "peer", "name", "xckpt1", "netns", p.b)
	p.ip(t, "-n", p.a, "addr", "add", addrA+"/24", "dev", p.vethA)
	p.ip(t, "-n", p.b, "addr", "add", addrB+"/24", "dev", "xckpt1")
	p.ip(t, "-n", p.a, "link", "set", p.vethA, "up")
	p.ip(t, "-n", p.b, "link", "set", "xckpt1", "up")
	return p
}

// cmdIn prepares bin args inside namespace ns.
func (p *netnsPair) cmdIn(ctx context.Context, ns, bin string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, p.ipPath, append([]string{"netns", "exec", ns, bin}, args...)...)
}

type procResult struct {
	code   int
	stdout []byte
	stderr string
}

func startProc(t *testing.T, cmd *exec.Cmd) <-chan procResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	done := make(chan procResult, 1)
	go func() {
		err := cmd.Wait()
		code := 0
		if err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		done <- procResult{code: code, stdout: stdout.Bytes(), stderr: stderr.String()}
	}()
	return done
}

func decode(t *testing.T, r procResult) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.stdout, &m), "stdout: %s\nstderr: %s", r.stdout, r.stderr)
	return m
}

func TestMigrateBetweenNetns(t *testing.T) {
	p := newNetnsPair(t)
	bin := buildXenckpt(t)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancel()

	t.Run("complete", func(t *testing.T) {
		listen := addrB + ":7001"
		recv := startProc(t, p.cmdIn(ctx, p.b, bin, "receive", "--sim", "--listen", listen, "--json", "--io-timeout", "10s"))
		waitListening(t, ctx, p, listen)
		mig := startProc(t, p.cmdIn(ctx, p.a, bin, "migrate", "--sim", "--guest-type", "pv", "--guest-mem", "32", "--json", listen))
		m, r := <-mig, <-recv
		require.Equal(t, 0, m.code, "migrate: %s %s", m.stdout, m.stderr)
		require.Equal(t, 0, r.code, "receive: %s %s", r.stdout, r.stderr)
		mj, rj := decode(t, m), decode(t, r)
		assert.Equal(t, "migrate", mj["operation"])
		assert.Equal(t, false, mj["source_running"], "a completed migration destroys the source")
		assert.Greater(t, mj["pages"], float64(0))
		assert.Equal(t, "receive", rj["operation"])
		assert.Equal(t, true, rj["guest_running"], "the received guest runs on host B")
		assert.Greater(t, rj["pages"], float64(0))
	})

	t.Run("cut link", func(t *testing.T) {
		listen := addrB + ":7002"
		recv := startProc(t, p.cmdIn(ctx, p.b, bin, "receive", "--sim", "--listen", listen, "--json", "--io-timeout", "3s"))
		waitListening(t, ctx, p, listen)
		// 64 MiB at 8 MiB/s takes about 8 s: the link goes down after 1 s.
		mig := startProc(t, p.cmdIn(ctx, p.a, bin, "migrate", "--sim", "--guest-type", "pvh", "--guest-mem", "64",
			"--rate-limit", "8", "--io-timeout", "3s", "--json", listen))
		// Cut once the transfer is under way (a fixed delay could cut
		// before a loaded machine even connected).
		waitEstablished(t, ctx, p, listen)
		time.Sleep(200 * time.Millisecond)
		p.ip(t, "-n", p.a, "link", "set", p.vethA, "down")
		defer p.ip(t, "-n", p.a, "link", "set", p.vethA, "up")
		m, r := <-mig, <-recv
		assert.Equal(t, 7, m.code, "migrate exits with the transfer code: %s %s", m.stdout, m.stderr)
		assert.Equal(t, 7, r.code, "receive exits with the transfer code: %s %s", r.stdout, r.stderr)
		t.Logf("migrate: %s\nreceive: %s", m.stdout, r.stdout)
		mj := decode(t, m)
		assert.Equal(t, true, mj["source_running"], "the source guest runs on after a cut link")
		assert.Equal(t, "transfer", mj["error"].(map[string]any)["class"])
		rj := decode(t, r)
		assert.Equal(t, float64(0), rj["domains_left"], "the receiver leaves no half-built domain")
	})
}

// waitEstablished polls until the receiver has a connection on addr.
func waitEstablished(t *testing.T, ctx context.Context, p *netnsPair, addr string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	for ctx.Err() == nil {
		out, _ := exec.CommandContext(ctx, p.ipPath, "netns", "exec", p.b, "ss", "-Htn", "state", "established", "src", host, "sport", "= :"+port).Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no connection to the receiver on %s", addr)
}

// waitListening polls until the receiver accepts connections on addr.
func waitListening(t *testing.T, ctx context.Context, p *netnsPair, addr string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	for ctx.Err() == nil {
		out, _ := exec.CommandContext(ctx, p.ipPath, "netns", "exec", p.b, "ss", "-Hltn", "src", host, "sport", "= :"+port).Output()
		if len(bytes.TrimSpace(out)) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("receiver never listened on %s", addr)
}
