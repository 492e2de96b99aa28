package domctl_test

import (
	"context"
	"encoding/binary"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

func TestMMUExtOpPinGolden(t *testing.T) {
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_mmuext_op {
			return 0, syscall.ENOSYS
		}
		return 0, nil
	})
	ctx := context.Background()
	require.NoError(t, c.PinTable(ctx, 7, 4, []uint64{0x1234, 0xabcdef}))
	require.Len(t, r.calls, 1)
	call := r.calls[0]
	assert.EqualValues(t, 26, call.op, "__HYPERVISOR_mmuext_op")
	assert.EqualValues(t, 2, call.args[1], "count")
	assert.EqualValues(t, 0, call.args[2], "null success count")
	assert.EqualValues(t, 7, call.args[3], "foreigndom")
	// struct mmuext_op: u32 cmd, pad, u64 arg1 (mfn), u64 arg2.
	want := unhex(t, `03000000 00000000`)
	want = append(want, le64(0x1234)...)
	want = append(want, le64(0)...)
	want = append(want, unhex(t, `03000000 00000000`)...)
	want = append(want, le64(0xabcdef)...)
	want = append(want, le64(0)...)
	assert.Equal(t, want, call.bufs[0][:48])

	require.NoError(t, c.UnpinTable(ctx, 7, []uint64{0x55}))
	assert.Equal(t, append(unhex(t, `04000000 00000000`), le64(0x55)...), r.calls[1].bufs[0][:16])

	for level, cmd := range []uint32{domctl.MMUExtPinL1Table, domctl.MMUExtPinL2Table, domctl.MMUExtPinL3Table} {
		require.NoError(t, c.PinTable(ctx, 7, level+1, []uint64{1}))
		assert.Equal(t, cmd, binary.LittleEndian.Uint32(r.calls[len(r.calls)-1].bufs[0]))
	}
	assert.ErrorIs(t, c.PinTable(ctx, 7, 5, []uint64{1}), syscall.EINVAL)
	assert.ErrorIs(t, c.PinTable(ctx, 7, 0, []uint64{1}), syscall.EINVAL)
}

func TestMMUExtOpBatchesAndErrors(t *testing.T) {
	var counts []uint64
	c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		counts = append(counts, args[1])
		if len(counts) == 2 {
			return 0, syscall.EINVAL
		}
		return 0, nil
	})
	mfns := make([]uint64, 1500)
	err := c.PinTable(context.Background(), 3, 1, mfns)
	assert.Equal(t, []uint64{1024, 476}, counts)
	require.ErrorIs(t, err, syscall.EINVAL)
	var oe *domctl.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, domctl.OpMMUExtOp, oe.Op)
	assert.EqualValues(t, 3, oe.Domain)
	assert.Contains(t, err.Error(), "after 1024 of 1500")

	counts = nil
	assert.NoError(t, c.MMUExtOp(context.Background(), 3, nil))
	assert.Empty(t, counts, "no requests, no hypercall")
}

func TestMMUUpdateGolden(t *testing.T) {
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_mmu_update {
			return 0, syscall.ENOSYS
		}
		return 0, nil
	})
	err := c.MMUUpdate(context.Background(), 9, []domctl.MMUUpdate{
		{Ptr: 0x5000<<12 | domctl.MMUMachphysUpdate, Val: 0x42},
		{Ptr: 0x6000<<12 + 8, Val: 0x7000<<12 | 1},
	})
	require.NoError(t, err)
	call := r.calls[0]
	assert.EqualValues(t, 1, call.op, "__HYPERVISOR_mmu_update")
	assert.EqualValues(t, 2, call.args[1])
	assert.EqualValues(t, 0, call.args[2])
	assert.EqualValues(t, 9, call.args[3])
	var want []byte
	for _, v := range []uint64{0x5000<<12 | 1, 0x42, 0x6000<<12 + 8, 0x7000<<12 | 1} {
		want = append(want, le64(v)...)
	}
	assert.Equal(t, want, call.bufs[0][:32])
}

