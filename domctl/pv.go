package domctl

import (
	"context"
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// MMUUpdate is one struct mmu_update request of __HYPERVISOR_mmu_update.
// The low two bits of Ptr select the command (MMUNormalPTUpdate: Ptr is the
// machine address of a PTE to set to Val; MMUMachphysUpdate: Ptr is a
// machine address whose frame's M2P entry becomes Val).
type MMUUpdate struct {
	Ptr, Val uint64
}

// mmu_update commands (xen.h), or-ed into MMUUpdate.Ptr.
const (
	MMUNormalPTUpdate uint64 = abi.MMU_NORMAL_PT_UPDATE
	MMUMachphysUpdate uint64 = abi.MMU_MACHPHYS_UPDATE
)

// MMUExtOp is one struct mmuext_op request of __HYPERVISOR_mmuext_op. For
// the pin commands Arg1 is the machine frame of the table; Arg2 is unused.
type MMUExtOp struct {
	Cmd        uint32
	Arg1, Arg2 uint64
}

// mmuext_op commands (xen.h) this package names.
const (
	MMUExtPinL1Table uint32 = abi.MMUEXT_PIN_L1_TABLE
	MMUExtPinL2Table uint32 = abi.MMUEXT_PIN_L2_TABLE
	MMUExtPinL3Table uint32 = abi.MMUEXT_PIN_L3_TABLE
	MMUExtPinL4Table uint32 = abi.MMUEXT_PIN_L4_TABLE
	MMUExtUnpinTable uint32 = abi.MMUEXT_UNPIN_TABLE
)

// mmuBatch is the most requests one mmu_update or mmuext_op carries (libxc
// pins in batches of the same order).
const mmuBatch = 1024

// MMUUpdate is __HYPERVISOR_mmu_update on behalf of dom (foreigndom =
// dom): the requests are applied in order, in batches of at most 1024. A
// PV domain's page tables are only writable this way once they are typed.
func (c *Conn) MMUUpdate(ctx context.Context, dom DomID, reqs []MMUUpdate) error {
	return newOpError(OpMMUUpdate, dom, batched(ctx, c, abi.HYPERVISOR_mmu_update, dom, len(reqs),
		int(unsafe.Sizeof(abi.MMUUpdate{})), func(b []byte, i int) {
			u := abi.View[abi.MMUUpdate](b)
			u.Ptr, u.Val = reqs[i].Ptr, reqs[i].Val
		}))
}

// MMUExtOp is __HYPERVISOR_mmuext_op on behalf of dom (foreigndom = dom),
// in batches of at most 1024.
func (c *Conn) MMUExtOp(ctx context.Context, dom DomID, ops []MMUExtOp) error {
	return newOpError(OpMMUExtOp, dom, batched(ctx, c, abi.HYPERVISOR_mmuext_op, dom, len(ops),
		int(unsafe.Sizeof(abi.MMUExtOp{})), func(b []byte, i int) {
			o := abi.View[abi.MMUExtOp](b)
			o.Cmd = ops[i].Cmd
			binary.LittleEndian.PutUint64(o.Arg1[:], ops[i].Arg1)
			binary.LittleEndian.PutUint64(o.Arg2[:], ops[i].Arg2)
		}))
}

// PinTable pins the machine frames mfns of dom as page tables of level
// (1 to 4: MMUEXT_PIN_L<level>_TABLE). Xen validates each table first.
func (c *Conn) PinTable(ctx context.Context, dom DomID, level int, mfns []uint64) error {
	if level < 1 || level > 4 {
		return newOpError(OpMMUExtOp, dom, fmt.Errorf("page-table level %d: %w", level, syscall.EINVAL))
	}
	return c.MMUExtOp(ctx, dom, tableOps(MMUExtPinL1Table+uint32(level-1), mfns))
}

// UnpinTable is MMUEXT_UNPIN_TABLE for each of mfns.
func (c *Conn) UnpinTable(ctx context.Context, dom DomID, mfns []uint64) error {
	return c.MMUExtOp(ctx, dom, tableOps(MMUExtUnpinTable, mfns))
}

func tableOps(cmd uint32, mfns []uint64) []MMUExtOp {
	ops := make([]MMUExtOp, len(mfns))
	for i, m := range mfns {
		ops[i] = MMUExtOp{Cmd: cmd, Arg1: m}
	}
	return ops
}

// batched issues hypercall op (mmu_update or mmuext_op: array, count, null
// success count, foreigndom) over n requests of size bytes each, encoded by
// put into their slot.
func batched(ctx context.Context, c *Conn, op uint64, dom DomID, n, size int, put func(b []byte, i int)) error {
	if n == 0 {
		return nil
	}
	arr, err := c.alloc(min(n, mmuBatch) * size)
	if err != nil {
		return err
	}
	defer c.free(arr)
	for start := 0; start < n; start += mmuBatch {
		end := min(start+mmuBatch, n)
		clear(arr)
		for i := start; i < end; i++ {
			put(arr[(i-start)*size:], i)
		}
		if _, err := c.hypercall(ctx, op, bufAddr(arr), uint64(end-start), 0, uint64(dom)); err != nil {
			if start > 0 {
				return fmt.Errorf("after %d of %d requests: %w", start, n, err)
			}
			return err
		}
	}
	return nil
}

// GrantStatusError is a failed grant-table operation's GNTST_* status
// (negative), which Xen reports in the operation's struct rather than as
// the hypercall's return value.
type GrantStatusError int16

func (e GrantStatusError) Error() string { return fmt.Sprintf("grant table status %d", int16(e)) }

// GrantTableFrames is GNTTABOP_setup_table for dom: the frames of its
// grant table's first n frames (machine frames for a PV domain), which a
// privileged caller maps with MapForeign to seed reserved entries.
func (c *Conn) GrantTableFrames(ctx context.Context, dom DomID, n uint32) ([]uint64, error) {
	if n == 0 {
		return nil, nil
	}
	arr, err := c.alloc(int(n) * 8)
	if err != nil {
		return nil, newOpError(OpGrantSetupTable, dom, err)
	}
	defer c.free(arr)
	buf, err := c.alloc(int(unsafe.Sizeof(abi.GnttabSetupTable{})))
	if err != nil {
		return nil, newOpError(OpGrantSetupTable, dom, err)
	}
	defer c.free(buf)
	s := abi.View[abi.GnttabSetupTable](buf)
	s.Dom = uint16(dom)
	s.NrFrames = n
	s.FrameList = abi.BufferPointer(arr)
	if _, err := c.hypercall(ctx, abi.HYPERVISOR_grant_table_op, abi.GNTTABOP_setup_table, bufAddr(buf), 1); err != nil {
		return nil, newOpError(OpGrantSetupTable, dom, err)
	}
	if s.Status != abi.GNTST_okay {
		return nil, newOpError(OpGrantSetupTable, dom, GrantStatusError(s.Status))
	}
	frames := make([]uint64, n)
	for i := range frames {
		frames[i] = binary.LittleEndian.Uint64(arr[i*8:])
	}
	return frames, nil
}

// SetExtVCPUContext is XEN_DOMCTL_set_ext_vcpucontext: blob is the
// xen_domctl_ext_vcpucontext a getter returned (as an
// X86_PV_VCPU_EXTENDED record carries it, vcpu and size included), copied
// into the domctl's union as libxc does.
func (c *Conn) SetExtVCPUContext(ctx context.Context, dom DomID, blob []byte) error {
	if len(blob) == 0 || len(blob) > abi.DomctlUnionSize {
		return newOpError(OpSetExtVCPUContext, dom, fmt.Errorf("extended vCPU context of %d bytes: %w", len(blob), syscall.EINVAL))
	}
	return newOpError(OpSetExtVCPUContext, dom, c.domctl(ctx, abi.XEN_DOMCTL_set_ext_vcpucontext, dom, func(d *abi.Domctl) {
		copy(d.U[:], blob)
	}, nil))
}

// SetVCPUExtState is XEN_DOMCTL_setvcpuextstate: vCPU vcpu's xsave area
// (an X86_PV_VCPU_XSAVE record's blob: xcr0, xcr0_accum, then the area).
func (c *Conn) SetVCPUExtState(ctx context.Context, dom DomID, vcpu uint32, blob []byte) error {
	if len(blob) == 0 {
		return newOpError(OpSetVCPUExtState, dom, syscall.EINVAL)
	}
	buf, err := c.allocCopy(blob)
	if err != nil {
		return newOpError(OpSetVCPUExtState, dom, err)
	}
	defer c.free(buf)
	return newOpError(OpSetVCPUExtState, dom, c.domctl(ctx, abi.XEN_DOMCTL_setvcpuextstate, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUExtState](d)
		p.VCPU = vcpu
		p.Size = uint64(len(blob))
		p.Buffer = abi.BufferPointer(buf)
	}, nil))
}

