package domctl

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// DomainInfo is XEN_DOMCTL_getdomaininfo for dom. Xen 4.17 answers a
// request for a missing domain with the next existing domain; DomainInfo
// compares the echoed id and returns ErrNoDomain then, as 4.18+ (which
// fail with ESRCH) do.
func (c *Conn) DomainInfo(ctx context.Context, dom DomID) (DomainInfo, error) {
	var info DomainInfo
	err := c.domctl(ctx, abi.XEN_DOMCTL_getdomaininfo, dom, nil, func(d *abi.Domctl) error {
		p := abi.DomctlPayload[abi.DomctlGetDomainInfo](d)
		if DomID(p.Domain) != dom {
			return fmt.Errorf("%w (hypervisor answered for domain %d)", ErrNoDomain, p.Domain)
		}
		info = DomainInfo{
			Domain:          DomID(p.Domain),
			Flags:           p.Flags,
			TotPages:        p.TotPages,
			MaxPages:        p.MaxPages,
			SharedInfoFrame: p.SharedInfoFrame,
			CPUTime:         p.CPUTime,
			NrOnlineVCPUs:   p.NrOnlineVCPUs,
			MaxVCPUID:       p.MaxVCPUID,
			Handle:          p.Handle,
			CPUPool:         p.Cpupool,
			GPAddrBits:      p.GPAddrBits,
		}
		return nil
	})
	return info, newOpError(OpGetDomainInfo, dom, err)
}

// Pause is XEN_DOMCTL_pausedomain.
func (c *Conn) Pause(ctx context.Context, dom DomID) error {
	return c.simple(ctx, OpPause, abi.XEN_DOMCTL_pausedomain, dom)
}

// Unpause is XEN_DOMCTL_unpausedomain.
func (c *Conn) Unpause(ctx context.Context, dom DomID) error {
	return c.simple(ctx, OpUnpause, abi.XEN_DOMCTL_unpausedomain, dom)
}

// ResumeDomain is XEN_DOMCTL_resumedomain: it clears a suspended domain's
// shutdown state and lets its vCPUs run again.
func (c *Conn) ResumeDomain(ctx context.Context, dom DomID) error {
	return c.simple(ctx, OpResume, abi.XEN_DOMCTL_resumedomain, dom)
}

// DestroyDomain is XEN_DOMCTL_destroydomain. Xen may answer EAGAIN while
// it tears the domain down (the call is preemptible); DestroyDomain
// repeats the call then, checking ctx each time.
func (c *Conn) DestroyDomain(ctx context.Context, dom DomID) error {
	for {
		err := c.domctl(ctx, abi.XEN_DOMCTL_destroydomain, dom, nil, nil)
		if !errors.Is(err, syscall.EAGAIN) {
			return newOpError(OpDestroy, dom, err)
		}
	}
}

// CreateDomain is XEN_DOMCTL_createdomain, XEN_DOMCTL_max_vcpus (which
// allocates the vCPUs), then, as cfg asks, XEN_DOMCTL_max_mem and
// XEN_DOMCTL_set_address_size. If a follow-up step
// fails the new domain is destroyed.
func (c *Conn) CreateDomain(ctx context.Context, cfg CreateConfig) (DomID, error) {
	vcpus := cfg.MaxVCPUs
	if vcpus == 0 {
		vcpus = 1
	}
	var flags, emu uint32
	if cfg.HVM {
		flags = abi.XEN_DOMCTL_CDF_hvm | abi.XEN_DOMCTL_CDF_hap
		// As libxl: every emulated device but vPCI, which Xen 4.17
		// refuses for a domU ("current selection of emulators").
		emu = abi.XEN_X86_EMU_ALL &^ abi.XEN_X86_EMU_VPCI
	}
	if cfg.EmulationFlags != 0 {
		emu = cfg.EmulationFlags
	}
	maxEvtchn := cfg.MaxEvtchnPort
	if maxEvtchn == 0 {
		maxEvtchn = 1023
	}
	var id DomID
	err := c.domctl(ctx, abi.XEN_DOMCTL_createdomain, cfg.Domain, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlCreateDomain](d)
		p.Handle = cfg.Handle
		p.Flags = flags
		p.MaxVCPUs = vcpus
		p.MaxEvtchnPort = maxEvtchn
		p.MaxGrantFrames = -1    // the hypervisor's default
		p.MaxMaptrackFrames = -1 // the hypervisor's default
		p.GrantOpts = 1 & abi.XEN_DOMCTL_GRANT_version_mask
		p.Arch.EmulationFlags = emu
	}, func(d *abi.Domctl) error {
		id = DomID(d.Domain)
		return nil
	})
	if err != nil {
		return 0, newOpError(OpCreate, cfg.Domain, err)
	}
	undo := func(err error) (DomID, error) {
		// Best effort: the creation error is what the caller needs.
		_ = c.DestroyDomain(context.WithoutCancel(ctx), id)
		return 0, err
	}
	// Xen 4.17 still allocates the vCPUs themselves only on
	// XEN_DOMCTL_max_vcpus (with the createdomain value); without it a
	// restore's sethvmcontext finds no vCPU 0 and fails with EINVAL.
	err = c.domctl(ctx, abi.XEN_DOMCTL_max_vcpus, id, func(d *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlMaxVCPUs](d).Max = vcpus
	}, nil)
	if err != nil {
		return undo(newOpError(OpMaxVCPUs, id, err))
	}
	if cfg.MaxMemKB != 0 {
		if err := c.SetMaxMem(ctx, id, cfg.MaxMemKB); err != nil {
			return undo(err)
		}
	}
	if !cfg.HVM && cfg.AddressSize != 0 && cfg.AddressSize != 64 {
		if err := c.SetAddressSize(ctx, id, cfg.AddressSize); err != nil {
			return undo(err)
		}
	}
	return id, nil
}

