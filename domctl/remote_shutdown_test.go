//go:build linux

package domctl_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xensim"
)

// TestRemoteShutdown: SCHEDOP_remote_shutdown suspends a running domain
// without its cooperation; resumedomain undoes it; a missing domain is
// ErrNoDomain and a bad reason is refused.
func TestRemoteShutdown(t *testing.T) {
	h, err := xensim.NewHost(nil)
	require.NoError(t, err)
	defer h.Close()
	c, err := domctl.NewConn(h.Backend(), nil)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g, err := h.CreateGuest(ctx, xensim.GuestConfig{Kind: xensim.PVH, Pages: 64})
	require.NoError(t, err)
	dom := g.Domain()

	require.NoError(t, c.RemoteShutdown(ctx, dom, domctl.ShutdownSuspend))
	info, err := c.DomainInfo(ctx, dom)
	require.NoError(t, err)
	assert.True(t, info.Suspended(), "flags %#x", info.Flags)
	assert.Zero(t, g.Suspends(), "the guest made no suspend hypercall")

	require.NoError(t, c.ResumeDomain(ctx, dom))
	info, err = c.DomainInfo(ctx, dom)
	require.NoError(t, err)
	assert.False(t, info.Shutdown())
	require.NoError(t, g.WaitCounter(ctx, g.Counter()+2), "the guest runs on")

	err = c.RemoteShutdown(ctx, 999, domctl.ShutdownSuspend)
	require.ErrorIs(t, err, domctl.ErrNoDomain)
	var oe *domctl.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, domctl.OpRemoteShutdown, oe.Op)
	require.ErrorIs(t, c.RemoteShutdown(ctx, dom, domctl.ShutdownReason(9)), syscall.EINVAL)
}
