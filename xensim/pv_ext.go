package xensim

import (
	"encoding/binary"
	"syscall"
	"unsafe"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// Per-vCPU state beyond vcpu_guest_context that libxc's PV save carries
// in X86_PV_VCPU_EXTENDED, X86_PV_VCPU_XSAVE and X86_PV_VCPU_MSRS records,
// behind the domctls of Xen 4.17's arch_do_domctl:
//
//   - XEN_DOMCTL_get/set_ext_vcpucontext: SYSENTER/SYSCALL32 callbacks
//     (PV only; an HVM vCPU reads zeroes and refuses non-zero values) and
//     the vMCE state (both kinds).
//   - XEN_DOMCTL_getvcpuextstate/setvcpuextstate: xcr0, xcr0_accum and
//     the uncompressed xsave area. A size query (null buffer, or size and
//     mask both 0) answers the host's xfeature_mask and the largest size;
//     a data call must pass that mask and room for PV_XSAVE_SIZE(xcr0_accum).
//   - XEN_DOMCTL_get/set_vcpu_msrs: the MSRs Xen sends (PV only, EINVAL
//     for HVM). A null handle answers the maximum count; a data call
//     writes the non-zero ones and answers how many (ENOBUFS if more than
//     the room given).
//
// The modelled host has xsave with x87, SSE and AVX and no DBEXT (the
// AMD DR address-mask MSRs fault, as guest_wrmsr does there).

const (
	simXFeatureMask = xcr0X87 | xcr0SSE | xcr0AVX
	xcr0X87         = 1 << 0
	xcr0SSE         = 1 << 1
	xcr0AVX         = 1 << 2

	pvXSaveHdrSize = 16  // xcr0 and xcr0_accum before the area
	xsaveLegacy    = 512 // FXSAVE region
	xsaveHdrSize   = 64  // xsave header (xstate_bv at +0, xcomp_bv at +8)
	xsaveAVXSize   = 256 // YMM_Hi128
	xsaveMinSize   = xsaveLegacy + xsaveHdrSize

	// vMCE: Xen's guest MCG_CAP (MCG_TES_P | MCG_SER_P | 2 banks) and
	// the bits a restored MCG_CAP may carry besides it.
	simGuestMCGCap = 1<<11 | 1<<24 | 2
	mcgCapCount    = 0xff
	mcgCtlP        = 1 << 8

	// The MSRs get_vcpu_msrs sends, in Xen's order (msrs_to_send[]).
	msrSpecCtrl             = 0x00000048
	msrMiscFeaturesEnables  = 0x00000140
	msrTSCAux               = 0xc0000103
	msrAMD64DR0AddressMask  = 0xc0011027
	msrAMD64DR1AddressMask  = 0xc0011019
	msrAMD64DR2AddressMask  = 0xc001101a
	msrAMD64DR3AddressMask  = 0xc001101b
	specCtrlValid           = 1<<0 | 1<<1 | 1<<2 // IBRS, STIBP, SSBD
	miscFeaturesCPUIDFaults = 1 << 0
)

var (
	errENOBUFS    = syscall.ENOBUFS
	errEOPNOTSUPP = syscall.EOPNOTSUPP
)

var msrsToSend = [...]uint32{msrSpecCtrl, msrMiscFeaturesEnables, msrTSCAux,
	msrAMD64DR0AddressMask, msrAMD64DR1AddressMask, msrAMD64DR2AddressMask, msrAMD64DR3AddressMask}

// extCtxSize is sizeof(struct xen_domctl_ext_vcpucontext); vmceOff is
// offsetof(..., vmce), the smallest size set_ext_vcpucontext takes.
const (
	extCtxSize = int(unsafe.Sizeof(abi.DomctlExtVCPUContext{}))
	vmceOff    = int(unsafe.Offsetof(abi.DomctlExtVCPUContext{}.McgCap))
	vmceSize   = extCtxSize - vmceOff
)

// vcpuExt is one vCPU's state behind those domctls. The zero value is a
// fresh vCPU (see ext).
type vcpuExt struct {
	init bool
	// PV SYSENTER/SYSCALL32 callbacks.
	syscall32EIP, sysenterEIP           uint64
	syscall32CS, sysenterCS             uint16
	syscall32Disables, sysenterDisables uint8
	// vmce is struct hvm_vmce_vcpu (caps, mci_ctl2 banks 0/1, mcg_ext_ctl).
	vmce            [vmceSize]byte
	xcr0, xcr0Accum uint64
	xsave           []byte // uncompressed area of xstateSize(xcr0Accum) bytes
	msrs            map[uint32]uint64
}

// ext returns vCPU v's extended state, initialised as vcpu_create does:
// xcr0 = xcr0_accum = x87|SSE with a reset FPU, default vMCE caps.
func (c *vcpu) extState() *vcpuExt {
	e := &c.ext
	if !e.init {
		e.init = true
		e.xcr0, e.xcr0Accum = xcr0X87|xcr0SSE, xcr0X87|xcr0SSE
		e.xsave = make([]byte, xstateSize(e.xcr0Accum))
		binary.LittleEndian.PutUint16(e.xsave[0:], 0x37f)   // FCW
		binary.LittleEndian.PutUint32(e.xsave[24:], 0x1f80) // MXCSR
		binary.LittleEndian.PutUint64(e.vmce[0:], simGuestMCGCap)
		e.msrs = map[uint32]uint64{}
	}
	return e
}

// xstateSize is xstate_ctxt_size: the uncompressed area for the features
// in xcr0.
func xstateSize(xcr0 uint64) int {
	if xcr0&xcr0AVX != 0 {
		return xsaveMinSize + xsaveAVXSize
	}
	return xsaveMinSize
}

// extVCPU resolves vCPU v of domain id for these domctls: ESRCH for a
// missing domain or vCPU. Call with Xen.mu held.
func (x *xen) extVCPU(id domctl.DomID, v uint32) (*domain, *vcpu, error) {
	d, err := x.lookupLocked(id)
	if err != nil {
		return nil, nil, err
	}
	if d.noVCPUs || int(v) >= len(d.vcpus) {
		return nil, nil, errESRCH
	}
	return d, &d.vcpus[v], nil
}

// pvExtDomctl runs the six domctls above; handled is false for others.
func (x *xen) pvExtDomctl(id domctl.DomID, dc *abi.Domctl) (handled bool, err error) {
	switch dc.Cmd {
	case abi.XEN_DOMCTL_get_ext_vcpucontext:
		return true, x.getExtVCPUContext(id, abi.DomctlPayload[abi.DomctlExtVCPUContext](dc))
	case abi.XEN_DOMCTL_set_ext_vcpucontext:
		return true, x.setExtVCPUContext(id, abi.DomctlPayload[abi.DomctlExtVCPUContext](dc), dc.U[:extCtxSize])
	case abi.XEN_DOMCTL_getvcpuextstate:
		return true, x.getVCPUExtState(id, abi.DomctlPayload[abi.DomctlVCPUExtState](dc))
	case abi.XEN_DOMCTL_setvcpuextstate:
		return true, x.setVCPUExtState(id, abi.DomctlPayload[abi.DomctlVCPUExtState](dc))
	case abi.XEN_DOMCTL_get_vcpu_msrs:
		return true, x.getVCPUMSRs(id, abi.DomctlPayload[abi.DomctlVCPUMSRs](dc))
	case abi.XEN_DOMCTL_set_vcpu_msrs:
		return true, x.setVCPUMSRs(id, abi.DomctlPayload[abi.DomctlVCPUMSRs](dc))
	}
	return false, nil
}

func (x *xen) getExtVCPUContext(id domctl.DomID, p *abi.DomctlExtVCPUContext) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, c, err := x.extVCPU(id, p.VCPU)
	if err != nil {
		return err
	}
	e := c.extState()
	vcpuID := p.VCPU
	*p = abi.DomctlExtVCPUContext{VCPU: vcpuID, Size: uint32(extCtxSize)}
	if !d.hvm {
		p.Syscall32CallbackEIP, p.SysenterCallbackEIP = e.syscall32EIP, e.sysenterEIP
		p.Syscall32CallbackCS, p.SysenterCallbackCS = e.syscall32CS, e.sysenterCS
		p.Syscall32DisablesEvents, p.SysenterDisablesEvents = e.syscall32Disables, e.sysenterDisables
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&p.McgCap)), vmceSize), e.vmce[:])
	return nil
}