// SetMaxMem is XEN_DOMCTL_max_mem.
func (c *Conn) SetMaxMem(ctx context.Context, dom DomID, kb uint64) error {
	return newOpError(OpMaxMem, dom, c.domctl(ctx, abi.XEN_DOMCTL_max_mem, dom, func(d *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlMaxMem](d).MaxMemKB = kb
	}, nil))
}

// AddressSize is XEN_DOMCTL_get_address_size: the guest's width in bits.
func (c *Conn) AddressSize(ctx context.Context, dom DomID) (int, error) {
	var bits int
	err := c.domctl(ctx, abi.XEN_DOMCTL_get_address_size, dom, nil, func(d *abi.Domctl) error {
		bits = int(abi.DomctlPayload[abi.DomctlAddressSize](d).Size)
		return nil
	})
	return bits, newOpError(OpGetAddressSize, dom, err)
}

// SetAddressSize is XEN_DOMCTL_set_address_size (PV guests: 32 or 64).
func (c *Conn) SetAddressSize(ctx context.Context, dom DomID, bits int) error {
	return newOpError(OpSetAddressSize, dom, c.domctl(ctx, abi.XEN_DOMCTL_set_address_size, dom, func(d *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlAddressSize](d).Size = uint32(bits)
	}, nil))
}

// Capabilities is XENVER_capabilities, e.g. "xen-3.0-x86_64 hvm-3.0-x86_64".
func (c *Conn) Capabilities(ctx context.Context) (string, error) {
	buf, err := c.alloc(abi.XEN_CAPABILITIES_INFO_LEN)
	if err != nil {
		return "", newOpError(OpCapabilities, DomIDInvalid, err)
	}
	defer c.free(buf)
	if _, err := c.hypercall(ctx, abi.HYPERVISOR_xen_version, abi.XENVER_capabilities, bufAddr(buf)); err != nil {
		return "", newOpError(OpCapabilities, DomIDInvalid, err)
	}
	s := buf[:abi.XEN_CAPABILITIES_INFO_LEN]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return string(s), nil
}

// VCPUContext is XEN_DOMCTL_getvcpucontext, read in the layout of width
// (8: vcpu_guest_context_x86_64, 4: the 32-bit PV layout).
func (c *Conn) VCPUContext(ctx context.Context, dom DomID, vcpu uint32, width int) (*VCPUContext, error) {
	size, err := VCPUContextSize(width)
	if err != nil {
		return nil, newOpError(OpGetVCPUContext, dom, err)
	}
	buf, err := c.alloc(size)
	if err != nil {
		return nil, newOpError(OpGetVCPUContext, dom, err)
	}
	defer c.free(buf)
	err = c.domctl(ctx, abi.XEN_DOMCTL_getvcpucontext, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUContext](d)
		p.VCPU = vcpu
		p.Ctxt = abi.BufferPointer(buf)
	}, nil)
	if err != nil {
		return nil, newOpError(OpGetVCPUContext, dom, err)
	}
	return &VCPUContext{Width: width, Raw: append([]byte(nil), buf[:size]...)}, nil
}

