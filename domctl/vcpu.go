package domctl

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// Register offsets inside the two vcpu_guest_context layouts, from the
// generated ABI.
var (
	v64 abi.VCPUGuestContextX86_64
	v32 abi.VCPUGuestContextX86_32
)

const (
	vcpuSize64 = int(unsafe.Sizeof(v64))
	vcpuSize32 = int(unsafe.Sizeof(v32))
	rax64      = int(unsafe.Offsetof(v64.UserRegs) + unsafe.Offsetof(v64.UserRegs.Rax))
	rdx64      = int(unsafe.Offsetof(v64.UserRegs) + unsafe.Offsetof(v64.UserRegs.Rdx))
	rip64      = int(unsafe.Offsetof(v64.UserRegs) + unsafe.Offsetof(v64.UserRegs.Rip))
	eax32      = int(unsafe.Offsetof(v32.UserRegs) + unsafe.Offsetof(v32.UserRegs.Eax))
	edx32      = int(unsafe.Offsetof(v32.UserRegs) + unsafe.Offsetof(v32.UserRegs.Edx))
	eip32      = int(unsafe.Offsetof(v32.UserRegs) + unsafe.Offsetof(v32.UserRegs.EIP))
	flags64    = int(unsafe.Offsetof(v64.Flags))
	flags32    = int(unsafe.Offsetof(v32.Flags))
	gdtFr64    = int(unsafe.Offsetof(v64.GDTFrames))
	gdtFr32    = int(unsafe.Offsetof(v32.GDTFrames))
	gdtEnts64  = int(unsafe.Offsetof(v64.GDTEnts))
	gdtEnts32  = int(unsafe.Offsetof(v32.GDTEnts))
	ctrlreg64  = int(unsafe.Offsetof(v64.Ctrlreg))
	ctrlreg32  = int(unsafe.Offsetof(v32.Ctrlreg))
)

// GDTFrameSlots is the number of gdt_frames[] in a vCPU context.
const GDTFrameSlots = len(v64.GDTFrames)

// VCPUContextSize returns the size of a vCPU context of width (8: 5168
// bytes, 4: 2800 bytes).
func VCPUContextSize(width int) (int, error) {
	switch width {
	case 8:
		return vcpuSize64, nil
	case 4:
		return vcpuSize32, nil
	}
	return 0, fmt.Errorf("guest width %d: want 8 or 4", width)
}

// NewVCPUContext wraps raw, a vcpu_guest_context of the given width (8 or
// 4 bytes), checking its size. raw is used, not copied.
func NewVCPUContext(width int, raw []byte) (*VCPUContext, error) {
	size, err := VCPUContextSize(width)
	if err != nil {
		return nil, err
	}
	if len(raw) != size {
		return nil, fmt.Errorf("vCPU context of width %d is %d bytes, have %d", width, size, len(raw))
	}
	return &VCPUContext{Width: width, Raw: raw}, nil
}

func (v *VCPUContext) reg(off64, off32 int) uint64 {
	if v.Width == 4 {
		return uint64(binary.LittleEndian.Uint32(v.Raw[off32:]))
	}
	return binary.LittleEndian.Uint64(v.Raw[off64:])
}

func (v *VCPUContext) setReg(off64, off32 int, x uint64) {
	if v.Width == 4 {
		binary.LittleEndian.PutUint32(v.Raw[off32:], uint32(x))
		return
	}
	binary.LittleEndian.PutUint64(v.Raw[off64:], x)
}

// RAX returns user_regs.rax (eax for a 32-bit guest): the return value of
// the guest's suspend hypercall.
func (v *VCPUContext) RAX() uint64 { return v.reg(rax64, eax32) }

// SetRAX sets user_regs.rax (eax, truncated, for a 32-bit guest).
func (v *VCPUContext) SetRAX(x uint64) { v.setReg(rax64, eax32, x) }

// RDX returns user_regs.rdx (edx): for a suspended PV guest, the start_info
// frame it passed to SCHEDOP_shutdown.
func (v *VCPUContext) RDX() uint64 { return v.reg(rdx64, edx32) }

// SetRDX sets user_regs.rdx (edx, truncated, for a 32-bit guest).
func (v *VCPUContext) SetRDX(x uint64) { v.setReg(rdx64, edx32, x) }

// RIP returns user_regs.rip (eip).
func (v *VCPUContext) RIP() uint64 { return v.reg(rip64, eip32) }

// Flags returns the context's flags (VGCF_*).
func (v *VCPUContext) Flags() uint64 { return v.reg(flags64, flags32) }

// SetFlags sets the context's flags.
func (v *VCPUContext) SetFlags(x uint64) { v.setReg(flags64, flags32, x) }

// CtrlReg returns ctrlreg[i]: for a PV guest ctrlreg[3] is cr3 (a machine
// frame in xen_pfn_to_cr3 form) and, for 64-bit, ctrlreg[1] the user page
// table's machine address (bit 0 set when valid).
func (v *VCPUContext) CtrlReg(i int) uint64 { return v.reg(ctrlreg64+8*i, ctrlreg32+4*i) }

// SetCtrlReg sets ctrlreg[i].
func (v *VCPUContext) SetCtrlReg(i int, x uint64) { v.setReg(ctrlreg64+8*i, ctrlreg32+4*i, x) }

// GDTEnts returns gdt_ents: the number of GDT entries (512 per frame).
func (v *VCPUContext) GDTEnts() uint64 { return v.reg(gdtEnts64, gdtEnts32) }

// GDTFrame returns gdt_frames[i] (0 <= i < GDTFrameSlots).
func (v *VCPUContext) GDTFrame(i int) uint64 { return v.reg(gdtFr64+8*i, gdtFr32+4*i) }

// SetGDTFrame sets gdt_frames[i].
func (v *VCPUContext) SetGDTFrame(i int, x uint64) { v.setReg(gdtFr64+8*i, gdtFr32+4*i, x) }