func (x *xen) setExtVCPUContext(id domctl.DomID, p *abi.DomctlExtVCPUContext, raw []byte) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, c, err := x.extVCPU(id, p.VCPU)
	if err != nil {
		return err
	}
	if int(p.Size) < vmceOff {
		return errEINVAL
	}
	if d.hvm {
		// No SYSENTER/SYSCALL32 callbacks for HVM vCPUs.
		if p.SysenterCallbackCS&^3 != 0 || p.SysenterCallbackEIP != 0 ||
			p.Syscall32CallbackCS&^3 != 0 || p.Syscall32CallbackEIP != 0 {
			return errEINVAL
		}
	} else if !canonical(p.SysenterCallbackEIP) || !canonical(p.Syscall32CallbackEIP) {
		return errEINVAL
	}
	// vcpu_set_vmce: the whole vMCE state, MCG_CAP only, or nothing,
	// by how much the caller sent.
	var vmce [vmceSize]byte
	switch {
	case int(p.Size) >= extCtxSize:
		copy(vmce[:], raw[vmceOff:])
	case int(p.Size) >= vmceOff+8:
		copy(vmce[:8], raw[vmceOff:])
	}
	e := c.extState()
	if caps := binary.LittleEndian.Uint64(vmce[:]); int(p.Size) >= vmceOff+8 {
		if caps&^(simGuestMCGCap|mcgCapCount|mcgCtlP) != 0 {
			return errEINVAL
		}
		if int(p.Size) >= extCtxSize {
			e.vmce = vmce
		} else {
			copy(e.vmce[:8], vmce[:8])
		}
	}
	if !d.hvm {
		e.syscall32EIP, e.sysenterEIP = p.Syscall32CallbackEIP, p.SysenterCallbackEIP
		e.syscall32CS, e.sysenterCS = p.Syscall32CallbackCS, p.SysenterCallbackCS
		e.syscall32Disables, e.sysenterDisables = p.Syscall32DisablesEvents, p.SysenterDisablesEvents
	}
	return nil
}