// SetVCPUContext is XEN_DOMCTL_setvcpucontext. A nil vc passes a null
// context, which resets the vCPU (as xc_vcpu_setcontext(..., NULL)).
func (c *Conn) SetVCPUContext(ctx context.Context, dom DomID, vcpu uint32, vc *VCPUContext) error {
	var buf []byte
	if vc != nil {
		size, err := VCPUContextSize(vc.Width)
		if err == nil && len(vc.Raw) != size {
			err = fmt.Errorf("vCPU context is %d bytes, want %d for width %d", len(vc.Raw), size, vc.Width)
		}
		if err != nil {
			return newOpError(OpSetVCPUContext, dom, err)
		}
		if buf, err = c.alloc(size); err != nil {
			return newOpError(OpSetVCPUContext, dom, err)
		}
		defer c.free(buf)
		copy(buf, vc.Raw)
	}
	return newOpError(OpSetVCPUContext, dom, c.domctl(ctx, abi.XEN_DOMCTL_setvcpucontext, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUContext](d)
		p.VCPU = vcpu
		p.Ctxt = abi.BufferPointer(buf)
	}, nil))
}

// HVMContext is XEN_DOMCTL_gethvmcontext: a size query (null buffer), then
// the records themselves.
func (c *Conn) HVMContext(ctx context.Context, dom DomID) ([]byte, error) {
	var size uint32
	err := c.domctl(ctx, abi.XEN_DOMCTL_gethvmcontext, dom, nil, func(d *abi.Domctl) error {
		size = abi.DomctlPayload[abi.DomctlHVMContext](d).Size
		return nil
	})
	if err != nil {
		return nil, newOpError(OpGetHVMContext, dom, err)
	}
	if size == 0 {
		return nil, newOpError(OpGetHVMContext, dom, fmt.Errorf("hypervisor reported an empty HVM context: %w", syscall.EINVAL))
	}
	buf, err := c.alloc(int(size))
	if err != nil {
		return nil, newOpError(OpGetHVMContext, dom, err)
	}
	defer c.free(buf)
	err = c.domctl(ctx, abi.XEN_DOMCTL_gethvmcontext, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlHVMContext](d)
		p.Size = size
		p.Buffer = abi.BufferPointer(buf)
	}, func(d *abi.Domctl) error {
		got := abi.DomctlPayload[abi.DomctlHVMContext](d).Size
		if got > size {
			return fmt.Errorf("hypervisor wrote %d bytes into a %d-byte buffer: %w", got, size, syscall.EFAULT)
		}
		size = got
		return nil
	})
	if err != nil {
		return nil, newOpError(OpGetHVMContext, dom, err)
	}
	return append([]byte(nil), buf[:size]...), nil
}

// SetHVMContext is XEN_DOMCTL_sethvmcontext.
func (c *Conn) SetHVMContext(ctx context.Context, dom DomID, data []byte) error {
	if len(data) == 0 {
		return newOpError(OpSetHVMContext, dom, syscall.EINVAL)
	}
	buf, err := c.allocCopy(data)
	if err != nil {
		return newOpError(OpSetHVMContext, dom, err)
	}
	defer c.free(buf)
	return newOpError(OpSetHVMContext, dom, c.domctl(ctx, abi.XEN_DOMCTL_sethvmcontext, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlHVMContext](d)
		p.Size = uint32(len(data))
		p.Buffer = abi.BufferPointer(buf)
	}, nil))
}

// hvmParam issues HVMOP_get_param or HVMOP_set_param.
func (c *Conn) hvmParam(ctx context.Context, op uint64, dom DomID, index uint32, value uint64) (uint64, error) {
	buf, err := c.alloc(int(unsafe.Sizeof(abi.HVMParam{})))
	if err != nil {
		return 0, err
	}
	defer c.free(buf)
	p := abi.View[abi.HVMParam](buf)
	p.DomID = uint16(dom)
	p.Index = index
	p.Value = value
	if _, err := c.hypercall(ctx, abi.HYPERVISOR_hvm_op, op, bufAddr(buf)); err != nil {
		return 0, err
	}
	return p.Value, nil
}

// HVMParam is HVMOP_get_param.
func (c *Conn) HVMParam(ctx context.Context, dom DomID, index uint32) (uint64, error) {
	v, err := c.hvmParam(ctx, abi.HVMOP_get_param, dom, index, 0)
	return v, newOpError(OpGetHVMParam, dom, err)
}

