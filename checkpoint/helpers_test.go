package checkpoint_test

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xensim"
	"github.com/xenckpt/xenckpt/xenstore"
)

// env is one simulated host with a toolstack Controller on it.
type env struct {
	host *xensim.Host
	hv   *domctl.Conn
	xs   *xenstore.Client
	c    *checkpoint.Controller
	cfg  checkpoint.Config
}

// testConfig gives well-behaved guests ample time even on a loaded CI
// machine under -race.
func testConfig(tb testing.TB) checkpoint.Config {
	return checkpoint.Config{
		AckTimeout:     10 * time.Second,
		SuspendTimeout: 10 * time.Second,
		LockDir:        tb.TempDir(),
	}
}

// badGuestConfig keeps the tests of misbehaving guests quick: they wait
// out these timeouts.
func badGuestConfig(tb testing.TB) *checkpoint.Config {
	c := testConfig(tb)
	c.AckTimeout, c.SuspendTimeout = 200*time.Millisecond, 300*time.Millisecond
	return &c
}

func newEnv(tb testing.TB, cfg *checkpoint.Config) *env {
	tb.Helper()
	return newEnvOn(tb, nil, cfg)
}

// newEnvOn is newEnv on a host configured by hostCfg.
func newEnvOn(tb testing.TB, hostCfg *xensim.Config, cfg *checkpoint.Config) *env {
	tb.Helper()
	host, err := xensim.NewHost(hostCfg)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = host.Close() })
	hv, err := domctl.NewConn(host.Backend(), nil)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = hv.Close() })
	tb.Cleanup(func() {
		// Every foreign mapping the Controller made is closed.
		if n := hv.OpenMappings(); n != 0 {
			tb.Errorf("%d foreign mappings left open", n)
		}
	})
	xs, err := host.Store(0)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = xs.Close() })
	e := &env{host: host, hv: hv, xs: xs}
	if cfg == nil {
		c := testConfig(tb)
		cfg = &c
	}
	e.cfg = *cfg
	e.c = checkpoint.New(hv, xs, cfg)
	return e
}

func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// guest creates a running simulated guest and waits for it to count.
func (e *env) guest(tb testing.TB, cfg xensim.GuestConfig) *xensim.Guest {
	tb.Helper()
	ctx := testCtx(tb)
	if cfg.Pages == 0 {
		cfg.Pages = 64
	}
	g, err := e.host.CreateGuest(ctx, cfg)
	require.NoError(tb, err)
	require.NoError(tb, g.WaitCounter(ctx, 2))
	return g
}

// resumeOpts are the resume options a toolstack would pass for a guest of
// convention conv: the Linux convention is known from the kernel's ELF
// note, the legacy one needs the slow resume.
func resumeOpts(conv xensim.Convention) checkpoint.ResumeOptions {
	switch conv {
	case xensim.ConventionLinux:
		return checkpoint.ResumeOptions{Notes: &magic.Notes{SuspendCancel: 1}}
	case xensim.ConventionLegacy:
		return checkpoint.ResumeOptions{SlowResume: true}
	}
	return checkpoint.ResumeOptions{}
}

// requireRunning asserts that the domain is neither paused nor shut down
// and that its guest keeps counting.
func (e *env) requireRunning(tb testing.TB, g *xensim.Guest) {
	tb.Helper()
	ctx := testCtx(tb)
	info, err := e.hv.DomainInfo(ctx, g.Domain())
	require.NoError(tb, err)
	require.False(tb, info.Paused(), "domain %d is paused", g.Domain())
	require.False(tb, info.Shutdown(), "domain %d is shut down (reason %v)", g.Domain(), info.ShutdownReason())
	n := g.Counter()
	require.NoError(tb, g.WaitCounter(ctx, n), "guest of domain %d stopped counting", g.Domain())
}

// domains lists the domains other than dom0.
func (e *env) domains() []domctl.DomID {
	var out []domctl.DomID
	for _, d := range e.host.Domains() {
		if d != 0 {
			out = append(out, d)
		}
	}
	return out
}

func itoa(d domctl.DomID) string { return strconv.Itoa(int(d)) }

// imagePages reads every page of a plain image: pfn → data.
func imagePages(tb testing.TB, img []byte) map[uint64][]byte {
	tb.Helper()
	r := stream.NewReader(bytes.NewReader(img), nil)
	out := make(map[uint64][]byte)
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(tb, err)
		if rec.Kind != stream.KindLibxc || rec.Type != stream.RecPageData {
			continue
		}
		data, err := r.Pages()
		require.NoError(tb, err)
		i := 0
		for _, e := range rec.PFNs {
			if !stream.EntryType(e).HasData() {
				continue
			}
			out[stream.EntryPFN(e)] = append([]byte(nil), data[i*stream.PageSize:(i+1)*stream.PageSize]...)
			i++
		}
	}
}
