//go:build xenckpt_dom0

package indom0

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/xenstore"
)

// openConn opens the real hypervisor through privcmd; the cleanup closes it
// and fails the test if a foreign mapping leaked.
func openConn(t *testing.T) *domctl.Conn {
	t.Helper()
	c, err := domctl.Open(t.Context())
	require.NoError(t, err, "step domctl.Open")
	t.Cleanup(func() {
		assert.Zero(t, c.OpenMappings(), "foreign mappings left open")
		assert.NoError(t, c.Close())
	})
	return c
}

func dialStore(t *testing.T) *xenstore.Client {
	t.Helper()
	c, err := xenstore.Dial(t.Context(), nil)
	require.NoError(t, err, "step xenstore.Dial")
	t.Cleanup(func() { c.Close() })
	return c
}

// storeInt reads a decimal xenstore node of dom.
func storeInt(t *testing.T, xs *xenstore.Client, dom uint32, rel string) uint64 {
	t.Helper()
	p, err := xs.GetDomainPath(t.Context(), dom)
	require.NoError(t, err)
	b, err := xs.Read(t.Context(), p+"/"+rel)
	require.NoError(t, err, "reading %s/%s", p, rel)
	n, err := strconv.ParseUint(string(b), 10, 64)
	require.NoError(t, err, "%s/%s = %q", p, rel, b)
	return n
}

// TestDomctlDom0 checks interface version detection, XENVER_capabilities
// and getdomaininfo against the running hypervisor.
func TestDomctlDom0(t *testing.T) {
	requireDom0(t)
	c := openConn(t)
	assert.Equal(t, domctl.InterfaceVersion417, c.InterfaceVersion(), "negotiated domctl interface version")
	caps, err := c.Capabilities(t.Context())
	require.NoError(t, err)
	t.Logf("capabilities %q, domctl interface %#x", caps, c.InterfaceVersion())
	assert.Contains(t, caps, "xen-3.0-x86_64")
	assert.Contains(t, caps, "hvm-3.0-x86_64", "the lab's CPU model offers SVM, so PVH works")

	info, err := c.DomainInfo(t.Context(), 0)
	require.NoError(t, err)
	assert.Equal(t, domctl.DomID(0), info.Domain)
	assert.False(t, info.HVM())
	assert.False(t, info.Dying())
	assert.Equal(t, uint32(2), info.NrOnlineVCPUs, "dom0_max_vcpus=2")

	_, err = c.DomainInfo(t.Context(), 0x7000)
	assert.True(t, errors.Is(err, domctl.ErrNoDomain), "DomainInfo of a missing domain: %v", err)
}