// SetHVMParam is HVMOP_set_param.
func (c *Conn) SetHVMParam(ctx context.Context, dom DomID, index uint32, value uint64) error {
	_, err := c.hvmParam(ctx, abi.HVMOP_set_param, dom, index, value)
	return newOpError(OpSetHVMParam, dom, err)
}

// TSCInfo is XEN_DOMCTL_gettscinfo.
func (c *Conn) TSCInfo(ctx context.Context, dom DomID) (TSCInfo, error) {
	var info TSCInfo
	err := c.domctl(ctx, abi.XEN_DOMCTL_gettscinfo, dom, nil, func(d *abi.Domctl) error {
		p := abi.DomctlPayload[abi.DomctlTSCInfo](d)
		info = TSCInfo{Mode: p.TSCMode, GTSCKHz: p.GtscKHz, Incarnation: p.Incarnation, ElapsedNsec: p.ElapsedNsec}
		return nil
	})
	return info, newOpError(OpGetTSCInfo, dom, err)
}

// SetTSCInfo is XEN_DOMCTL_settscinfo.
func (c *Conn) SetTSCInfo(ctx context.Context, dom DomID, info TSCInfo) error {
	return newOpError(OpSetTSCInfo, dom, c.domctl(ctx, abi.XEN_DOMCTL_settscinfo, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlTSCInfo](d)
		p.TSCMode = info.Mode
		p.GtscKHz = info.GTSCKHz
		p.Incarnation = info.Incarnation
		p.ElapsedNsec = info.ElapsedNsec
	}, nil))
}

// shadowOp issues XEN_DOMCTL_shadow_op. For CLEAN and PEEK with a
// non-empty bitmap it passes a buffer of len(bitmap)*64 bits and copies the
// result back; an empty bitmap passes a null handle (CLEAN then only
// clears).
func (c *Conn) shadowOp(ctx context.Context, dom DomID, op, mode uint32, bitmap []uint64) (ShadowStats, error) {
	var buf []byte
	if len(bitmap) > 0 {
		var err error
		if buf, err = c.alloc(len(bitmap) * 8); err != nil {
			return ShadowStats{}, newOpError(OpShadowOp, dom, err)
		}
		defer c.free(buf)
	}
	var st ShadowStats
	err := c.domctl(ctx, abi.XEN_DOMCTL_shadow_op, dom, func(d *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlShadowOp](d)
		p.Op = op
		p.Mode = mode
		p.DirtyBitmap = abi.BufferPointer(buf)
		p.Pages = uint64(len(bitmap)) * 64
	}, func(d *abi.Domctl) error {
		p := abi.DomctlPayload[abi.DomctlShadowOp](d)
		st = ShadowStats{FaultCount: p.Stats.FaultCount, DirtyCount: p.Stats.DirtyCount, Pages: p.Pages}
		return nil
	})
	if err != nil {
		return ShadowStats{}, newOpError(OpShadowOp, dom, err)
	}
	for i := range bitmap {
		bitmap[i] = binary.LittleEndian.Uint64(buf[i*8:])
	}
	return st, nil
}

// EnableLogDirty is XEN_DOMCTL_shadow_op ENABLE_LOGDIRTY. Xen has no way
// to ask whether log-dirty is already on (say, left over from a save that
// crashed), so when enabling fails with EINVAL or EBUSY it turns log-dirty
// off and enables it once more, as libxc's save does.
func (c *Conn) EnableLogDirty(ctx context.Context, dom DomID) error {
	_, err := c.shadowOp(ctx, dom, abi.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0, nil)
	if !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.EBUSY) {
		return err
	}
	if _, offErr := c.shadowOp(ctx, dom, abi.XEN_DOMCTL_SHADOW_OP_OFF, 0, nil); offErr != nil {
		return err
	}
	_, err = c.shadowOp(ctx, dom, abi.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY, 0, nil)
	return err
}

// DisableLogDirty is XEN_DOMCTL_shadow_op OFF.
func (c *Conn) DisableLogDirty(ctx context.Context, dom DomID) error {
	_, err := c.shadowOp(ctx, dom, abi.XEN_DOMCTL_SHADOW_OP_OFF, 0, nil)
	return err
}