func TestPopulatePhysmapFrames(t *testing.T) {
	c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_memory_op || args[0] != abi.XENMEM_populate_physmap {
			return 0, syscall.ENOSYS
		}
		res := abi.View[abi.MemoryReservation](mem(args[1], int(unsafe.Sizeof(abi.MemoryReservation{}))))
		arr := mem(res.ExtentStart.Addr(), int(res.NrExtents)*8)
		// A PV domain: Xen writes back the MFN it chose for each gfn.
		for i := range int(res.NrExtents) {
			g := binary.LittleEndian.Uint64(arr[i*8:])
			binary.LittleEndian.PutUint64(arr[i*8:], 0x80000+g*3)
		}
		return res.NrExtents, nil
	})
	mfns, err := c.PopulatePhysmapFrames(context.Background(), 4, []uint64{0, 1, 0x10})
	require.NoError(t, err)
	assert.Equal(t, []uint64{0x80000, 0x80003, 0x80030}, mfns)
	mfns, err = c.PopulatePhysmapFrames(context.Background(), 4, nil)
	assert.NoError(t, err)
	assert.Empty(t, mfns)
}

func TestGrantTableFramesGolden(t *testing.T) {
	status := int16(0)
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_grant_table_op || args[0] != abi.GNTTABOP_setup_table || args[2] != 1 {
			return 0, syscall.ENOSYS
		}
		s := abi.View[abi.GnttabSetupTable](mem(args[1], int(unsafe.Sizeof(abi.GnttabSetupTable{}))))
		s.Status = status
		arr := mem(s.FrameList.Addr(), int(s.NrFrames)*8)
		binary.LittleEndian.PutUint64(arr, 0x3f00)
		return 0, nil
	})
	frames, err := c.GrantTableFrames(context.Background(), 6, 1)
	require.NoError(t, err)
	assert.Equal(t, []uint64{0x3f00}, frames)
	// struct gnttab_setup_table: u16 dom, pad, u32 nr_frames, i16 status, pad, handle.
	assert.Equal(t, unhex(t, `0600 0000 01000000 0000 0000 0000 0000`), r.calls[0].bufs[1][:16])

	status = -1 // GNTST_general_error
	_, err = c.GrantTableFrames(context.Background(), 6, 1)
	var ge domctl.GrantStatusError
	require.ErrorAs(t, err, &ge)
	assert.EqualValues(t, -1, ge)
	assert.ErrorContains(t, err, domctl.OpGrantSetupTable)
}

func TestVCPUContextPVAccessors(t *testing.T) {
	v, err := domctl.NewVCPUContext(8, make([]byte, 5168))
	require.NoError(t, err)
	v.SetFlags(abi.VGCF_online)
	v.SetCtrlReg(3, 0x1234000)
	v.SetCtrlReg(1, 0x5678001)
	v.SetGDTFrame(0, 0xaa)
	v.SetGDTFrame(15, 0xbb)
	binary.LittleEndian.PutUint64(v.Raw[4960:], 1024) // gdt_ents
	assert.Equal(t, le64(abi.VGCF_online), v.Raw[512:520], "flags")
	assert.Equal(t, le64(0x1234000), v.Raw[4984+24:4984+32], "ctrlreg[3]")
	assert.Equal(t, le64(0x5678001), v.Raw[4984+8:4984+16], "ctrlreg[1]")
	assert.Equal(t, le64(0xaa), v.Raw[4832:4840], "gdt_frames[0]")
	assert.Equal(t, le64(0xbb), v.Raw[4832+15*8:4832+16*8], "gdt_frames[15]")
	assert.EqualValues(t, 1024, v.GDTEnts())
	assert.EqualValues(t, 0x1234000, v.CtrlReg(3))
	assert.EqualValues(t, 0xbb, v.GDTFrame(15))
	assert.EqualValues(t, abi.VGCF_online, v.Flags())

	v32, err := domctl.NewVCPUContext(4, make([]byte, 2800))
	require.NoError(t, err)
	v32.SetCtrlReg(3, 0x1122334455)
	assert.EqualValues(t, 0x22334455, v32.CtrlReg(3), "32-bit registers truncate")
	v32.SetGDTFrame(1, 9)
	assert.EqualValues(t, 9, v32.GDTFrame(1))
	assert.Equal(t, 16, domctl.GDTFrameSlots)
}