// TestDomctlGuests exercises domctl on a running PV and a PVH Linux guest.
func TestDomctlGuests(t *testing.T) {
	requireDom0(t)
	c := openConn(t)
	xs := dialStore(t)
	for _, typ := range guestTypes {
		t.Run(typ, func(t *testing.T) {
			g := ensureGuest(t, typ)
			dom := domctl.DomID(g.domid(t))
			ctx := t.Context()

			t.Run("info", func(t *testing.T) {
				info, err := c.DomainInfo(ctx, dom)
				require.NoError(t, err)
				assert.Equal(t, typ == "pvh", info.HVM(), "HVM flag")
				assert.False(t, info.Paused())
				assert.False(t, info.Shutdown())
				assert.Equal(t, uint32(1), info.NrOnlineVCPUs)
				assert.Equal(t, uint32(0), info.MaxVCPUID)
				assert.InDelta(t, 32768, float64(info.TotPages), 2048, "tot_pages of a 128 MiB guest")
				tsc, err := c.TSCInfo(ctx, dom)
				require.NoError(t, err)
				t.Logf("domain %d: %+v; tsc %+v", dom, info, tsc)
				assert.NotZero(t, tsc.GTSCKHz)
			})

			t.Run("pause", func(t *testing.T) {
				_, m := g.freshTick(t)
				require.NoError(t, c.Pause(ctx, dom))
				info, err := c.DomainInfo(ctx, dom)
				require.NoError(t, err)
				assert.True(t, info.Paused(), "paused flag after Pause")
				// Let xenconsoled drain what the guest printed before the pause.
				time.Sleep(1500 * time.Millisecond)
				last := g.ticks()
				time.Sleep(3 * time.Second)
				assert.Len(t, g.ticks(), len(last), "guest ticked while paused")
				require.NoError(t, c.Unpause(ctx, dom))
				next := g.waitTick(t, len(last), tickWait)
				assert.Equal(t, last[len(last)-1]+1, next, "counter after unpause")
				_ = m
			})

			t.Run("vcpu", func(t *testing.T) {
				if typ == "pv" {
					bits, err := c.AddressSize(ctx, dom)
					require.NoError(t, err)
					assert.Equal(t, 64, bits)
					vc, err := c.VCPUContext(ctx, dom, 0, 8)
					require.NoError(t, err)
					assert.Len(t, vc.Raw, 5168)
					assert.GreaterOrEqual(t, vc.RIP(), uint64(0xffff800000000000), "PV kernel RIP %#x", vc.RIP())
					return
				}
				hc, err := c.HVMContext(ctx, dom)
				require.NoError(t, err)
				require.Greater(t, len(hc), 8)
				// struct hvm_save_descriptor: typecode 1 is HVM_SAVE_CODE(HEADER).
				assert.Equal(t, uint16(1), binary.LittleEndian.Uint16(hc), "first HVM save record")
				t.Logf("HVM context: %d bytes", len(hc))
				store, err := c.HVMParam(ctx, dom, abi.HVM_PARAM_STORE_PFN)
				require.NoError(t, err)
				assert.Equal(t, storeInt(t, xs, uint32(dom), "store/ring-ref"), store, "HVM_PARAM_STORE_PFN vs store/ring-ref")
			})

			t.Run("map", func(t *testing.T) {
				maxGPFN, err := c.MaxGPFN(ctx, dom)
				require.NoError(t, err)
				assert.Greater(t, maxGPFN, uint64(30000))
				cons := storeInt(t, xs, uint32(dom), "console/ring-ref")
				store := storeInt(t, xs, uint32(dom), "store/ring-ref")
				mp, err := c.MapForeign(ctx, dom, domctl.ProtRead, []uint64{cons, store})
				require.NoError(t, err, "step map console and store rings")
				defer mp.Close()
				require.NoError(t, mp.Err(0))
				require.NoError(t, mp.Err(1))
				// struct xencons_interface: in[1024], out[2048].
				out := mp.Page(0)[1024 : 1024+2048]
				assert.True(t, bytes.Contains(out, []byte("DOMU: tick")), "console ring of %s holds its ticks", g.Name)
				// struct xenstore_domain_interface: req[1024], rsp[1024], then
				// req_cons, req_prod, rsp_cons, rsp_prod.
				ring := mp.Page(1)
				reqProd := binary.LittleEndian.Uint32(ring[2052:])
				rspProd := binary.LittleEndian.Uint32(ring[2060:])
				assert.NotZero(t, reqProd, "guest sent xenstore requests")
				assert.Equal(t, reqProd == 0, rspProd == 0, "xenstore ring req_prod %d rsp_prod %d", reqProd, rspProd)
			})

			t.Run("logdirty", func(t *testing.T) {
				maxGPFN, err := c.MaxGPFN(ctx, dom)
				require.NoError(t, err)
				err = c.EnableLogDirty(ctx, dom)
				if typ == "pv" {
					// Debian's Xen is built without shadow paging: PV log-dirty
					// (and so PV live migration) is refused.
					if err == nil {
						t.Log("PV log-dirty unexpectedly enabled")
						require.NoError(t, c.DisableLogDirty(ctx, dom))
						return
					}
					assert.True(t, errors.Is(err, syscall.EOPNOTSUPP), "PV log-dirty refusal: %v", err)
					g.waitTick(t, g.mark(), tickWait)
					return
				}
				require.NoError(t, err, "step enable log-dirty")
				defer func() { assert.NoError(t, c.DisableLogDirty(ctx, dom)) }()
				bitmap := make([]uint64, (maxGPFN+64)/64)
				_, err = c.CleanDirty(ctx, dom, bitmap, false)
				require.NoError(t, err, "step first clean")
				g.waitTick(t, g.mark(), tickWait)
				time.Sleep(time.Second)
				clear(bitmap)
				st, err := c.PeekDirty(ctx, dom, bitmap)
				require.NoError(t, err, "step peek")
				n := 0
				for _, w := range bitmap {
					for ; w != 0; w &= w - 1 {
						n++
					}
				}
				t.Logf("log-dirty after a tick: %d pages in bitmap, stats %+v", n, st)
				assert.Greater(t, n, 0, "a ticking guest dirties pages")
				assert.Less(t, n, 32768, "not every page is dirty")
			})
		})
	}
}

// TestEvtchn binds an interdomain event channel through /dev/xen/evtchn to
// a port dom0 allocated for itself, waits for the event Xen raises on the
// new local port at bind time, notifies and unbinds it.
func TestEvtchn(t *testing.T) {
	requireDom0(t)
	c := openConn(t)
	ctx := t.Context()
	port, err := c.AllocUnboundEvtchn(ctx, 0, 0)
	require.NoError(t, err, "step alloc_unbound")
	ev, err := c.OpenEvtchn(ctx)
	require.NoError(t, err, "step open evtchn")
	defer ev.Close()
	local, err := ev.BindInterdomain(ctx, 0, port)
	require.NoError(t, err, "step bind interdomain to port %d", port)
	assert.NotEqual(t, port, local)
	t.Logf("alloc_unbound port %d, bound locally as %d", port, local)

	// Xen sets the local port pending when it binds an interdomain
	// channel ("we may have lost notifications on the remote unbound
	// port"), so the first Wait returns it.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	got, err := ev.Wait(wctx)
	cancel()
	require.NoError(t, err, "step wait for the bind-time event")
	assert.Equal(t, local, got)
	require.NoError(t, ev.Unmask(local))

	// Notify signals the other end (port), which nobody here watches: the
	// local port stays quiet and Wait returns when its ctx ends.
	require.NoError(t, ev.Notify(local))
	wctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = ev.Wait(wctx)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "Wait with nothing pending")

	// A port that does not exist is refused by Xen, and the error says
	// which operation failed.
	_, err = ev.BindInterdomain(ctx, 0, 1<<20)
	var opErr *domctl.OpError
	if assert.ErrorAs(t, err, &opErr, "bind to a port that does not exist") {
		t.Logf("bind to a missing port: %v", err)
	}
	require.NoError(t, ev.Unbind(local))
}
