package xensim

import (
	"bytes"
	"encoding/binary"
	"slices"
	"unsafe"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// ABI sizes and offsets, all derived from the generated structs.
const (
	ctxSize64   = int(unsafe.Sizeof(abi.VCPUGuestContextX86_64{}))
	ctxSize32   = int(unsafe.Sizeof(abi.VCPUGuestContextX86_32{}))
	ctx64RaxOff = int(unsafe.Offsetof(abi.VCPUGuestContextX86_64{}.UserRegs) + unsafe.Offsetof(abi.CPUUserRegsX86_64{}.Rax))
	ctx64RdxOff = int(unsafe.Offsetof(abi.VCPUGuestContextX86_64{}.UserRegs) + unsafe.Offsetof(abi.CPUUserRegsX86_64{}.Rdx))
	ctx32EaxOff = int(unsafe.Offsetof(abi.VCPUGuestContextX86_32{}.UserRegs) + unsafe.Offsetof(abi.CPUUserRegsX86_32{}.Eax))
	ctx32EdxOff = int(unsafe.Offsetof(abi.VCPUGuestContextX86_32{}.UserRegs) + unsafe.Offsetof(abi.CPUUserRegsX86_32{}.Edx))

	hvmDescSize  = int(unsafe.Sizeof(abi.HVMSaveDescriptor{}))
	hvmCPUSize   = int(unsafe.Sizeof(abi.HVMHWCPU{}))
	hvmCPURaxOff = int(unsafe.Offsetof(abi.HVMHWCPU{}.Rax))

	pfinfoNOTAB = abi.XEN_DOMCTL_PFINFO_NOTAB
	pfinfoXTAB  = abi.XEN_DOMCTL_PFINFO_XTAB

	shutdownSuspend = abi.SHUTDOWN_suspend
	shutdownCrash   = abi.SHUTDOWN_crash
)

// Constants the generated ABI package does not carry. Copied from the
// named header (Debian libxen-dev 4.17); replace with abi constants when
// they are generated.
const (
	// xen/include/public/memory.h: MEMOP_CMD_MASK.
	memopCmdMask = 0x3f // TODO(abi): abi.MEMOP_CMD_MASK
)

const (
	hvmFileMagic          = abi.HVM_FILE_MAGIC
	hvmFileVersion        = abi.HVM_FILE_VERSION
	hvmSaveHeaderSize     = int(unsafe.Sizeof(abi.HVMSaveHeader{}))
	xenverExtraversion    = abi.XENVER_extraversion
	shadowOpGetAllocation = abi.XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION
)

// view returns the start of b as *T, or EFAULT if b is too short or
// misaligned (a bad guest handle), where abi.View would panic.
func view[T any](b []byte) (*T, error) {
	var zero T
	if uintptr(len(b)) < unsafe.Sizeof(zero) {
		return nil, errEFAULT
	}
	if uintptr(unsafe.Pointer(unsafe.SliceData(b)))%unsafe.Alignof(zero) != 0 {
		return nil, errEFAULT
	}
	return abi.View[T](b), nil
}

// resolveT resolves a guest handle to a *T inside a hypercall buffer.
func resolveT[T any](x *xen, addr uint64) (*T, error) {
	var zero T
	b, err := x.bufs.resolve(addr, int(unsafe.Sizeof(zero)))
	if err != nil {
		return nil, err
	}
	return view[T](b)
}

// backend is the domctl.Backend of a Host: every call is made as dom0.
type backend struct{ x *xen }

var _ domctl.Backend = (*backend)(nil)

func (b *backend) AllocBuffer(size int) ([]byte, error) {
	if b.x.closed.Load() {
		return nil, ErrClosed
	}
	return b.x.bufs.alloc(size)
}

func (b *backend) FreeBuffer(buf []byte) error {
	if b.x.closed.Load() {
		return nil // Close freed every buffer
	}
	return b.x.bufs.free(buf)
}

func (b *backend) MapForeign(dom domctl.DomID, prot domctl.Prot, gfns []uint64, errs []int32) ([]byte, error) {
	if b.x.closed.Load() {
		return nil, ErrClosed
	}
	return b.x.mapForeign(dom, prot, gfns, errs)
}

func (b *backend) UnmapForeign(mem []byte) error {
	if b.x.closed.Load() {
		return nil // Close unmapped every mapping
	}
	return b.x.unmapForeign(mem)
}

func (b *backend) OpenEvtchn() (domctl.EvtchnDevice, error) {
	if b.x.closed.Load() {
		return nil, ErrClosed
	}
	return b.x.openEvtchn(), nil
}

// Hypercall decodes and runs one hypercall made by dom0. Unknown
// hypercalls and sub-ops fail with ENOSYS.
func (b *backend) Hypercall(op uint64, args [5]uint64) (uint64, error) {
	x := b.x
	if x.closed.Load() {
		return 0, ErrClosed
	}
	switch op {
	case abi.HYPERVISOR_domctl:
		return 0, x.domctl(args[0])
	case abi.HYPERVISOR_memory_op:
		return x.memoryOp(args[0], args[1])
	case abi.HYPERVISOR_xen_version:
		return x.xenVersion(args[0], args[1])
	case abi.HYPERVISOR_event_channel_op:
		return 0, x.eventChannelOp(args[0], args[1])
	case abi.HYPERVISOR_hvm_op:
		return 0, x.hvmOp(args[0], args[1])
	case abi.HYPERVISOR_sched_op:
		return 0, x.schedOp(args[0], args[1])
	case abi.HYPERVISOR_mmu_update:
		return 0, x.mmuUpdate(args[0], args[1], args[2], args[3])
	case abi.HYPERVISOR_mmuext_op:
		return 0, x.mmuExtOp(args[0], args[1], args[2], args[3])
	case abi.HYPERVISOR_grant_table_op:
		return 0, x.grantTableOp(args[0], args[1], args[2])
	}
	return 0, errENOSYS
}

func (x *xen) domctl(addr uint64) error {
	if addr%8 != 0 { // the union holds 64-bit fields
		return errEFAULT
	}
	dc, err := resolveT[abi.Domctl](x, addr)
	if err != nil {
		return err
	}
	if dc.InterfaceVersion != x.version.domctlInterface() {
		return errEACCES
	}
	id := domctl.DomID(dc.Domain)
	switch dc.Cmd {
	case abi.XEN_DOMCTL_createdomain:
		p := abi.DomctlPayload[abi.DomctlCreateDomain](dc)
		d, err := x.createDomain(id, p.Flags&abi.XEN_DOMCTL_CDF_hvm != 0, int(p.MaxVCPUs), p.Handle)
		if err != nil {
			return err
		}
		x.mu.Lock()
		d.noVCPUs = true
		x.mu.Unlock()
		dc.Domain = uint16(d.id)
		return nil
	case abi.XEN_DOMCTL_max_vcpus:
		n := abi.DomctlPayload[abi.DomctlMaxVCPUs](dc).Max
		return x.withDomain(id, func(d *domain) error {
			// "must match the value passed to XEN_DOMCTL_createdomain"
			if int(n) != d.maxVCPUs {
				return errEINVAL
			}
			d.noVCPUs = false
			d.secondaryVCPUsDown() // vcpu_online.go
			return nil
		})
	case abi.XEN_DOMCTL_destroydomain:
		return x.destroy(id)
	case abi.XEN_DOMCTL_pausedomain:
		return x.pause(id)
	case abi.XEN_DOMCTL_unpausedomain:
		return x.unpause(id)
	case abi.XEN_DOMCTL_resumedomain:
		return x.resume(id)
	case abi.XEN_DOMCTL_getdomaininfo:
		info, err := x.domainInfo(id)
		if err != nil {
			return err
		}
		p := abi.DomctlPayload[abi.DomctlGetDomainInfo](dc)
		*p = abi.DomctlGetDomainInfo{
			Domain:          uint16(info.Domain),
			Flags:           info.Flags,
			TotPages:        info.TotPages,
			MaxPages:        info.MaxPages,
			SharedInfoFrame: info.SharedInfoFrame,
			CPUTime:         info.CPUTime,
			NrOnlineVCPUs:   info.NrOnlineVCPUs,
			MaxVCPUID:       info.MaxVCPUID,
			Handle:          info.Handle,
			Cpupool:         info.CPUPool,
			GPAddrBits:      info.GPAddrBits,
		}
		dc.Domain = uint16(info.Domain)
		return nil
	case abi.XEN_DOMCTL_shadow_op:
		return x.shadowOp(id, abi.DomctlPayload[abi.DomctlShadowOp](dc))
	case abi.XEN_DOMCTL_max_mem:
		kb := abi.DomctlPayload[abi.DomctlMaxMem](dc).MaxMemKB
		return x.withDomain(id, func(d *domain) error {
			d.maxPages = kb >> (pageShift - 10)
			return nil
		})
	case abi.XEN_DOMCTL_setvcpucontext:
		p := abi.DomctlPayload[abi.DomctlVCPUContext](dc)
		return x.setVCPUContext(id, p.VCPU, p.Ctxt.Addr())
	case abi.XEN_DOMCTL_getvcpucontext:
		p := abi.DomctlPayload[abi.DomctlVCPUContext](dc)
		return x.getVCPUContext(id, p.VCPU, p.Ctxt.Addr())
	case abi.XEN_DOMCTL_gethvmcontext:
		return x.getHVMContext(id, abi.DomctlPayload[abi.DomctlHVMContext](dc))
	case abi.XEN_DOMCTL_sethvmcontext:
		return x.setHVMContext(id, abi.DomctlPayload[abi.DomctlHVMContext](dc))
	case abi.XEN_DOMCTL_get_address_size:
		p := abi.DomctlPayload[abi.DomctlAddressSize](dc)
		return x.withDomain(id, func(d *domain) error {
			p.Size = uint32(d.addrBits)
			if d.hvm {
				p.Size = 64
			}
			return nil
		})
	case abi.XEN_DOMCTL_set_address_size:
		size := abi.DomctlPayload[abi.DomctlAddressSize](dc).Size
		return x.withDomain(id, func(d *domain) error {
			if d.hvm || (size != 32 && size != 64) || id == 0 {
				return errEINVAL
			}
			if int(size) != d.addrBits {
				d.addrBits = int(size)
				for i := range d.vcpus {
					d.vcpus[i].ctx = nil
				}
			}
			return nil
		})
	case abi.XEN_DOMCTL_gettscinfo:
		p := abi.DomctlPayload[abi.DomctlTSCInfo](dc)
		return x.withDomain(id, func(d *domain) error {
			*p = abi.DomctlTSCInfo{TSCMode: d.tsc.Mode, GtscKHz: d.tsc.GTSCKHz, Incarnation: d.tsc.Incarnation, ElapsedNsec: d.tsc.ElapsedNsec}
			return nil
		})
	case abi.XEN_DOMCTL_settscinfo:
		p := abi.DomctlPayload[abi.DomctlTSCInfo](dc)
		return x.withDomain(id, func(d *domain) error {
			d.tsc = domctl.TSCInfo{Mode: p.TSCMode, GTSCKHz: p.GtscKHz, Incarnation: p.Incarnation, ElapsedNsec: p.ElapsedNsec}
			return nil
		})
	case abi.XEN_DOMCTL_subscribe:
		port := abi.DomctlPayload[abi.DomctlSubscribe](dc).Port
		return x.withDomain(id, func(d *domain) error {
			d.suspendEvtchn = port
			return nil
		})
	case abi.XEN_DOMCTL_getpageframeinfo3:
		p := abi.DomctlPayload[abi.DomctlGetPageFrameInfo3](dc)
		if p.Num > 1<<20 {
			return errEINVAL
		}
		if p.Num == 0 {
			return nil
		}
		b, err := x.bufs.resolve(p.Array.Addr(), int(p.Num)*8)
		if err != nil {
			return err
		}
		arr := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), p.Num)
		return x.pageTypes(id, arr)
	}
	if ok, err := x.pvExtDomctl(id, dc); ok { // pv_ext.go
		return err
	}
	return errENOSYS
}