// SetVCPUMSRs is XEN_DOMCTL_set_vcpu_msrs: blob is an array of
// xen_domctl_vcpu_msr (16 bytes each), as an X86_PV_VCPU_MSRS record
// carries it.
func (c *Conn) SetVCPUMSRs(ctx context.Context, dom DomID, vcpu uint32, blob []byte) error {
	size := int(unsafe.Sizeof(abi.DomctlVCPUMSR{}))
	if len(blob) == 0 || len(blob)%size != 0 {
		return newOpError(OpSetVCPUMSRs, dom, fmt.Errorf("MSR list of %d bytes: %w", len(blob), syscall.EINVAL))
	}
	buf, err := c.allocCopy(blob)
	if err != nil {
		return newOpError(OpSetVCPUMSRs, dom, err)
	}
	defer c.free(buf)
	return newOpError(OpSetVCPUMSRs, dom, c.domctl(ctx, abi.XEN_DOMCTL_set_vcpu_msrs, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUMSRs](d)
		p.VCPU = vcpu
		p.MSRCount = uint32(len(blob) / size)
		p.Msrs = abi.BufferPointer(buf)
	}, nil))
}

// CPUPolicyError is a set_cpu_policy refusal with the leaf, subleaf or MSR
// Xen's audit objected to (^0 where it named none).
type CPUPolicyError struct {
	Leaf, Subleaf, MSR uint32
	Err                error
}

