package xensim

import (
	"testing"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// FuzzHypercall feeds arbitrary xen_domctl structs and hypercall arguments
// to the simulator: whatever the bytes, it answers (usually with an errno)
// and never panics or touches memory outside its buffers.
func FuzzHypercall(f *testing.F) {
	h, err := NewHost(&Config{PVFrames: PVFramesMachine})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = h.Close() })
	d, err := h.x.createDomain(0, true, 2, [16]byte{})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := h.x.populate(d.id, []uint64{0, 1, 2, 3}, nil, false); err != nil {
		f.Fatal(err)
	}
	// A PV domain with machine frames for mmu_update, mmuext_op and
	// grant_table_op.
	pv, err := h.x.createDomain(0, false, 1, [16]byte{})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := h.x.populate(pv.id, []uint64{0, 1, 2, 3}, nil, false); err != nil {
		f.Fatal(err)
	}
	b := h.Backend()
	buf, err := b.AllocBuffer(2 * PageSize)
	if err != nil {
		f.Fatal(err)
	}
	base := uint64(addrOf(buf))
	seed := func(cmd uint32, payload ...byte) []byte {
		dc := abi.Domctl{Cmd: cmd, InterfaceVersion: abi.XEN_DOMCTL_INTERFACE_VERSION, Domain: uint16(d.id)}
		copy(dc.U[:], payload)
		return append([]byte(nil), abi.Bytes(&dc)...)
	}
	for _, cmd := range []uint32{
		abi.XEN_DOMCTL_getdomaininfo, abi.XEN_DOMCTL_shadow_op, abi.XEN_DOMCTL_getvcpucontext,
		abi.XEN_DOMCTL_gethvmcontext, abi.XEN_DOMCTL_getpageframeinfo3, abi.XEN_DOMCTL_settscinfo,
		abi.XEN_DOMCTL_set_ext_vcpucontext, abi.XEN_DOMCTL_getvcpuextstate, abi.XEN_DOMCTL_setvcpuextstate,
		abi.XEN_DOMCTL_get_vcpu_msrs, abi.XEN_DOMCTL_set_vcpu_msrs, // pv_ext.go
	} {
		f.Add(uint64(abi.HYPERVISOR_domctl), uint64(0), uint64(0), seed(cmd, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64))
	}
	f.Add(uint64(abi.HYPERVISOR_memory_op), uint64(abi.XENMEM_populate_physmap), uint64(0), make([]byte, 64))
	f.Add(uint64(abi.HYPERVISOR_hvm_op), uint64(abi.HVMOP_get_param), uint64(0), []byte{byte(d.id), 0, 0, 0, 1})
	f.Add(uint64(6), uint64(1), uint64(0), []byte{3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10})     // mmuext_op PIN_L4
	f.Add(uint64(6), uint64(2), uint64(0), []byte{0, 0, 0, 0, 0, 0, 0x10, 0, 1})           // mmu_update
	f.Add(uint64(7), uint64(0), uint64(0), []byte{byte(pv.id), 0, 0, 0, 1, 0, 0, 0, 0, 0}) // setup_table
	f.Fuzz(func(t *testing.T, op, a0, off uint64, data []byte) {
		if len(data) > PageSize {
			data = data[:PageSize]
		}
		clear(buf)
		copy(buf, data)
		if len(data) >= int(unsafe.Sizeof(abi.Domctl{})) {
			dc := abi.View[abi.Domctl](buf)
			if dc.Cmd == abi.XEN_DOMCTL_createdomain || dc.Cmd == abi.XEN_DOMCTL_destroydomain {
				dc.Cmd = abi.XEN_DOMCTL_getdomaininfo // keep the host's size bounded
			}
		}
		arg := base + off%(2*PageSize)
		switch op % 8 {
		case 0:
			op = abi.HYPERVISOR_domctl
			a0, arg = arg, 0
		case 1:
			op = abi.HYPERVISOR_memory_op
		case 2:
			op = abi.HYPERVISOR_hvm_op
		case 3:
			op = abi.HYPERVISOR_event_channel_op
		case 4:
			op = abi.HYPERVISOR_xen_version
		case 5:
			op = abi.HYPERVISOR_sched_op
			if a0 == abi.SCHEDOP_remote_shutdown {
				a0 = abi.SCHEDOP_yield // shutting domains down is not interesting here
			}
		}
		args := [5]uint64{a0, arg}
		switch op % 8 {
		case 6: // mmu_update or mmuext_op on the PV domain
			op = abi.HYPERVISOR_mmu_update
			if a0%2 == 1 {
				op = abi.HYPERVISOR_mmuext_op
			}
			args = [5]uint64{arg, a0 % 8, 0, uint64(pv.id)}
		case 7:
			op = abi.HYPERVISOR_grant_table_op
			args = [5]uint64{abi.GNTTABOP_setup_table, arg, 1}
		}
		_, _ = b.Hypercall(op, args)
	})
}