// withDomain runs fn on domain id with the hypervisor lock held.
func (x *xen) withDomain(id domctl.DomID, fn func(d *domain) error) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	return fn(d)
}

func (x *xen) shadowOp(id domctl.DomID, p *abi.DomctlShadowOp) error {
	switch p.Op {
	case abi.XEN_DOMCTL_SHADOW_OP_OFF:
		return x.disableLogDirty(id)
	case abi.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY:
		return x.enableLogDirty(id)
	case abi.XEN_DOMCTL_SHADOW_OP_ENABLE:
		if p.Mode&abi.XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY == 0 {
			return errENOSYS
		}
		return x.enableLogDirty(id)
	case abi.XEN_DOMCTL_SHADOW_OP_CLEAN, abi.XEN_DOMCTL_SHADOW_OP_PEEK:
		var bitmap []byte
		pages := p.Pages
		if !p.DirtyBitmap.IsNull() {
			x.mu.Lock()
			d, err := x.lookupLocked(id)
			if err == nil {
				pages = min(pages, d.maxGPFN+1)
			}
			x.mu.Unlock()
			if err != nil {
				return err
			}
			if bitmap, err = x.bufs.resolve(p.DirtyBitmap.Addr(), int((pages+7)/8)); err != nil {
				return err
			}
		}
		final := p.Mode&abi.XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL != 0
		n, stats, err := x.dirtyOp(id, p.Op == abi.XEN_DOMCTL_SHADOW_OP_CLEAN, final, bitmap, pages)
		if err != nil {
			return err
		}
		p.Pages = n
		p.Stats.FaultCount = stats.FaultCount
		p.Stats.DirtyCount = stats.DirtyCount
		return nil
	case shadowOpGetAllocation:
		return x.withDomain(id, func(d *domain) error {
			p.MB = 1
			return nil
		})
	}
	return errENOSYS
}