func TestSetExtendedVCPUStateGolden(t *testing.T) {
	var gotXSave, gotMSRs []byte
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		if op != abi.HYPERVISOR_domctl {
			return 0, syscall.ENOSYS
		}
		d := domctlIn(args, mem)
		switch d.Cmd {
		case abi.XEN_DOMCTL_setvcpuextstate:
			p := abi.DomctlPayload[abi.DomctlVCPUExtState](d)
			gotXSave = append([]byte(nil), mem(p.Buffer.Addr(), int(p.Size))...)
		case abi.XEN_DOMCTL_set_vcpu_msrs:
			p := abi.DomctlPayload[abi.DomctlVCPUMSRs](d)
			gotMSRs = append([]byte(nil), mem(p.Msrs.Addr(), int(p.MSRCount)*16)...)
		}
		return 0, nil
	})
	ctx := context.Background()

	ext := []byte{1, 0, 0, 0, 0x18, 0, 0, 0, 0xaa, 0xbb}
	require.NoError(t, c.SetExtVCPUContext(ctx, 5, ext))
	d := domctlOf(t, r.calls[0])
	assert.EqualValues(t, 42, d.Cmd, "XEN_DOMCTL_set_ext_vcpucontext")
	assert.EqualValues(t, 5, d.Domain)
	assert.Equal(t, ext, d.U[:len(ext)], "the blob is the union, as libxc's memcpy")
	assert.ErrorIs(t, c.SetExtVCPUContext(ctx, 5, make([]byte, 129)), syscall.EINVAL)

	xsave := []byte("xcr0....accum...area")
	require.NoError(t, c.SetVCPUExtState(ctx, 5, 1, xsave))
	d = domctlOf(t, r.calls[1])
	assert.EqualValues(t, 62, d.Cmd, "XEN_DOMCTL_setvcpuextstate")
	// struct xen_domctl_vcpuextstate: u32 vcpu, pad, u64 xfeature_mask, u64 size, handle buffer.
	assert.Equal(t, append(unhex(t, `01000000 00000000`), append(le64(0), le64(uint64(len(xsave)))...)...), d.U[:24])
	assert.Equal(t, xsave, gotXSave)

	msrs := append(append(unhex(t, `480000c0 00000000`), le64(0x1234)...), append(unhex(t, `03010000 00000000`), le64(1)...)...)
	require.NoError(t, c.SetVCPUMSRs(ctx, 5, 2, msrs))
	d = domctlOf(t, r.calls[2])
	assert.EqualValues(t, 73, d.Cmd, "XEN_DOMCTL_set_vcpu_msrs")
	// struct xen_domctl_vcpu_msrs: u32 vcpu, u32 msr_count, handle msrs.
	assert.Equal(t, unhex(t, `02000000 02000000`), d.U[:8])
	assert.Equal(t, msrs, gotMSRs)
	assert.ErrorIs(t, c.SetVCPUMSRs(ctx, 5, 2, msrs[:20]), syscall.EINVAL)
}

func TestSetCPUPolicyGolden(t *testing.T) {
	var gotLeaves, gotMSRs []byte
	refuse := false
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		if op != abi.HYPERVISOR_domctl || d.Cmd != abi.XEN_DOMCTL_set_cpu_policy {
			return 0, syscall.ENOSYS
		}
		p := abi.DomctlPayload[abi.DomctlCPUPolicy](d)
		gotLeaves = append([]byte(nil), mem(p.Leaves.Addr(), int(p.NrLeaves)*24)...)
		if p.NrMsrs > 0 {
			gotMSRs = append([]byte(nil), mem(p.Msrs.Addr(), int(p.NrMsrs)*16)...)
		}
		if refuse {
			p.ErrLeaf, p.ErrSubleaf = 7, 0
			return 0, syscall.EINVAL
		}
		return 0, nil
	})
	ctx := context.Background()
	leaves := make([]byte, 48)
	leaves[0], leaves[24] = 1, 7
	msrs := append(unhex(t, `ce000000 00000000`), le64(1<<31)...)
	require.NoError(t, c.SetCPUPolicy(ctx, 3, leaves, msrs))
	d := domctlOf(t, r.calls[0])
	assert.EqualValues(t, 83, d.Cmd, "XEN_DOMCTL_set_cpu_policy")
	// struct xen_domctl_cpu_policy: u32 nr_leaves, u32 nr_msrs, handles, err_leaf/subleaf/msr.
	assert.Equal(t, unhex(t, `02000000 01000000`), d.U[:8])
	assert.Equal(t, unhex(t, `ffffffff ffffffff ffffffff`), d.U[24:36])
	assert.Equal(t, leaves, gotLeaves)
	assert.Equal(t, msrs, gotMSRs)

	refuse = true
	err := c.SetCPUPolicy(ctx, 3, leaves, nil)
	var pe *domctl.CPUPolicyError
	require.ErrorAs(t, err, &pe)
	assert.EqualValues(t, 7, pe.Leaf)
	assert.EqualValues(t, ^uint32(0), pe.MSR)
	assert.ErrorIs(t, err, syscall.EINVAL)
	assert.ErrorIs(t, c.SetCPUPolicy(ctx, 3, leaves[:20], nil), syscall.EINVAL)
}

