package xensim

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// hc issues raw hypercalls on a Backend the way a toolstack does: structs
// from internal/abi in buffers from AllocBuffer.
type hc struct {
	t   *testing.T
	b   domctl.Backend
	ver uint32
}

func newHC(t *testing.T, h *Host) *hc {
	return &hc{t: t, b: h.Backend(), ver: h.Version().DomctlInterfaceVersion()}
}

func (c *hc) buf(n int) []byte {
	b, err := c.b.AllocBuffer(n)
	require.NoError(c.t, err)
	c.t.Cleanup(func() { _ = c.b.FreeBuffer(b) })
	return b
}

// domctl runs cmd on dom; fill sets up the payload. It returns the struct
// as the hypervisor left it.
func (c *hc) domctl(cmd uint32, dom domctl.DomID, fill func(dc *abi.Domctl)) (*abi.Domctl, error) {
	b := c.buf(int(unsafe.Sizeof(abi.Domctl{})))
	dc := abi.View[abi.Domctl](b)
	dc.Cmd, dc.InterfaceVersion, dc.Domain = cmd, c.ver, uint16(dom)
	if fill != nil {
		fill(dc)
	}
	_, err := c.b.Hypercall(abi.HYPERVISOR_domctl, [5]uint64{uint64(uintptr(unsafe.Pointer(dc)))})
	return dc, err
}

func (c *hc) info(dom domctl.DomID) (abi.DomctlGetDomainInfo, error) {
	dc, err := c.domctl(abi.XEN_DOMCTL_getdomaininfo, dom, nil)
	return *abi.DomctlPayload[abi.DomctlGetDomainInfo](dc), err
}

func (c *hc) simple(cmd uint32, dom domctl.DomID) error {
	_, err := c.domctl(cmd, dom, nil)
	return err
}

// vcpuCtx reads vCPU v's context (size bytes).
func (c *hc) vcpuCtx(dom domctl.DomID, v uint32, size int) ([]byte, error) {
	b := c.buf(size)
	_, err := c.domctl(abi.XEN_DOMCTL_getvcpucontext, dom, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUContext](dc)
		p.VCPU, p.Ctxt = v, abi.BufferPointer(b)
	})
	return append([]byte(nil), b...), err
}

func (c *hc) setVCPUCtx(dom domctl.DomID, v uint32, ctx []byte) error {
	b := c.buf(len(ctx))
	copy(b, ctx)
	_, err := c.domctl(abi.XEN_DOMCTL_setvcpucontext, dom, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlVCPUContext](dc)
		p.VCPU, p.Ctxt = v, abi.BufferPointer(b)
	})
	return err
}

// shadow runs a shadow op; for CLEAN/PEEK it returns the bitmap of pages bits.
func (c *hc) shadow(dom domctl.DomID, op, mode uint32, pages uint64) (abi.DomctlShadowOp, []byte, error) {
	var bm []byte
	dc, err := c.domctl(abi.XEN_DOMCTL_shadow_op, dom, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlShadowOp](dc)
		p.Op, p.Mode, p.Pages = op, mode, pages
		if pages > 0 {
			bm = c.buf(int((pages + 7) / 8))
			p.DirtyBitmap = abi.BufferPointer(bm)
		}
	})
	return *abi.DomctlPayload[abi.DomctlShadowOp](dc), bm, err
}

func (c *hc) hvmContext(dom domctl.DomID) ([]byte, error) {
	dc, err := c.domctl(abi.XEN_DOMCTL_gethvmcontext, dom, nil)
	if err != nil {
		return nil, err
	}
	size := abi.DomctlPayload[abi.DomctlHVMContext](dc).Size
	b := c.buf(int(size))
	_, err = c.domctl(abi.XEN_DOMCTL_gethvmcontext, dom, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlHVMContext](dc)
		p.Size, p.Buffer = size, abi.BufferPointer(b)
	})
	return append([]byte(nil), b...), err
}

func (c *hc) setHVMContext(dom domctl.DomID, blob []byte) error {
	b := c.buf(len(blob))
	copy(b, blob)
	_, err := c.domctl(abi.XEN_DOMCTL_sethvmcontext, dom, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlHVMContext](dc)
		p.Size, p.Buffer = uint32(len(blob)), abi.BufferPointer(b)
	})
	return err
}

func (c *hc) create(hvm bool, vcpus uint32) (domctl.DomID, error) {
	dc, err := c.domctl(abi.XEN_DOMCTL_createdomain, 0, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlCreateDomain](dc)
		p.MaxVCPUs = vcpus
		if hvm {
			p.Flags = abi.XEN_DOMCTL_CDF_hvm | abi.XEN_DOMCTL_CDF_hap
		}
	})
	if err != nil {
		return 0, err
	}
	// As a toolstack on 4.17 must: max_vcpus allocates the vCPUs.
	dom := domctl.DomID(dc.Domain)
	_, err = c.domctl(abi.XEN_DOMCTL_max_vcpus, dom, func(dc *abi.Domctl) {
		abi.DomctlPayload[abi.DomctlMaxVCPUs](dc).Max = max(vcpus, 1)
	})
	return dom, err
}

// createNoVCPUs is create without XEN_DOMCTL_max_vcpus.
func (c *hc) createNoVCPUs(hvm bool, vcpus uint32) (domctl.DomID, error) {
	dc, err := c.domctl(abi.XEN_DOMCTL_createdomain, 0, func(dc *abi.Domctl) {
		p := abi.DomctlPayload[abi.DomctlCreateDomain](dc)
		p.MaxVCPUs = vcpus
		if hvm {
			p.Flags = abi.XEN_DOMCTL_CDF_hvm | abi.XEN_DOMCTL_CDF_hap
		}
	})
	return domctl.DomID(dc.Domain), err
}

func (c *hc) populate(dom domctl.DomID, gfns []uint64) (uint64, error) {
	arr := c.buf(len(gfns) * 8)
	copy(unsafe.Slice((*uint64)(unsafe.Pointer(&arr[0])), len(gfns)), gfns)
	rb := c.buf(int(unsafe.Sizeof(abi.MemoryReservation{})))
	r := abi.View[abi.MemoryReservation](rb)
	r.ExtentStart, r.NrExtents, r.DomID = abi.BufferPointer(arr), uint64(len(gfns)), uint16(dom)
	return c.b.Hypercall(abi.HYPERVISOR_memory_op, [5]uint64{abi.XENMEM_populate_physmap, uint64(uintptr(unsafe.Pointer(r)))})
}
