package domctl

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/xenckpt/xenckpt/domctl/internal/privcmd"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrNoDomain: the domain does not exist (Xen's ESRCH, or on 4.17 a
	// getdomaininfo that answered for the next domain instead).
	ErrNoDomain = errors.New("no such domain")
	// ErrInterfaceVersion: the hypervisor speaks none of the domctl
	// interface versions this package knows. The error is an
	// *InterfaceVersionError naming the versions tried.
	ErrInterfaceVersion = errors.New("unsupported domctl interface version")
	// ErrNotSupported: the operation is not available on this OS or
	// backend (Open off Linux).
	ErrNotSupported = privcmd.ErrNotSupported
)

// Operation names used in OpError.Op.
const (
	OpGetDomainInfo     = "getdomaininfo"
	OpPause             = "pausedomain"
	OpUnpause           = "unpausedomain"
	OpResume            = "resumedomain"
	OpDestroy           = "destroydomain"
	OpCreate            = "createdomain"
	OpMaxMem            = "max_mem"
	OpMaxVCPUs          = "max_vcpus"
	OpGetAddressSize    = "get_address_size"
	OpSetAddressSize    = "set_address_size"
	OpCapabilities      = "xen_version capabilities"
	OpGetVCPUContext    = "getvcpucontext"
	OpSetVCPUContext    = "setvcpucontext"
	OpGetHVMContext     = "gethvmcontext"
	OpSetHVMContext     = "sethvmcontext"
	OpGetHVMParam       = "hvmop get_param"
	OpSetHVMParam       = "hvmop set_param"
	OpGetTSCInfo        = "gettscinfo"
	OpSetTSCInfo        = "settscinfo"
	OpShadowOp          = "shadow_op"
	OpMaxGPFN           = "memory_op maximum_gpfn"
	OpPopulatePhysmap   = "memory_op populate_physmap"
	OpAddToPhysmap      = "add_to_physmap"
	OpRemoveFromPhysmap = "remove_from_physmap"
	OpPageFrameInfo     = "getpageframeinfo3"
	OpMapForeign        = "map foreign"
	OpSubscribe         = "subscribe"
	OpAllocUnbound      = "evtchn alloc_unbound"
	OpEvtchn            = "evtchn"
	OpMMUUpdate         = "mmu_update"
	OpMMUExtOp          = "mmuext_op"
	OpGrantSetupTable   = "grant_table_op setup_table"
	OpSetExtVCPUContext = "set_ext_vcpucontext"
	OpSetVCPUExtState   = "setvcpuextstate"
	OpSetVCPUMSRs       = "set_vcpu_msrs"
	OpSetCPUPolicy      = "set_cpu_policy"
	OpGetExtVCPUContext = "get_ext_vcpucontext"
	OpGetVCPUExtState   = "getvcpuextstate"
	OpGetVCPUMSRs       = "get_vcpu_msrs"
)

// OpError is the error of a failed hypervisor operation. Err is usually a
// syscall.Errno (the hypercall's -errno), possibly wrapped with a sentinel
// such as ErrNoDomain.
type OpError struct {
	// Op names the operation (one of the Op* constants).
	Op string
	// Domain is the target domain, DomIDInvalid when the operation has none.
	Domain DomID
	Err    error
}

func (e *OpError) Error() string {
	if e.Domain == DomIDInvalid {
		return e.Op + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s domain %d: %v", e.Op, e.Domain, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

// newOpError wraps err; it returns nil for a nil err. ESRCH also matches
// ErrNoDomain.
func newOpError(op string, dom DomID, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.ESRCH) && !errors.Is(err, ErrNoDomain) {
		err = fmt.Errorf("%w: %w", ErrNoDomain, err)
	}
	return &OpError{Op: op, Domain: dom, Err: err}
}

// InterfaceVersionError is returned by NewConn and Open when the hypervisor
// rejected every XEN_DOMCTL_INTERFACE_VERSION tried (Xen answers EACCES).
type InterfaceVersionError struct {
	// Tried lists the versions probed, in order.
	Tried []uint32
}

func (e *InterfaceVersionError) Error() string {
	vs := make([]string, len(e.Tried))
	for i, v := range e.Tried {
		vs[i] = fmt.Sprintf("%#x", v)
	}
	return fmt.Sprintf("%v: hypervisor refused domctl interface versions %s", ErrInterfaceVersion, strings.Join(vs, ", "))
}

// Is makes errors.Is(err, ErrInterfaceVersion) true.
func (e *InterfaceVersionError) Is(target error) bool { return target == ErrInterfaceVersion }
