package xensim

import (
	"encoding/binary"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
)

// populateFrames is XENMEM_populate_physmap returning what Xen wrote back
// into extent_start: the MFNs of a PV domain's new frames.
func (c *hc) populateFrames(dom domctl.DomID, gfns []uint64) []uint64 {
	arr := c.buf(len(gfns) * 8)
	ext := unsafe.Slice((*uint64)(unsafe.Pointer(&arr[0])), len(gfns))
	copy(ext, gfns)
	rb := c.buf(int(unsafe.Sizeof(abi.MemoryReservation{})))
	r := abi.View[abi.MemoryReservation](rb)
	r.ExtentStart, r.NrExtents, r.DomID = abi.BufferPointer(arr), uint64(len(gfns)), uint16(dom)
	n, err := c.b.Hypercall(abi.HYPERVISOR_memory_op, [5]uint64{abi.XENMEM_populate_physmap, uint64(uintptr(unsafe.Pointer(r)))})
	require.NoError(c.t, err)
	require.EqualValues(c.t, len(gfns), n)
	return append([]uint64(nil), ext...)
}

func (c *hc) pageTypes(dom domctl.DomID, frames []uint64) []uint32 {
	arr := c.buf(len(frames) * 8)
	a := unsafe.Slice((*uint64)(unsafe.Pointer(&arr[0])), len(frames))
	copy(a, frames)
	_, err := c.domctl(abi.XEN_DOMCTL_getpageframeinfo3, dom, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlGetPageFrameInfo3](dc)
		p.Num, p.Array = uint64(len(frames)), abi.BufferPointer(arr)
	})
	require.NoError(c.t, err)
	out := make([]uint32, len(frames))
	for i, v := range a {
		out[i] = uint32(v)
	}
	return out
}

func (c *hc) mmuext(dom domctl.DomID, cmd uint32, mfn uint64) error {
	b := c.buf(int(unsafe.Sizeof(abi.MMUExtOp{})))
	op := abi.View[abi.MMUExtOp](b)
	op.Cmd = cmd
	binary.LittleEndian.PutUint64(op.Arg1[:], mfn)
	done := c.buf(4)
	_, err := c.b.Hypercall(abi.HYPERVISOR_mmuext_op, [5]uint64{uint64(uintptr(unsafe.Pointer(op))), 1, uint64(uintptr(unsafe.Pointer(&done[0]))), uint64(dom)})
	if err == nil {
		require.EqualValues(c.t, 1, binary.LittleEndian.Uint32(done))
	}
	return err
}

func (c *hc) mmuUpdate(dom domctl.DomID, ptr, val uint64) error {
	b := c.buf(int(unsafe.Sizeof(abi.MMUUpdate{})))
	u := abi.View[abi.MMUUpdate](b)
	u.Ptr, u.Val = ptr, val
	_, err := c.b.Hypercall(abi.HYPERVISOR_mmu_update, [5]uint64{uint64(uintptr(unsafe.Pointer(u))), 1, 0, uint64(dom)})
	return err
}

// mapErrs maps frames and returns the mapping and per-frame errnos.
func mapErrs(t *testing.T, h *Host, dom domctl.DomID, prot domctl.Prot, frames []uint64) ([]byte, []int32) {
	t.Helper()
	errs := make([]int32, len(frames))
	mem, err := h.Backend().MapForeign(dom, prot, frames, errs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.Backend().UnmapForeign(mem) })
	return mem, errs
}

