//go:build linux

package domctl_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xensim"
)

// simConn returns a Conn on a fresh simulated host of the given release.
func simConn(t *testing.T, v xensim.Version) *domctl.Conn {
	t.Helper()
	h, err := xensim.NewHost(&xensim.Config{Version: v})
	require.NoError(t, err)
	c, err := domctl.NewConn(h.Backend(), nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.Zero(t, c.OpenMappings(), "foreign mappings leaked")
		c.Close()
		h.Close()
	})
	return c
}

// TestXensim runs the Conn's real encoders against the simulated
// hypervisor, on each release it simulates.
func TestXensim(t *testing.T) {
	for _, v := range []xensim.Version{xensim.Xen417, xensim.Xen418, xensim.Xen419} {
		t.Run(v.String(), func(t *testing.T) {
			c := simConn(t, v)
			assert.Equal(t, v.DomctlInterfaceVersion(), c.InterfaceVersion())
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			info, err := c.DomainInfo(ctx, 0)
			require.NoError(t, err)
			assert.EqualValues(t, 0, info.Domain)

			dom, err := c.CreateDomain(ctx, domctl.CreateConfig{MaxVCPUs: 2, MaxMemKB: 64 * 1024})
			require.NoError(t, err)
			assert.NotZero(t, dom)
			info, err = c.DomainInfo(ctx, dom)
			require.NoError(t, err)
			assert.Equal(t, dom, info.Domain)
			assert.False(t, info.HVM())

			require.NoError(t, c.Pause(ctx, dom))
			info, err = c.DomainInfo(ctx, dom)
			require.NoError(t, err)
			assert.True(t, info.Paused())
			require.NoError(t, c.Unpause(ctx, dom))

			bits, err := c.AddressSize(ctx, dom)
			require.NoError(t, err)
			assert.Equal(t, 64, bits)

			// Memory: populate, map, write, log-dirty. The domain is PV:
			// its frames are the machine frames populate_physmap returns.
			frames, err := c.PopulatePhysmapFrames(ctx, dom, []uint64{0, 1, 2, 3})
			require.NoError(t, err)
			require.Len(t, frames, 4)
			max, err := c.MaxGPFN(ctx, dom)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, max, uint64(3))
			types := make([]uint32, 2)
			require.NoError(t, c.PageFrameTypes(ctx, dom, []uint64{frames[1], frames[3]}, types))

			require.NoError(t, c.EnableLogDirty(ctx, dom))
			bitmap := make([]uint64, 1)
			_, err = c.CleanDirty(ctx, dom, bitmap, false)
			require.NoError(t, err)
			m, err := c.MapForeign(ctx, dom, domctl.ProtReadWrite, []uint64{frames[2]})
			require.NoError(t, err)
			if !assert.NoError(t, m.Err(0)) {
				m.Close()
				t.FailNow()
			}
			m.Page(0)[0] = 0x5a
			require.NoError(t, m.Close())
			m, err = c.MapForeign(ctx, dom, domctl.ProtRead, []uint64{frames[2]})
			require.NoError(t, err)
			assert.EqualValues(t, 0x5a, m.Page(0)[0])
			require.NoError(t, m.Close())
			_, err = c.PeekDirty(ctx, dom, bitmap)
			require.NoError(t, err)
			assert.NotZero(t, bitmap[0]&(1<<2), "pfn 2 was written through a mapping")
			require.NoError(t, c.DisableLogDirty(ctx, dom))

			vc, err := c.VCPUContext(ctx, dom, 0, 8)
			require.NoError(t, err)
			vc.SetRAX(1)
			require.NoError(t, c.SetVCPUContext(ctx, dom, 0, vc))
			vc, err = c.VCPUContext(ctx, dom, 0, 8)
			require.NoError(t, err)
			assert.EqualValues(t, 1, vc.RAX())

			caps, err := c.Capabilities(ctx)
			require.NoError(t, err)
			assert.Contains(t, caps, "x86_64")

			port, err := c.AllocUnboundEvtchn(ctx, dom, 0)
			require.NoError(t, err)
			ev, err := c.OpenEvtchn(ctx)
			require.NoError(t, err)
			local, err := ev.BindInterdomain(ctx, dom, port)
			require.NoError(t, err)
			assert.NotZero(t, local)
			require.NoError(t, ev.Close())

			require.NoError(t, c.DestroyDomain(ctx, dom))
			_, err = c.DomainInfo(ctx, dom)
			assert.ErrorIs(t, err, domctl.ErrNoDomain)
		})
	}
}

// TestMappingCleanup: an unclosed, unreachable Mapping is unmapped by its
// cleanup, so OpenMappings drops back to zero.
func TestMappingCleanup(t *testing.T) {
	c := simConn(t, xensim.Xen417)
	ctx := context.Background()
	dom, err := c.CreateDomain(ctx, domctl.CreateConfig{})
	require.NoError(t, err)
	require.NoError(t, c.PopulatePhysmap(ctx, dom, []uint64{0}))
	func() {
		_, err := c.MapForeign(ctx, dom, domctl.ProtRead, []uint64{0})
		require.NoError(t, err)
	}()
	require.Equal(t, 1, c.OpenMappings())
	// Finalizers run on their own goroutine: on a loaded machine under
	// -race it can take a while to be scheduled, so wait for the
	// condition with a generous deadline rather than a fixed 50 rounds.
	for deadline := time.Now().Add(10 * time.Second); c.OpenMappings() != 0 && time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, 0, c.OpenMappings())
}
