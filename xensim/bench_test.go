package xensim

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// BenchmarkDirtyBitmapScan measures a log-dirty CLEAN of 2^10..2^20 pages
// through the byte-level hypercall path, with 1/64 of the pages dirty.
func BenchmarkDirtyBitmapScan(b *testing.B) {
	h, err := NewHost(nil)
	require.NoError(b, err)
	defer h.Close()
	c := &hc{t: nil, b: h.Backend(), ver: h.Version().DomctlInterfaceVersion()}
	for shift := 10; shift <= 20; shift += 2 {
		pages := uint64(1) << shift
		b.Run(fmt.Sprintf("pages=2^%d", shift), func(b *testing.B) {
			d, err := h.x.createDomain(0, false, 1, [16]byte{})
			require.NoError(b, err)
			defer h.x.destroy(d.id)
			h.x.mu.Lock()
			d.maxGPFN = pages - 1 // the p2m size the scan covers; no RAM needed
			h.x.mu.Unlock()
			require.NoError(b, h.x.enableLogDirty(d.id))
			bm, err := h.Backend().AllocBuffer(int(pages / 8))
			require.NoError(b, err)
			defer h.Backend().FreeBuffer(bm)
			buf, err := h.Backend().AllocBuffer(256)
			require.NoError(b, err)
			defer h.Backend().FreeBuffer(buf)
			b.ReportAllocs()
			b.SetBytes(int64(pages / 8))
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				for pfn := uint64(0); pfn < pages; pfn += 64 {
					d.markDirty(pfn)
				}
				b.StartTimer()
				dc := abi.View[abi.Domctl](buf)
				*dc = abi.Domctl{Cmd: abi.XEN_DOMCTL_shadow_op, InterfaceVersion: c.ver, Domain: uint16(d.id)}
				p := abi.DomctlPayload[abi.DomctlShadowOp](dc)
				p.Op, p.Pages, p.DirtyBitmap = abi.XEN_DOMCTL_SHADOW_OP_CLEAN, pages, abi.BufferPointer(bm)
				if _, err := h.Backend().Hypercall(abi.HYPERVISOR_domctl, [5]uint64{uint64(addrOf(buf))}); err != nil {
					b.Fatal(err)
				}
				if p.Stats.DirtyCount != uint32(pages/64) {
					b.Fatalf("dirty count %d, want %d", p.Stats.DirtyCount, pages/64)
				}
			}
		})
	}
}