func TestGetExtendedVCPUStateGolden(t *testing.T) {
	xsave := []byte("xcr0....accum...the xsave area")
	msr := append(unhex(t, `480000c0 00000000`), le64(0x1234)...)
	var queries []uint64
	c, r := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		d := domctlIn(args, mem)
		switch d.Cmd {
		case abi.XEN_DOMCTL_get_ext_vcpucontext:
			binary.LittleEndian.PutUint32(d.U[4:], 12) // size
			copy(d.U[8:], "abcd")
		case abi.XEN_DOMCTL_getvcpuextstate:
			p := abi.DomctlPayload[abi.DomctlVCPUExtState](d)
			queries = append(queries, p.Size)
			if p.Buffer.IsNull() {
				p.Size, p.XfeatureMask = 64, 0x7 // the most Xen could write; the host's mask
				break
			}
			if p.XfeatureMask != 0x7 {
				return 0, syscall.EINVAL // Xen: the data call must pass the host's mask
			}
			copy(mem(p.Buffer.Addr(), int(p.Size)), xsave)
			p.Size = uint64(len(xsave))
		case abi.XEN_DOMCTL_get_vcpu_msrs:
			p := abi.DomctlPayload[abi.DomctlVCPUMSRs](d)
			if p.Msrs.IsNull() {
				p.MSRCount = 3
				break
			}
			copy(mem(p.Msrs.Addr(), int(p.MSRCount)*16), msr)
			p.MSRCount = 1
		default:
			return 0, syscall.ENOSYS
		}
		return 0, nil
	})
	ctx := context.Background()
	ext, err := c.ExtVCPUContext(ctx, 4, 1)
	require.NoError(t, err)
	assert.Equal(t, append(unhex(t, `01000000 0c000000`), "abcd"...), ext)
	d := domctlOf(t, r.calls[0])
	assert.EqualValues(t, 43, d.Cmd, "XEN_DOMCTL_get_ext_vcpucontext")
	assert.Equal(t, unhex(t, `01000000`), r.calls[0].bufs[0][16:20], "vcpu asked for")

	got, err := c.VCPUExtState(ctx, 4, 1)
	require.NoError(t, err)
	assert.Equal(t, xsave, got)
	assert.Equal(t, []uint64{0, 64}, queries, "size query, then a buffer of that size")
	assert.EqualValues(t, 63, domctlOf(t, r.calls[1]).Cmd, "XEN_DOMCTL_getvcpuextstate")

	msrs, err := c.VCPUMSRs(ctx, 4, 1)
	require.NoError(t, err)
	assert.Equal(t, msr, msrs, "only the MSRs Xen wrote")
	assert.EqualValues(t, 72, domctlOf(t, r.calls[3]).Cmd, "XEN_DOMCTL_get_vcpu_msrs")
}

func TestGetExtendedVCPUStateEmpty(t *testing.T) {
	calls := 0
	c, _ := newConn(t, func(op uint64, args [5]uint64, mem func(uint64, int) []byte) (uint64, error) {
		calls++
		return 0, nil // size 0, count 0: nothing to save
	})
	x, err := c.VCPUExtState(context.Background(), 4, 0)
	assert.NoError(t, err)
	assert.Nil(t, x)
	m, err := c.VCPUMSRs(context.Background(), 4, 0)
	assert.NoError(t, err)
	assert.Nil(t, m)
	assert.Equal(t, 2, calls, "only the queries")
}