func (x *xen) setVCPUContext(id domctl.DomID, v uint32, addr uint64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	if id == 0 || int(v) >= len(d.vcpus) || d.noVCPUs {
		return errEINVAL
	}
	if addr == 0 { // NULL context: vcpu_reset
		d.vcpus[v].ctx = nil
		d.vcpus[v].online = v == 0
		return nil
	}
	b, err := x.bufs.resolve(addr, d.ctxSize())
	if err != nil {
		return err
	}
	c := d.vcpuCtx(int(v))
	copy(c, b)
	d.vcpus[v].online = ctxOnline(b) // vcpu_online.go
	if d.hvm {
		if cpu := hvmCPURecord(d.hvmCtx, int(v)); cpu != nil {
			copy(cpu[hvmCPURaxOff:hvmCPURaxOff+8], c[ctx64RaxOff:ctx64RaxOff+8])
		}
	}
	return nil
}

func (x *xen) getVCPUContext(id domctl.DomID, v uint32, addr uint64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	if int(v) >= len(d.vcpus) {
		return errEINVAL
	}
	b, err := x.bufs.resolve(addr, d.ctxSize())
	if err != nil {
		return err
	}
	c := d.vcpuCtx(int(v))
	if d.hvm {
		if cpu := hvmCPURecord(d.hvmCtx, int(v)); cpu != nil {
			copy(c[ctx64RaxOff:ctx64RaxOff+8], cpu[hvmCPURaxOff:hvmCPURaxOff+8])
		}
	}
	copy(b, c)
	setCtxOnline(b, d.vcpus[v].online) // vcpu_online.go
	return nil
}