// CleanDirty is XEN_DOMCTL_shadow_op CLEAN: fill bitmap with the pages
// dirtied since the last CLEAN (bit i of word i/64 = pfn i) and clear
// them. final sets XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL (the last round of a
// save, domain paused).
func (c *Conn) CleanDirty(ctx context.Context, dom DomID, bitmap []uint64, final bool) (ShadowStats, error) {
	var mode uint32
	if final {
		mode = abi.XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL
	}
	return c.shadowOp(ctx, dom, abi.XEN_DOMCTL_SHADOW_OP_CLEAN, mode, bitmap)
}

// PeekDirty is XEN_DOMCTL_shadow_op PEEK: like CleanDirty but keeps the
// dirty state.
func (c *Conn) PeekDirty(ctx context.Context, dom DomID, bitmap []uint64) (ShadowStats, error) {
	return c.shadowOp(ctx, dom, abi.XEN_DOMCTL_SHADOW_OP_PEEK, 0, bitmap)
}

// MaxGPFN is XENMEM_maximum_gpfn.
func (c *Conn) MaxGPFN(ctx context.Context, dom DomID) (uint64, error) {
	buf, err := c.alloc(2)
	if err != nil {
		return 0, newOpError(OpMaxGPFN, dom, err)
	}
	defer c.free(buf)
	binary.LittleEndian.PutUint16(buf, uint16(dom))
	r, err := c.hypercall(ctx, abi.HYPERVISOR_memory_op, abi.XENMEM_maximum_gpfn, bufAddr(buf))
	return r, newOpError(OpMaxGPFN, dom, err)
}

// MapGrantTable is XENMEM_add_to_physmap with XENMAPSPACE_grant_table:
// it puts frame idx of dom's grant table at gfn in dom's physmap (how the
// toolstack reaches an HVM guest's grant table to seed it).
func (c *Conn) MapGrantTable(ctx context.Context, dom DomID, idx, gfn uint64) error {
	buf, err := c.alloc(int(unsafe.Sizeof(abi.AddToPhysmap{})))
	if err != nil {
		return newOpError(OpAddToPhysmap, dom, err)
	}
	defer c.free(buf)
	a := abi.View[abi.AddToPhysmap](buf)
	a.DomID, a.Size, a.Space, a.Idx, a.Gpfn = uint16(dom), 0, abi.XENMAPSPACE_grant_table, idx, gfn
	_, err = c.hypercall(ctx, abi.HYPERVISOR_memory_op, abi.XENMEM_add_to_physmap, bufAddr(buf))
	return newOpError(OpAddToPhysmap, dom, err)
}

// RemoveFromPhysmap is XENMEM_remove_from_physmap of gfn in dom.
func (c *Conn) RemoveFromPhysmap(ctx context.Context, dom DomID, gfn uint64) error {
	buf, err := c.alloc(int(unsafe.Sizeof(abi.RemoveFromPhysmap{})))
	if err != nil {
		return newOpError(OpRemoveFromPhysmap, dom, err)
	}
	defer c.free(buf)
	r := abi.View[abi.RemoveFromPhysmap](buf)
	r.DomID, r.Gpfn = uint16(dom), gfn
	_, err = c.hypercall(ctx, abi.HYPERVISOR_memory_op, abi.XENMEM_remove_from_physmap, bufAddr(buf))
	return newOpError(OpRemoveFromPhysmap, dom, err)
}

// PopulatePhysmap is XENMEM_populate_physmap of order-0 extents at gfns.
// Xen returns how many extents it populated; fewer than asked is EBUSY, as
// in libxc's xc_domain_populate_physmap_exact.
func (c *Conn) PopulatePhysmap(ctx context.Context, dom DomID, gfns []uint64) error {
	return newOpError(OpPopulatePhysmap, dom, c.populate(ctx, dom, gfns, nil))
}

// PopulatePhysmapFrames is PopulatePhysmap that also returns the frames
// Xen allocated: for a PV (not translated) domain Xen writes the new
// machine frame of extent i back into the extent array, so frames[i] is
// the MFN now backing gfns[i]; for a translated (HVM) domain the array is
// left alone and frames equals gfns.
func (c *Conn) PopulatePhysmapFrames(ctx context.Context, dom DomID, gfns []uint64) ([]uint64, error) {
	frames := make([]uint64, len(gfns))
	if err := c.populate(ctx, dom, gfns, frames); err != nil {
		return nil, newOpError(OpPopulatePhysmap, dom, err)
	}
	return frames, nil
}