// TestPVMachineFrames: on a host with machine frames a PV domain's frames
// are MFNs, not pfns: populate_physmap returns them, foreign mappings and
// getpageframeinfo3 take them, and page tables pinned with mmuext_op are
// validated and typed level by level, as on Xen.
func TestPVMachineFrames(t *testing.T) {
	h := newTestHost(t, &Config{PVFrames: PVFramesMachine})
	c := newHC(t, h)
	dom, err := c.create(false, 1)
	require.NoError(t, err)
	pfns := []uint64{0, 1, 2, 3, 4, 5, 6, 7}
	mfns := c.populateFrames(dom, pfns)
	seen := map[uint64]bool{}
	for i, m := range mfns {
		assert.NotEqual(t, pfns[i], m, "pfn %d has mfn == pfn", i)
		assert.GreaterOrEqual(t, m, uint64(mfnBase))
		assert.False(t, seen[m], "mfn %#x given twice", m)
		seen[m] = true
	}
	assert.Equal(t, []uint32{pfinfoXTAB, pfinfoXTAB}, c.pageTypes(dom, pfns[:2]), "pfns are not frames")
	assert.Equal(t, []uint32{pfinfoNOTAB, pfinfoNOTAB}, c.pageTypes(dom, mfns[:2]))
	_, errs := mapErrs(t, h, dom, domctl.ProtRead, pfns[4:6])
	assert.Equal(t, []int32{-int32(syscall.EINVAL), -int32(syscall.EINVAL)}, errs, "mapping by pfn")

	// L4 (pfn 0) -> L3 (1) -> L2 (2) -> L1 (3) -> pfns 4..7, entries as MFNs.
	mem, errs := mapErrs(t, h, dom, domctl.ProtReadWrite, mfns)
	require.Equal(t, make([]int32, 8), errs)
	pte := func(pfn, i int, v uint64) { binary.LittleEndian.PutUint64(mem[pfn*PageSize+i*8:], v) }
	pte(0, 0, mfns[1]<<12|pteTable)
	pte(1, 0, mfns[2]<<12|pteTable)
	pte(2, 0, mfns[3]<<12|pteTable)
	for i := 4; i < 8; i++ {
		pte(3, i, mfns[i]<<12|pteTable)
	}
	pte(3, 9, 0xABC000|pteTable) // not the domain's frame
	assert.ErrorIs(t, c.mmuext(dom, abi.MMUEXT_PIN_L4_TABLE, mfns[0]), syscall.EINVAL, "an L1 naming a foreign frame")
	assert.Equal(t, make([]uint32, 4), c.pageTypes(dom, mfns[:4]), "a failed pin types nothing")
	pte(3, 9, 0)
	require.NoError(t, c.mmuext(dom, abi.MMUEXT_PIN_L4_TABLE, mfns[0]))
	assert.Equal(t, []uint32{abi.XEN_DOMCTL_PFINFO_L4TAB | abi.XEN_DOMCTL_PFINFO_LPINTAB, abi.XEN_DOMCTL_PFINFO_L3TAB,
		abi.XEN_DOMCTL_PFINFO_L2TAB, abi.XEN_DOMCTL_PFINFO_L1TAB, pfinfoNOTAB}, c.pageTypes(dom, mfns[:5]))
	for i := xenL4First; i <= xenL4Last; i++ {
		e := binary.LittleEndian.Uint64(mem[i*8:])
		assert.NotZero(t, e&ptePresent, "Xen slot %d not filled", i)
		assert.False(t, seen[pteMFN(e)], "Xen slot %d names a guest frame", i)
	}
	assert.ErrorIs(t, c.mmuext(dom, abi.MMUEXT_PIN_L4_TABLE, mfns[0]), syscall.EINVAL, "already pinned")
	assert.ErrorIs(t, c.mmuext(dom, abi.MMUEXT_PIN_L2_TABLE, mfns[3]), syscall.EINVAL, "an L1 pinned as L2")
	_, errs = mapErrs(t, h, dom, domctl.ProtReadWrite, mfns[:5])
	assert.Equal(t, []int32{-22, -22, -22, -22, 0}, errs, "page tables are never mapped writable")

	// mmu_update: entries are validated against the table's type.
	assert.ErrorIs(t, c.mmuUpdate(dom, mfns[3]<<12|10*8, 0xABC000|pteTable), syscall.EINVAL)
	require.NoError(t, c.mmuUpdate(dom, mfns[3]<<12|10*8, mfns[4]<<12|pteTable))
	assert.Equal(t, mfns[4]<<12|pteTable, binary.LittleEndian.Uint64(mem[3*PageSize+10*8:]))
	assert.ErrorIs(t, c.mmuUpdate(dom, mfns[0]<<12|uint64(xenL4First)*8, mfns[1]<<12|pteTable), syscall.EINVAL, "Xen's slot")

	require.NoError(t, c.mmuext(dom, abi.MMUEXT_UNPIN_TABLE, mfns[0]))
	assert.Equal(t, make([]uint32, 5), c.pageTypes(dom, mfns[:5]))
	assert.ErrorIs(t, c.mmuext(dom, abi.MMUEXT_UNPIN_TABLE, mfns[0]), syscall.EINVAL, "not pinned")

	// MMU_MACHPHYS_UPDATE moves a frame to a free pfn.
	require.NoError(t, c.mmuUpdate(dom, mfns[7]<<12|abi.MMU_MACHPHYS_UPDATE, 100))
	assert.Equal(t, []uint32{pfinfoNOTAB}, c.pageTypes(dom, mfns[7:]))
	assert.ErrorIs(t, c.mmuUpdate(dom, mfns[6]<<12|abi.MMU_MACHPHYS_UPDATE, 5), syscall.EINVAL, "pfn taken")

	// The grant table's frame: setup_table names it, a mapping writes it.
	sb := c.buf(int(unsafe.Sizeof(abi.GnttabSetupTable{})))
	fl := c.buf(8)
	st := abi.View[abi.GnttabSetupTable](sb)
	st.Dom, st.NrFrames, st.FrameList = uint16(dom), 1, abi.BufferPointer(fl)
	_, err = c.b.Hypercall(abi.HYPERVISOR_grant_table_op, [5]uint64{abi.GNTTABOP_setup_table, uint64(uintptr(unsafe.Pointer(st))), 1})
	require.NoError(t, err)
	require.Zero(t, st.Status)
	gf := binary.LittleEndian.Uint64(fl)
	assert.False(t, seen[gf])
	gm, errs := mapErrs(t, h, dom, domctl.ProtReadWrite, []uint64{gf})
	require.Equal(t, []int32{0}, errs)
	binary.LittleEndian.PutUint16(gm[8:], 3)
	binary.LittleEndian.PutUint32(gm[12:], 0x1234)
	ge, err := h.GrantEntry(dom, 1)
	require.NoError(t, err)
	assert.Equal(t, GrantEntry{Flags: 3, Frame: 0x1234}, ge)
}