// canonical reports a 48-bit canonical address.
func canonical(a uint64) bool { return uint64(int64(a<<16)>>16) == a }

func (x *xen) getVCPUExtState(id domctl.DomID, p *abi.DomctlVCPUExtState) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, c, err := x.extVCPU(id, p.VCPU)
	if err != nil {
		return err
	}
	if (p.Size == 0 && p.XfeatureMask == 0) || p.Buffer.IsNull() {
		p.XfeatureMask = simXFeatureMask
		p.Size = uint64(pvXSaveHdrSize + xstateSize(simXFeatureMask))
		return nil
	}
	e := c.extState()
	size := pvXSaveHdrSize + len(e.xsave)
	if p.Size < uint64(size) || p.XfeatureMask != simXFeatureMask {
		return errEINVAL
	}
	b, err := x.bufs.resolve(p.Buffer.Addr(), size)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b[0:], e.xcr0)
	binary.LittleEndian.PutUint64(b[8:], e.xcr0Accum)
	copy(b[pvXSaveHdrSize:], e.xsave)
	p.Size = uint64(size)
	return nil
}

// validXCR0 is Xen's valid_xcr0 for the modelled features.
func validXCR0(xcr0 uint64) bool {
	return xcr0&xcr0X87 != 0 && (xcr0&xcr0AVX == 0 || xcr0&xcr0SSE != 0)
}