// BenchmarkPageBatchCopy maps batches of 1024 guest pages (libxc's
// MAX_BATCH_SIZE) with MapForeign, copies them out and unmaps: the inner
// loop of a snapshot.
func BenchmarkPageBatchCopy(b *testing.B) {
	h, err := NewHost(nil)
	require.NoError(b, err)
	defer h.Close()
	const pages, batch = 16384, 1024 // 64 MiB guest
	d, err := h.x.createDomain(0, false, 1, [16]byte{})
	require.NoError(b, err)
	gfns := make([]uint64, pages)
	for i := range gfns {
		gfns[i] = uint64(i)
	}
	_, err = h.x.populate(d.id, gfns, nil, false)
	require.NoError(b, err)
	d.mem.with(func(all []byte) {
		for i := range pages {
			all[i*PageSize] = byte(i)
		}
	})
	for i := range gfns { // a PV domain is mapped by its machine frames
		gfns[i], err = h.Frame(d.id, uint64(i))
		require.NoError(b, err)
	}
	dst := make([]byte, batch*PageSize)
	errs := make([]int32, batch)
	be := h.Backend()
	b.ReportAllocs()
	b.SetBytes(pages * PageSize)
	for b.Loop() {
		for off := 0; off < pages; off += batch {
			mem, err := be.MapForeign(d.id, domctl.ProtRead, gfns[off:off+batch], errs)
			if err != nil {
				b.Fatal(err)
			}
			copy(dst, mem)
			if err := be.UnmapForeign(mem); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkMemmove is the baseline for BenchmarkPageBatchCopy: the same
// bytes copied from guest memory directly.
func BenchmarkMemmove(b *testing.B) {
	h, err := NewHost(nil)
	require.NoError(b, err)
	defer h.Close()
	const pages, batch = 16384, 1024
	d, err := h.x.createDomain(0, false, 1, [16]byte{})
	require.NoError(b, err)
	gfns := make([]uint64, pages)
	for i := range gfns {
		gfns[i] = uint64(i)
	}
	_, err = h.x.populate(d.id, gfns, nil, false)
	require.NoError(b, err)
	dst := make([]byte, batch*PageSize)
	b.SetBytes(pages * PageSize)
	for b.Loop() {
		d.mem.with(func(all []byte) {
			for off := 0; off < pages; off += batch {
				copy(dst, all[off*PageSize:(off+batch)*PageSize])
			}
		})
	}
}

// BenchmarkSuspendCancel is the simulator's floor for a checkpoint epoch:
// suspend a seed guest (xenstore control/shutdown or its suspend event
// channel), wait for the shutdown, resume it.
func BenchmarkSuspendCancel(b *testing.B) {
	for _, evtchn := range []bool{false, true} {
		b.Run(fmt.Sprintf("evtchn=%v", evtchn), func(b *testing.B) {
			h, err := NewHost(nil)
			require.NoError(b, err)
			defer h.Close()
			ctx := b.Context()
			g, err := h.CreateGuest(ctx, GuestConfig{SuspendEventChannel: evtchn})
			require.NoError(b, err)
			c, err := domctl.NewConn(h.Backend(), nil)
			require.NoError(b, err)
			defer c.Close()
			xs, err := h.Store(0)
			require.NoError(b, err)
			defer xs.Close()
			dom := g.Domain()
			path := domPathOf(dom) + "/control/shutdown"
			var ev *domctl.Evtchn
			var local uint32
			if evtchn {
				v, err := xs.Read(ctx, domPathOf(dom)+"/device/suspend/event-channel")
				require.NoError(b, err)
				var remote uint32
				for _, ch := range string(v) {
					remote = remote*10 + uint32(ch-'0')
				}
				ev, err = c.OpenEvtchn(ctx)
				require.NoError(b, err)
				defer ev.Close()
				local, err = ev.BindInterdomain(ctx, dom, remote)
				require.NoError(b, err)
				_, err = ev.Wait(ctx)
				require.NoError(b, err)
				require.NoError(b, ev.Unmask(local))
				require.NoError(b, c.SubscribeSuspend(ctx, dom, remote))
			}
			w, err := xs.Watch(ctx, "@releaseDomain")
			require.NoError(b, err)
			defer w.Close()
			<-w.Events()
			b.ReportAllocs()
			for b.Loop() {
				if evtchn {
					require.NoError(b, ev.Notify(local))
					_, err := ev.Wait(ctx)
					require.NoError(b, err)
					require.NoError(b, ev.Unmask(local))
				} else {
					require.NoError(b, xs.Write(ctx, path, []byte("suspend")))
					for {
						<-w.Events()
						info, err := c.DomainInfo(ctx, dom)
						require.NoError(b, err)
						if info.Suspended() {
							break
						}
					}
				}
				require.NoError(b, c.ResumeDomain(ctx, dom))
				require.NoError(b, xs.Resume(ctx, uint32(dom)))
			}
		})
	}
}

// BenchmarkPopulatePhysmap populates a fresh 64 MiB domain with one
// XENMEM_populate_physmap of order-0 extents, as a restore does, PV
// (machine frames written back) and HVM.
func BenchmarkPopulatePhysmap(b *testing.B) {
	h, err := NewHost(nil)
	require.NoError(b, err)
	defer h.Close()
	c, err := domctl.NewConn(h.Backend(), nil)
	require.NoError(b, err)
	defer c.Close()
	const pages = 16384
	gfns := make([]uint64, pages)
	for i := range gfns {
		gfns[i] = uint64(i)
	}
	for _, hvm := range []bool{false, true} {
		b.Run(fmt.Sprintf("hvm=%t", hvm), func(b *testing.B) {
			b.SetBytes(pages * PageSize)
			for b.Loop() {
				d, err := h.x.createDomain(0, hvm, 1, [16]byte{})
				require.NoError(b, err)
				frames, err := c.PopulatePhysmapFrames(b.Context(), d.id, gfns)
				require.NoError(b, err)
				require.Len(b, frames, pages)
				require.NoError(b, h.x.destroy(d.id))
			}
		})
	}
}