func (e *CPUPolicyError) Error() string {
	return fmt.Sprintf("CPU policy refused (leaf %#x subleaf %#x msr %#x): %v", e.Leaf, e.Subleaf, e.MSR, e.Err)
}

func (e *CPUPolicyError) Unwrap() error { return e.Err }

// SetCPUPolicy is XEN_DOMCTL_set_cpu_policy: leaves is an array of
// xen_cpuid_leaf_t (24 bytes each) and msrs of xen_msr_entry_t (16 bytes
// each), as an image's X86_CPUID_POLICY and X86_MSR_POLICY records carry
// them; either may be empty.
func (c *Conn) SetCPUPolicy(ctx context.Context, dom DomID, leaves, msrs []byte) error {
	ls, ms := int(unsafe.Sizeof(abi.CPUIDLeaf{})), int(unsafe.Sizeof(abi.MSREntry{}))
	if len(leaves)%ls != 0 || len(msrs)%ms != 0 {
		return newOpError(OpSetCPUPolicy, dom, fmt.Errorf("CPUID policy of %d bytes, MSR policy of %d: %w", len(leaves), len(msrs), syscall.EINVAL))
	}
	lb, err := c.allocCopy(leaves)
	if err != nil {
		return newOpError(OpSetCPUPolicy, dom, err)
	}
	defer c.free(lb)
	mb, err := c.allocCopy(msrs)
	if err != nil {
		return newOpError(OpSetCPUPolicy, dom, err)
	}
	defer c.free(mb)
	buf, err := c.alloc(int(unsafe.Sizeof(abi.Domctl{})))
	if err != nil {
		return newOpError(OpSetCPUPolicy, dom, err)
	}
	defer c.free(buf)
	d := abi.View[abi.Domctl](buf)
	d.Cmd, d.InterfaceVersion, d.Domain = abi.XEN_DOMCTL_set_cpu_policy, c.version, uint16(dom)
	p := abi.DomctlPayload[abi.DomctlCPUPolicy](d)
	p.NrLeaves, p.NrMsrs = uint32(len(leaves)/ls), uint32(len(msrs)/ms)
	p.Leaves, p.Msrs = abi.BufferPointer(lb), abi.BufferPointer(mb)
	p.ErrLeaf, p.ErrSubleaf, p.ErrMSR = ^uint32(0), ^uint32(0), ^uint32(0)
	if _, err := c.hypercall(ctx, abi.HYPERVISOR_domctl, bufAddr(buf)); err != nil {
		if p.ErrLeaf != ^uint32(0) || p.ErrMSR != ^uint32(0) {
			err = &CPUPolicyError{Leaf: p.ErrLeaf, Subleaf: p.ErrSubleaf, MSR: p.ErrMSR, Err: err}
		}
		return newOpError(OpSetCPUPolicy, dom, err)
	}
	return nil
}

// ExtVCPUContext is XEN_DOMCTL_get_ext_vcpucontext for vCPU vcpu: the
// first size bytes of xen_domctl_ext_vcpucontext (vcpu and size
// included), the blob of an X86_PV_VCPU_EXTENDED record, as libxc's save
// writes it.
func (c *Conn) ExtVCPUContext(ctx context.Context, dom DomID, vcpu uint32) ([]byte, error) {
	var blob []byte
	err := c.domctl(ctx, abi.XEN_DOMCTL_get_ext_vcpucontext, dom, func(d *abi.Domctl) {
		binary.LittleEndian.PutUint32(d.U[:], vcpu)
	}, func(d *abi.Domctl) error {
		size := binary.LittleEndian.Uint32(d.U[4:])
		if size > abi.DomctlUnionSize {
			return fmt.Errorf("extended vCPU context of %d bytes: %w", size, syscall.EFAULT)
		}
		blob = append([]byte(nil), d.U[:size]...)
		return nil
	})
	return blob, newOpError(OpGetExtVCPUContext, dom, err)
}