func (x *xen) setVCPUExtState(id domctl.DomID, p *abi.DomctlVCPUExtState) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, c, err := x.extVCPU(id, p.VCPU)
	if err != nil {
		return err
	}
	if p.Size < pvXSaveHdrSize || p.Size > uint64(pvXSaveHdrSize+xstateSize(simXFeatureMask)) {
		return errEINVAL
	}
	b, err := x.bufs.resolve(p.Buffer.Addr(), int(p.Size))
	if err != nil {
		return err
	}
	xcr0, accum := binary.LittleEndian.Uint64(b[0:]), binary.LittleEndian.Uint64(b[8:])
	area := b[pvXSaveHdrSize:]
	switch {
	case accum != 0:
		// validate_xstate
		if accum&^simXFeatureMask != 0 {
			return errEOPNOTSUPP
		}
		if !validXCR0(xcr0) || !validXCR0(accum) || xcr0&^accum != 0 {
			return errEINVAL
		}
		if len(area) >= xsaveMinSize && binary.LittleEndian.Uint64(area[xsaveLegacy:])&^accum != 0 {
			return errEINVAL
		}
	case xcr0 != 0:
		return errEINVAL
	}
	switch {
	case len(area) == 0:
		return nil // nothing to restore
	case len(area) < xsaveMinSize:
		return errEINVAL
	case binary.LittleEndian.Uint64(area[xsaveLegacy+8:])&(1<<63) != 0:
		return errEOPNOTSUPP // compressed format
	case len(area) != xstateSize(accum):
		return errEINVAL
	}
	e := c.extState()
	e.xcr0, e.xcr0Accum = xcr0, accum
	e.xsave = append(e.xsave[:0], area...)
	return nil
}

func (x *xen) getVCPUMSRs(id domctl.DomID, p *abi.DomctlVCPUMSRs) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, c, err := x.extVCPU(id, p.VCPU)
	if err != nil {
		return err
	}
	if d.hvm {
		return errEINVAL
	}
	if p.Msrs.IsNull() {
		p.MSRCount = uint32(len(msrsToSend))
		return nil
	}
	e := c.extState()
	var out []abi.DomctlVCPUMSR
	for _, idx := range msrsToSend {
		if v := e.msrs[idx]; v != 0 {
			out = append(out, abi.DomctlVCPUMSR{Index: idx, Value: v})
		}
	}
	// Xen writes those that fit, then answers how many there are.
	room := p.MSRCount
	p.MSRCount = uint32(len(out))
	n := min(len(out), int(room))
	if n > 0 {
		esz := int(unsafe.Sizeof(abi.DomctlVCPUMSR{}))
		b, err := x.bufs.resolve(p.Msrs.Addr(), n*esz)
		if err != nil {
			return err
		}
		for i, m := range out[:n] {
			binary.LittleEndian.PutUint32(b[i*esz:], m.Index)
			binary.LittleEndian.PutUint32(b[i*esz+4:], 0)
			binary.LittleEndian.PutUint64(b[i*esz+8:], m.Value)
		}
	}
	if len(out) > n {
		return errENOBUFS
	}
	return nil
}

// wrmsrOK is guest_wrmsr's verdict on the modelled host.
func wrmsrOK(idx uint32, v uint64) bool {
	switch idx {
	case msrSpecCtrl:
		return v&^specCtrlValid == 0
	case msrMiscFeaturesEnables:
		return v&^miscFeaturesCPUIDFaults == 0
	case msrTSCAux:
		return v>>32 == 0
	}
	return false // DR address masks: no DBEXT on this host
}

func (x *xen) setVCPUMSRs(id domctl.DomID, p *abi.DomctlVCPUMSRs) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, c, err := x.extVCPU(id, p.VCPU)
	if err != nil {
		return err
	}
	if d.hvm || p.MSRCount > uint32(len(msrsToSend)) {
		return errEINVAL
	}
	if p.MSRCount == 0 {
		return nil
	}
	esz := int(unsafe.Sizeof(abi.DomctlVCPUMSR{}))
	b, err := x.bufs.resolve(p.Msrs.Addr(), int(p.MSRCount)*esz)
	if err != nil {
		return err
	}
	e := c.extState()
	for i := range int(p.MSRCount) {
		m := b[i*esz:]
		idx, v := binary.LittleEndian.Uint32(m), binary.LittleEndian.Uint64(m[8:])
		if binary.LittleEndian.Uint32(m[4:]) != 0 || !wrmsrOK(idx, v) {
			// Xen reports how many it applied.
			p.MSRCount = uint32(i)
			return errEINVAL
		}
		e.msrs[idx] = v
	}
	return nil
}