func (x *xen) getHVMContext(id domctl.DomID, p *abi.DomctlHVMContext) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	if !d.hvm {
		return errEINVAL
	}
	ctx := d.savedHVMContext()
	if p.Buffer.IsNull() {
		p.Size = uint32(len(ctx))
		return nil
	}
	if int(p.Size) < len(ctx) {
		return errENOSPC
	}
	b, err := x.bufs.resolve(p.Buffer.Addr(), len(ctx))
	if err != nil {
		return err
	}
	copy(b, ctx)
	p.Size = uint32(len(ctx))
	return nil
}

// savedHVMContext is the domain's HVM context as gethvmcontext returns it:
// without the CPU records of vCPUs that are down, as hvm_save_cpu_ctxt
// saves nothing for them (a restore then leaves them down). Call with
// Xen.mu held.
func (d *domain) savedHVMContext() []byte {
	down := false
	for i := range d.vcpus {
		down = down || !d.vcpus[i].online
	}
	if !down {
		return d.hvmCtx
	}
	out := make([]byte, 0, len(d.hvmCtx))
	off := 0
	_ = hvmRecords(d.hvmCtx, func(code, inst uint16, payload []byte) bool {
		n := hvmDescSize + len(payload)
		if code != abi.HVM_SAVE_CODE_CPU || int(inst) >= len(d.vcpus) || d.vcpus[inst].online {
			out = append(out, d.hvmCtx[off:off+n]...)
		}
		off += n
		return true
	})
	return out
}