// VCPUExtState is XEN_DOMCTL_getvcpuextstate for vCPU vcpu: a size query
// (null buffer), then the xsave blob of an X86_PV_VCPU_XSAVE record. A
// host without xsave (xfeature_mask 0) or a vCPU without extended state
// (size 0) gives nil, as libxc's write_one_vcpu_xsave skips the record.
// The data call passes the mask the query answered: Xen refuses another.
func (c *Conn) VCPUExtState(ctx context.Context, dom DomID, vcpu uint32) ([]byte, error) {
	var size, mask uint64
	err := c.domctl(ctx, abi.XEN_DOMCTL_getvcpuextstate, dom, func(d *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlVCPUExtState](d).VCPU = vcpu
	}, func(d *abi.Domctl) error {
		p := abi.DomctlPayload[abi.DomctlVCPUExtState](d)
		size, mask = p.Size, p.XfeatureMask
		return nil
	})
	if err != nil || size == 0 || mask == 0 {
		return nil, newOpError(OpGetVCPUExtState, dom, err)
	}
	if size > 1<<20 {
		return nil, newOpError(OpGetVCPUExtState, dom, fmt.Errorf("xsave state of %d bytes: %w", size, syscall.EFAULT))
	}
	buf, err := c.alloc(int(size))
	if err != nil {
		return nil, newOpError(OpGetVCPUExtState, dom, err)
	}
	defer c.free(buf)
	err = c.domctl(ctx, abi.XEN_DOMCTL_getvcpuextstate, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUExtState](d)
		p.VCPU, p.XfeatureMask, p.Size, p.Buffer = vcpu, mask, size, abi.BufferPointer(buf)
	}, func(d *abi.Domctl) error {
		got := abi.DomctlPayload[abi.DomctlVCPUExtState](d).Size
		if got > size {
			return fmt.Errorf("hypervisor wrote %d bytes into a %d-byte buffer: %w", got, size, syscall.EFAULT)
		}
		size = got
		return nil
	})
	if err != nil {
		return nil, newOpError(OpGetVCPUExtState, dom, err)
	}
	return append([]byte(nil), buf[:size]...), nil
}

// VCPUMSRs is XEN_DOMCTL_get_vcpu_msrs for vCPU vcpu: a count query, then
// the xen_domctl_vcpu_msr array of an X86_PV_VCPU_MSRS record. No MSRs
// gives nil.
func (c *Conn) VCPUMSRs(ctx context.Context, dom DomID, vcpu uint32) ([]byte, error) {
	var count uint32
	err := c.domctl(ctx, abi.XEN_DOMCTL_get_vcpu_msrs, dom, func(d *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlVCPUMSRs](d).VCPU = vcpu
	}, func(d *abi.Domctl) error {
		count = abi.DomctlPayload[abi.DomctlVCPUMSRs](d).MSRCount
		return nil
	})
	if err != nil || count == 0 {
		return nil, newOpError(OpGetVCPUMSRs, dom, err)
	}
	if count > 4096 {
		return nil, newOpError(OpGetVCPUMSRs, dom, fmt.Errorf("%d MSRs: %w", count, syscall.EFAULT))
	}
	size := int(unsafe.Sizeof(abi.DomctlVCPUMSR{}))
	buf, err := c.alloc(int(count) * size)
	if err != nil {
		return nil, newOpError(OpGetVCPUMSRs, dom, err)
	}
	defer c.free(buf)
	err = c.domctl(ctx, abi.XEN_DOMCTL_get_vcpu_msrs, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUMSRs](d)
		p.VCPU, p.MSRCount, p.Msrs = vcpu, count, abi.BufferPointer(buf)
	}, func(d *abi.Domctl) error {
		got := abi.DomctlPayload[abi.DomctlVCPUMSRs](d).MSRCount
		if got > count {
			return fmt.Errorf("hypervisor wrote %d MSRs into room for %d: %w", got, count, syscall.EFAULT)
		}
		count = got
		return nil
	})
	if err != nil {
		return nil, newOpError(OpGetVCPUMSRs, dom, err)
	}
	return append([]byte(nil), buf[:int(count)*size]...), nil
}