// TestPVIdentityFrames: with PVFramesIdentity populate_physmap leaves each
// pfn as its own frame.
func TestPVIdentityFrames(t *testing.T) {
	h := newTestHost(t, &Config{PVFrames: PVFramesIdentity})
	c := newHC(t, h)
	dom, err := c.create(false, 1)
	require.NoError(t, err)
	assert.Equal(t, []uint64{5, 6}, c.populateFrames(dom, []uint64{5, 6}))
	assert.Equal(t, []uint32{pfinfoNOTAB}, c.pageTypes(dom, []uint64{5}))
}

// TestPVGuestMachineLayout: a simulated PV guest on machine frames keeps
// MFNs where Linux does (cr3, start_info's store frame, the p2m published
// in shared_info), suspends with start_info's MFN in rdx and its store
// frame canonicalised to a pfn, and turns it back into the MFN when the
// suspend is cancelled.
func TestPVGuestMachineLayout(t *testing.T) {
	for _, k := range []Kind{PV64, PV32} {
		t.Run(k.String(), func(t *testing.T) {
			h := newTestHost(t, &Config{PVFrames: PVFramesMachine})
			c := newHC(t, h)
			g, err := h.CreateGuest(testCtx(t), GuestConfig{Kind: k, Convention: ConventionLinux, Pages: 64})
			require.NoError(t, err)
			dom := g.Domain()
			d := g.domain()
			h.x.mu.Lock()
			mfn := func(pfn uint64) uint64 { return d.mfnOf[pfn] }
			siMFN, storeMFN := mfn(startInfoPFN), mfn(storePFN)
			l := newPVLayout(64, d.width())
			topMFN := mfn(l.top)
			h.x.mu.Unlock()
			w := 8
			if k == PV32 {
				w = 4
			}
			storeFrame := func() uint64 {
				mem, errs := mapErrs(t, h, dom, domctl.ProtRead, []uint64{siMFN})
				require.Equal(t, []int32{0}, errs)
				si, err := magic.DecodeStartInfo(mem[:PageSize], w)
				require.NoError(t, err)
				return si.StoreMFN
			}
			assert.Equal(t, storeMFN, storeFrame(), "running: store frame is an MFN")
			info, err := c.info(dom)
			require.NoError(t, err)
			si, errs := mapErrs(t, h, dom, domctl.ProtRead, []uint64{info.SharedInfoFrame})
			require.Equal(t, []int32{0}, errs)
			if w == 8 {
				assert.EqualValues(t, 64, binary.LittleEndian.Uint64(si[si64MaxPFN:]))
				assert.Equal(t, mfn(l.fll), binary.LittleEndian.Uint64(si[si64FLL:]))
				assert.Equal(t, mfn(l.top)<<12, binary.LittleEndian.Uint64(si[si64P2MCR3:]), "linear p2m: p2m_cr3")
				assert.Equal(t, uint64(0xffff888000000000)+l.leaf<<12, binary.LittleEndian.Uint64(si[si64P2MVA:]), "linear p2m: p2m_vaddr")
			} else {
				assert.EqualValues(t, 64, binary.LittleEndian.Uint32(si[si32MaxPFN:]))
				assert.EqualValues(t, mfn(l.fll), binary.LittleEndian.Uint32(si[si32FLL:]))
			}
			types := c.pageTypes(dom, []uint64{topMFN})
			assert.Equal(t, uint32(l.levels)<<pfinfoShift|pfinfoLPINTAB, types[0])

			requestSuspend(t, h, dom)
			size := ctxSize64
			if w == 4 {
				size = ctxSize32
			}
			raw, err := c.vcpuCtx(dom, 0, size)
			require.NoError(t, err)
			if w == 8 {
				assert.Equal(t, siMFN, binary.LittleEndian.Uint64(raw[ctx64RdxOff:]), "rdx = start_info MFN")
				assert.Equal(t, topMFN<<12, binary.LittleEndian.Uint64(raw[ctx64Cr3Off:]))
			} else {
				assert.EqualValues(t, siMFN, binary.LittleEndian.Uint32(raw[ctx32EdxOff:]), "edx = start_info MFN")
				assert.Equal(t, pfnToCR3x32(topMFN), binary.LittleEndian.Uint32(raw[ctx32Cr3Off:]))
			}
			assert.EqualValues(t, storePFN, storeFrame(), "suspended: store frame is a pfn")
			// Cancel (Linux: rax = 1), then resume.
			if w == 8 {
				binary.LittleEndian.PutUint64(raw[ctx64RaxOff:], 1)
			} else {
				binary.LittleEndian.PutUint32(raw[ctx32EaxOff:], 1)
			}
			require.NoError(t, c.setVCPUCtx(dom, 0, raw))
			require.NoError(t, c.simple(abi.XEN_DOMCTL_resumedomain, dom))
			require.NoError(t, g.WaitState(testCtx(t), GuestRunning))
			require.NoError(t, g.WaitCounter(testCtx(t), g.Counter()))
			assert.Equal(t, storeMFN, storeFrame(), "cancelled: store frame is an MFN again")
		})
	}
}

func TestHostFrame(t *testing.T) {
	for _, frames := range []PVFrames{PVFramesMachine, PVFramesIdentity} {
		t.Run(frames.String(), func(t *testing.T) {
			h, err := NewHost(&Config{PVFrames: frames})
			require.NoError(t, err)
			defer h.Close()
			g, err := h.CreateGuest(t.Context(), GuestConfig{Kind: PV64})
			require.NoError(t, err)
			f, err := h.Frame(g.Domain(), 1)
			require.NoError(t, err)
			if frames == PVFramesMachine {
				assert.NotEqual(t, uint64(1), f, "a machine frame is not the pfn")
			} else {
				assert.Equal(t, uint64(1), f)
			}
			_, err = h.Frame(g.Domain(), 1<<40)
			assert.Error(t, err, "unpopulated pfn")
			_, err = h.Frame(999, 1)
			assert.Error(t, err, "missing domain")
		})
	}
}
