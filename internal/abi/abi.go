//go:build amd64 || arm64

package abi

import (
	"fmt"
	"structs"
	"unsafe"
)

// Pointer is a pointer field of an ABI struct: a Xen guest handle
// (XEN_GUEST_HANDLE_64) or a user pointer in a Linux ioctl struct. It keeps
// an unsafe.Pointer rather than a uint64 so the Go toolchain knows it is a
// pointer; it is 64 bits wide, as the handles are.
//
// The memory it points to must not be Go heap memory that could move or be
// freed while the hypervisor uses it: domctl only points at hypercall
// buffers.
type Pointer struct {
	_   structs.HostLayout
	ptr unsafe.Pointer
}

// NewPointer returns a Pointer to p.
func NewPointer(p unsafe.Pointer) Pointer { return Pointer{ptr: p} }

// BufferPointer returns a Pointer to the first byte of b, or the null
// pointer when b is empty.
func BufferPointer(b []byte) Pointer {
	if len(b) == 0 {
		return Pointer{}
	}
	return Pointer{ptr: unsafe.Pointer(&b[0])}
}

// Get returns the pointer.
func (p Pointer) Get() unsafe.Pointer { return p.ptr }

// Addr returns the pointer as the address a hypercall argument carries.
func (p Pointer) Addr() uint64 { return uint64(uintptr(p.ptr)) }

// IsNull reports a null handle.
func (p Pointer) IsNull() bool { return p.ptr == nil }

// View returns the start of b as a *T. It panics if b is shorter than T or
// misaligned for it: both are programming errors in an encoder or decoder.
func View[T any](b []byte) *T {
	var zero T
	size := unsafe.Sizeof(zero)
	if uintptr(len(b)) < size {
		panic(fmt.Sprintf("abi: %T needs %d bytes, have %d", zero, size, len(b)))
	}
	if size == 0 {
		return &zero
	}
	p := unsafe.Pointer(&b[0])
	if uintptr(p)%unsafe.Alignof(zero) != 0 {
		panic(fmt.Sprintf("abi: %T at misaligned address %#x", zero, uintptr(p)))
	}
	return (*T)(p)
}

// Bytes returns the memory of *v as a byte slice (no copy).
func Bytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// DomctlUnionSize is the size of xen_domctl's union u, the same in every
// interface version this package supports (0x15 to 0x17).
const DomctlUnionSize = 128

// payload is the set of types that live in xen_domctl's union u.
type payload interface {
	DomctlCreateDomain | DomctlGetDomainInfo | DomctlGetPageFrameInfo3 |
		DomctlShadowOp | DomctlMaxMem | DomctlMaxVCPUs | DomctlVCPUContext | DomctlHVMContext |
		DomctlAddressSize | DomctlTSCInfo | DomctlSubscribe | DomctlVCPUExtState | DomctlVCPUMSRs |
		DomctlCPUPolicy | DomctlExtVCPUContext
}

// DomctlPayload returns d's union u viewed as the payload type T, for
// encoding (fill it in) or decoding (read what the hypervisor wrote).
func DomctlPayload[T payload](d *Domctl) *T {
	return View[T](d.U[:])
}
