//go:build xenckpt_dom0

package indom0

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
)

// TestRemoteShutdown: SCHEDOP_remote_shutdown(SHUTDOWN_suspend) from dom0,
// how libxl (and checkpoint) suspends an HVM guest without PV drivers, on
// the real hypervisor: the guest stops without being asked, getdomaininfo
// reports shutdown/suspend, @releaseDomain fires (the event checkpoint's
// wait follows), and resumedomain plus XS_RESUME bring it back with its
// counter consecutive.
func TestRemoteShutdown(t *testing.T) {
	requireDom0(t)
	c := openConn(t)
	xs := dialStore(t)
	for _, typ := range guestTypes {
		t.Run(typ, func(t *testing.T) {
			g := ensureGuest(t, typ)
			dom := domctl.DomID(g.domid(t))
			ctx := t.Context()
			g.freshTick(t)

			w, err := xs.Watch(ctx, "@releaseDomain")
			require.NoError(t, err, "step watch @releaseDomain")
			defer w.Close()
			select { // a new watch fires once at once
			case <-w.Events():
			case <-time.After(30 * time.Second):
				t.Fatal("no initial @releaseDomain event")
			}

			require.NoError(t, c.RemoteShutdown(ctx, dom, domctl.ShutdownSuspend), "step remote_shutdown")
			select {
			case <-w.Events():
			case <-time.After(time.Minute):
				t.Fatal("no @releaseDomain after the remote shutdown")
			}
			info, err := c.DomainInfo(ctx, dom)
			require.NoError(t, err)
			require.True(t, info.Suspended(), "shutdown %t reason %v", info.Shutdown(), info.ShutdownReason())

			// Let xenconsoled drain what the guest printed before it stopped.
			time.Sleep(1500 * time.Millisecond)
			last := g.ticks()
			time.Sleep(3 * time.Second)
			assert.Len(t, g.ticks(), len(last), "guest ticked while shut down")

			require.NoError(t, c.ResumeDomain(ctx, dom), "step resumedomain")
			require.NoError(t, xs.Resume(ctx, uint32(dom)), "step XS_RESUME")
			next := g.waitTick(t, len(last), tickWait)
			assert.Equal(t, last[len(last)-1]+1, next, "counter after resumedomain")
			info, err = c.DomainInfo(ctx, dom)
			require.NoError(t, err)
			assert.False(t, info.Shutdown())
		})
	}
}
