package xensim

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// vCPU up/down (VPF_down in Xen). Xen reports it in the VGCF_online bit of
// the flags of a context getvcpucontext returns (arch_get_info_guest) and
// takes it from the flags of a context setvcpucontext loads
// (arch_set_info_guest: set brings the vCPU up, clear takes it down).
// flags is the first field after fpu_ctxt in both layouts; the bit is in
// its low word.
const ctxFlagsOff = int(unsafe.Offsetof(abi.VCPUGuestContextX86_64{}.Flags))

func init() {
	if int(unsafe.Offsetof(abi.VCPUGuestContextX86_32{}.Flags)) != ctxFlagsOff {
		panic("xensim: vcpu_guest_context flags at different offsets")
	}
}

// ctxOnline reports VGCF_online in a context being loaded.
func ctxOnline(ctx []byte) bool {
	return binary.LittleEndian.Uint32(ctx[ctxFlagsOff:])&abi.VGCF_online != 0
}

// setCtxOnline sets or clears VGCF_online in a context being returned.
func setCtxOnline(ctx []byte, online bool) {
	f := binary.LittleEndian.Uint32(ctx[ctxFlagsOff:]) &^ abi.VGCF_online
	if online {
		f |= abi.VGCF_online
	}
	binary.LittleEndian.PutUint32(ctx[ctxFlagsOff:], f)
}

// secondaryVCPUsDown models the vCPUs XEN_DOMCTL_max_vcpus allocates
// starting down (vcpu_create sets VPF_down): each comes up when a context
// with VGCF_online (PV) or an HVM context with its CPU record is loaded.
// vCPU0 is modelled up from the start, which is all a toolstack can
// observe: every builder and restore loads it. Call with Xen.mu held.
func (d *domain) secondaryVCPUsDown() {
	for i := 1; i < len(d.vcpus); i++ {
		d.vcpus[i].online = false
	}
}

// hvmVCPUsUp brings up each vCPU with a CPU record in the loaded HVM
// context, as hvm_load_cpu_ctxt clears VPF_down. Call with Xen.mu held.
func (d *domain) hvmVCPUsUp() {
	for i := range d.vcpus {
		if hvmCPURecord(d.hvmCtx, i) != nil {
			d.vcpus[i].online = true
		}
	}
}

// SetVCPUOnline takes vCPU v of the guest's domain down or brings it up,
// as the guest kernel does with VCPUOP_down / VCPUOP_up when a CPU is
// offlined or onlined (Linux: echo 0 > /sys/devices/system/cpu/cpuN/online).
// vCPU0 cannot be taken down.
func (g *Guest) SetVCPUOnline(v int, online bool) error {
	x := g.h.x
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(g.dom)
	if err != nil {
		return fmt.Errorf("xensim: vCPU %d of domain %d: %w", v, g.dom, err)
	}
	if v <= 0 || v >= len(d.vcpus) {
		return fmt.Errorf("xensim: vCPU %d of domain %d: %w", v, g.dom, errEINVAL)
	}
	d.vcpus[v].online = online
	return nil
}