func (x *xen) setHVMContext(id domctl.DomID, p *abi.DomctlHVMContext) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	if !d.hvm || id == 0 || d.noVCPUs {
		return errEINVAL
	}
	b, err := x.bufs.resolve(p.Buffer.Addr(), int(p.Size))
	if err != nil {
		return err
	}
	if err := checkHVMContext(b); err != nil {
		return err
	}
	d.hvmCtx = bytes.Clone(b)
	d.hvmVCPUsUp() // vcpu_online.go
	return nil
}

func (x *xen) memoryOp(cmd, arg uint64) (uint64, error) {
	switch cmd & memopCmdMask {
	case abi.XENMEM_maximum_gpfn:
		b, err := x.bufs.resolve(arg, 2)
		if err != nil {
			return 0, err
		}
		id := domctl.DomID(binary.NativeEndian.Uint16(b))
		if id == domctl.DomIDSelf {
			id = 0
		}
		return x.maximumGPFN(id)
	case abi.XENMEM_add_to_physmap:
		a, err := resolveT[abi.AddToPhysmap](x, arg)
		if err != nil {
			return 0, err
		}
		if a.Space != abi.XENMAPSPACE_grant_table {
			return 0, errENOSYS
		}
		return 0, x.mapGrantTable(domctl.DomID(a.DomID), a.Idx, a.Gpfn)
	case abi.XENMEM_remove_from_physmap:
		r, err := resolveT[abi.RemoveFromPhysmap](x, arg)
		if err != nil {
			return 0, err
		}
		return 0, x.removeFromPhysmap(domctl.DomID(r.DomID), r.Gpfn)
	case abi.XENMEM_populate_physmap:
		r, err := resolveT[abi.MemoryReservation](x, arg)
		if err != nil {
			return 0, err
		}
		if r.NrExtents == 0 {
			return 0, nil
		}
		if r.ExtentOrder > 18 || r.NrExtents > 1<<20 {
			return 0, errEINVAL
		}
		b, err := x.bufs.resolve(r.ExtentStart.Addr(), int(r.NrExtents)*8)
		if err != nil {
			return 0, err
		}
		ext := unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(b))), r.NrExtents)
		if r.ExtentOrder == 0 {
			// Each extent is one page: a single populate call, so that
			// runs of consecutive gfns are backed with memory together.
			k, err := x.populate(domctl.DomID(r.DomID), slices.Clone(ext), ext, false)
			if k == 0 {
				return 0, err
			}
			return uint64(k), nil
		}
		done := 0
		for e, base := range ext {
			n := uint64(1) << r.ExtentOrder
			gfns := make([]uint64, n)
			for i := range gfns {
				gfns[i] = base + uint64(i)
			}
			frames := make([]uint64, n)
			k, err := x.populate(domctl.DomID(r.DomID), gfns, frames, n > 1)
			if k > 0 {
				// Xen writes the extent's first frame back: the MFN for a
				// PV guest, the gfn (unchanged) otherwise.
				ext[e] = frames[0]
			}
			if err != nil {
				if done == 0 {
					return 0, err
				}
				break
			}
			if uint64(k) != n {
				break
			}
			done++
		}
		return uint64(done), nil
	}
	return 0, errENOSYS
}

func (x *xen) xenVersion(cmd, arg uint64) (uint64, error) {
	switch cmd {
	case abi.XENVER_version:
		maj, minor := x.version.numbers()
		return uint64(maj)<<16 | uint64(minor), nil
	case abi.XENVER_capabilities:
		b, err := x.bufs.resolve(arg, abi.XEN_CAPABILITIES_INFO_LEN)
		if err != nil {
			return 0, err
		}
		clear(b)
		copy(b, Capabilities)
		return 0, nil
	case xenverExtraversion:
		b, err := x.bufs.resolve(arg, abi.XEN_EXTRAVERSION_LEN)
		if err != nil {
			return 0, err
		}
		clear(b)
		copy(b, ".0-xensim")
		return 0, nil
	}
	return 0, errENOSYS
}

// Capabilities is what XENVER_capabilities reports.
const Capabilities = "xen-3.0-x86_64 xen-3.0-x86_32p hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64"

func (x *xen) eventChannelOp(cmd, arg uint64) error {
	switch cmd {
	case abi.EVTCHNOP_alloc_unbound:
		a, err := resolveT[abi.EvtchnAllocUnbound](x, arg)
		if err != nil {
			return err
		}
		dom := domctl.DomID(a.Dom)
		if dom == domctl.DomIDSelf {
			dom = 0
		}
		remote := domctl.DomID(a.RemoteDom)
		if remote == domctl.DomIDSelf {
			remote = 0
		}
		port, err := x.allocUnbound(dom, remote)
		if err != nil {
			return err
		}
		a.Port = port
		return nil
	}
	return errENOSYS
}

