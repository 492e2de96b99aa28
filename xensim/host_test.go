package xensim

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
)

// Unless cfg chooses, PV frames are the identity: most tests here drive
// the hypercalls by pfn to test other mechanics (shutdown state machine,
// log-dirty, conventions). The machine-frame model, the Host default, is
// tested in pv_test.go and by every package that uses xensim.
func newTestHost(t *testing.T, cfg *Config) *Host {
	t.Helper()
	if cfg == nil {
		cfg = &Config{}
	}
	if cfg.PVFrames == PVFramesDefault {
		c := *cfg
		c.PVFrames = PVFramesIdentity
		cfg = &c
	}
	h, err := NewHost(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// requestSuspend writes control/shutdown=suspend as a toolstack does and
// waits for the domain to be shut down for suspend.
func requestSuspend(t *testing.T, h *Host, dom domctl.DomID) {
	t.Helper()
	ctx := testCtx(t)
	xs, err := h.Store(0)
	require.NoError(t, err)
	defer xs.Close()
	require.NoError(t, xs.Write(ctx, domPathOf(dom)+"/control/shutdown", []byte("suspend")))
	waitInfo(t, h, dom, func(i domctl.DomainInfo) bool { return i.Suspended() })
}

func waitInfo(t *testing.T, h *Host, dom domctl.DomID, cond func(domctl.DomainInfo) bool) domctl.DomainInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := h.x.domainInfo(dom)
		require.NoError(t, err)
		if cond(info) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("domain %d: condition not reached; flags %#x", dom, info.Flags)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGuestSuspendAndCancelSeed(t *testing.T) {
	h := newTestHost(t, nil)
	ctx := testCtx(t)
	g, err := h.CreateGuest(ctx, GuestConfig{})
	require.NoError(t, err)
	require.NoError(t, g.WaitCounter(ctx, 5))
	requestSuspend(t, h, g.Domain())
	assert.Equal(t, GuestSuspended, g.State())
	c := g.Counter()
	time.Sleep(10 * time.Millisecond)
	assert.Equal(t, c, g.Counter(), "a suspended guest must not run")
	// Seed: rax stays 0 -> cancelled.
	require.NoError(t, h.x.resume(g.Domain()))
	require.NoError(t, g.WaitCounter(ctx, c+3))
	assert.Equal(t, int64(0), g.LastSuspendReturn())
	assert.Equal(t, uint64(0), g.Reconnects())
	assert.Equal(t, uint64(1), g.Suspends())
	assert.Equal(t, GuestRunning, g.State())
}
