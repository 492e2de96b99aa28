package domctl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// ErrBadHVMContext: an HVM context blob is truncated, or lacks the record
// asked for.
var ErrBadHVMContext = errors.New("malformed HVM context")

const hvmDescSize = int(unsafe.Sizeof(abi.HVMSaveDescriptor{}))

var hvmCPU abi.HVMHWCPU

// hvmCPURAX is the offset of rax in struct hvm_hw_cpu.
const hvmCPURAX = int(unsafe.Offsetof(hvmCPU.Rax))

// hvmCPURecord returns the body of vCPU vcpu's CPU record
// (HVM_SAVE_CODE(CPU), instance vcpu) in hc, the bytes of HVMContext:
// records of a hvm_save_descriptor {u16 typecode, u16 instance, u32
// length} and length bytes, ending with an END record.
func hvmCPURecord(hc []byte, vcpu uint16) ([]byte, error) {
	for off := 0; ; {
		if len(hc)-off < hvmDescSize {
			return nil, fmt.Errorf("%w: record header at %d runs past %d bytes", ErrBadHVMContext, off, len(hc))
		}
		typ := binary.LittleEndian.Uint16(hc[off:])
		inst := binary.LittleEndian.Uint16(hc[off+2:])
		n := int(binary.LittleEndian.Uint32(hc[off+4:]))
		body := off + hvmDescSize
		if n > len(hc)-body {
			return nil, fmt.Errorf("%w: record type %d at %d is %d bytes, %d left", ErrBadHVMContext, typ, off, n, len(hc)-body)
		}
		switch {
		case typ == abi.HVM_SAVE_CODE_END:
			return nil, fmt.Errorf("%w: no CPU record for vCPU %d", ErrBadHVMContext, vcpu)
		case typ == abi.HVM_SAVE_CODE_CPU && inst == vcpu:
			// Older (compat) CPU records are shorter than struct
			// hvm_hw_cpu; all hold the general registers.
			if n < hvmCPURAX+8 {
				return nil, fmt.Errorf("%w: CPU record of vCPU %d is only %d bytes", ErrBadHVMContext, vcpu, n)
			}
			return hc[body : body+n], nil
		}
		off = body + n
	}
}

// HVMContextRAX returns rax from vCPU vcpu's CPU record in hc (the bytes
// of Conn.HVMContext): for a PVHVM or PVH guest, its suspend hypercall's
// return value.
func HVMContextRAX(hc []byte, vcpu uint16) (uint64, error) {
	rec, err := hvmCPURecord(hc, vcpu)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(rec[hvmCPURAX:]), nil
}

// SetHVMContextRAX sets rax in vCPU vcpu's CPU record in hc, in place; pass
// hc to Conn.SetHVMContext afterwards.
func SetHVMContextRAX(hc []byte, vcpu uint16, rax uint64) error {
	rec, err := hvmCPURecord(hc, vcpu)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(rec[hvmCPURAX:], rax)
	return nil
}