func (x *xen) hvmOp(cmd, arg uint64) error {
	switch cmd {
	case abi.HVMOP_get_param, abi.HVMOP_set_param:
		p, err := resolveT[abi.HVMParam](x, arg)
		if err != nil {
			return err
		}
		return x.withDomain(domctl.DomID(p.DomID), func(d *domain) error {
			if !d.hvm {
				return errEINVAL
			}
			if cmd == abi.HVMOP_get_param {
				p.Value = d.hvmParams[p.Index]
			} else {
				d.hvmParams[p.Index] = p.Value
			}
			return nil
		})
	}
	return errENOSYS
}

func (x *xen) schedOp(cmd, arg uint64) error {
	switch cmd {
	case abi.SCHEDOP_remote_shutdown:
		a, err := resolveT[abi.SchedRemoteShutdown](x, arg)
		if err != nil {
			return err
		}
		return x.remoteShutdown(a) // remote_shutdown.go
	}
	return errENOSYS
}

// HVM context blob: the simulator's gethvmcontext output is a real
// hvm_save stream: a HEADER record (struct hvm_save_header), one CPU
// record (struct hvm_hw_cpu) per vCPU with instance = vCPU id, then END.
// Each record is a struct hvm_save_descriptor followed by its payload.

func newHVMContext(vcpus int, gtscKHz uint32) []byte {
	var b []byte
	desc := func(code, inst uint16, n int) {
		var d abi.HVMSaveDescriptor
		d.Typecode, d.Instance, d.Length = code, inst, uint32(n)
		b = append(b, abi.Bytes(&d)...)
	}
	desc(abi.HVM_SAVE_CODE_HEADER, 0, hvmSaveHeaderSize)
	hdr := abi.HVMSaveHeader{Magic: hvmFileMagic, Version: hvmFileVersion, GtscKHz: gtscKHz}
	b = append(b, abi.Bytes(&hdr)...)
	for v := 0; v < vcpus; v++ {
		desc(abi.HVM_SAVE_CODE_CPU, uint16(v), hvmCPUSize)
		b = append(b, make([]byte, hvmCPUSize)...)
	}
	desc(abi.HVM_SAVE_CODE_END, 0, 0)
	return b
}

// hvmRecords walks blob, calling fn for each record until it returns false.
func hvmRecords(blob []byte, fn func(code, inst uint16, payload []byte) bool) error {
	for off := 0; ; {
		if off+hvmDescSize > len(blob) {
			return errEINVAL
		}
		var d abi.HVMSaveDescriptor
		copy(abi.Bytes(&d), blob[off:])
		off += hvmDescSize
		if uint64(off)+uint64(d.Length) > uint64(len(blob)) {
			return errEINVAL
		}
		if !fn(d.Typecode, d.Instance, blob[off:off+int(d.Length)]) {
			return nil
		}
		if d.Typecode == abi.HVM_SAVE_CODE_END {
			return nil
		}
		off += int(d.Length)
	}
}

// hvmCPURecord returns the payload of the CPU record for vCPU inst.
func hvmCPURecord(blob []byte, inst int) []byte {
	var cpu []byte
	_ = hvmRecords(blob, func(code, i uint16, p []byte) bool {
		if code == abi.HVM_SAVE_CODE_CPU && int(i) == inst && len(p) >= hvmCPUSize {
			cpu = p
			return false
		}
		return true
	})
	return cpu
}

// checkHVMContext validates a blob for sethvmcontext: a HEADER record with
// the right magic first, well-formed records, END last.
func checkHVMContext(blob []byte) error {
	first, sawEnd := true, false
	var bad bool
	err := hvmRecords(blob, func(code, _ uint16, p []byte) bool {
		if first {
			first = false
			if code != abi.HVM_SAVE_CODE_HEADER || len(p) < hvmSaveHeaderSize || binary.LittleEndian.Uint32(p) != hvmFileMagic {
				bad = true
				return false
			}
		}
		if code == abi.HVM_SAVE_CODE_END {
			sawEnd = true
		}
		return true
	})
	if err != nil || bad || !sawEnd {
		return errEINVAL
	}
	return nil
}