// populate issues XENMEM_populate_physmap; out, if not nil, receives the
// extent array as Xen left it.
func (c *Conn) populate(ctx context.Context, dom DomID, gfns, out []uint64) error {
	if len(gfns) == 0 {
		return nil
	}
	arr, err := c.alloc(len(gfns) * 8)
	if err != nil {
		return err
	}
	defer c.free(arr)
	for i, g := range gfns {
		binary.LittleEndian.PutUint64(arr[i*8:], g)
	}
	buf, err := c.alloc(int(unsafe.Sizeof(abi.MemoryReservation{})))
	if err != nil {
		return err
	}
	defer c.free(buf)
	r := abi.View[abi.MemoryReservation](buf)
	r.ExtentStart = abi.BufferPointer(arr)
	r.NrExtents = uint64(len(gfns))
	r.DomID = uint16(dom)
	done, err := c.hypercall(ctx, abi.HYPERVISOR_memory_op, abi.XENMEM_populate_physmap, bufAddr(buf))
	if err == nil && done != uint64(len(gfns)) {
		err = fmt.Errorf("populated %d of %d frames: %w", done, len(gfns), syscall.EBUSY)
	}
	if err != nil {
		return err
	}
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(arr[i*8:])
	}
	return nil
}

// pageFrameInfoBatch is the most frames one getpageframeinfo3 takes (Xen
// refuses more with E2BIG; libxc batches by the same count).
const pageFrameInfoBatch = 1024

// PageFrameTypes is XEN_DOMCTL_getpageframeinfo3: types[i] receives the
// XEN_DOMCTL_PFINFO_* type of gfns[i] (the LTAB bits).
func (c *Conn) PageFrameTypes(ctx context.Context, dom DomID, gfns []uint64, types []uint32) error {
	if len(types) != len(gfns) {
		return newOpError(OpPageFrameInfo, dom, fmt.Errorf("%d types for %d frames: %w", len(types), len(gfns), syscall.EINVAL))
	}
	if len(gfns) == 0 {
		return nil
	}
	n := min(len(gfns), pageFrameInfoBatch)
	arr, err := c.alloc(n * 8)
	if err != nil {
		return newOpError(OpPageFrameInfo, dom, err)
	}
	defer c.free(arr)
	for start := 0; start < len(gfns); start += pageFrameInfoBatch {
		batch := gfns[start:min(start+pageFrameInfoBatch, len(gfns))]
		for i, g := range batch {
			binary.LittleEndian.PutUint64(arr[i*8:], g)
		}
		err := c.domctl(ctx, abi.XEN_DOMCTL_getpageframeinfo3, dom, func(d *abi.Domctl) {
			p := abi.DomctlPayload[abi.DomctlGetPageFrameInfo3](d)
			p.Num = uint64(len(batch))
			p.Array = abi.BufferPointer(arr)
		}, nil)
		if err != nil {
			return newOpError(OpPageFrameInfo, dom, err)
		}
		for i := range batch {
			types[start+i] = uint32(binary.LittleEndian.Uint64(arr[i*8:]) & abi.XEN_DOMCTL_PFINFO_LTAB_MASK)
		}
	}
	return nil
}

// SubscribeSuspend is XEN_DOMCTL_subscribe: Xen signals port (in dom) when
// dom finishes suspending, instead of raising VIRQ_DOM_EXC.
func (c *Conn) SubscribeSuspend(ctx context.Context, dom DomID, port uint32) error {
	return newOpError(OpSubscribe, dom, c.domctl(ctx, abi.XEN_DOMCTL_subscribe, dom, func(d *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlSubscribe](d).Port = port
	}, nil))
}

// AllocUnboundEvtchn is EVTCHNOP_alloc_unbound: a new port in dom that
// remote may bind to.
func (c *Conn) AllocUnboundEvtchn(ctx context.Context, dom, remote DomID) (uint32, error) {
	buf, err := c.alloc(int(unsafe.Sizeof(abi.EvtchnAllocUnbound{})))
	if err != nil {
		return 0, newOpError(OpAllocUnbound, dom, err)
	}
	defer c.free(buf)
	a := abi.View[abi.EvtchnAllocUnbound](buf)
	a.Dom = uint16(dom)
	a.RemoteDom = uint16(remote)
	if _, err := c.hypercall(ctx, abi.HYPERVISOR_event_channel_op, abi.EVTCHNOP_alloc_unbound, bufAddr(buf)); err != nil {
		return 0, newOpError(OpAllocUnbound, dom, err)
	}
	return a.Port, nil
}
