package domctl

import (
	"fmt"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// DomID is a Xen domain id.
type DomID uint16

// Reserved domain ids (xen.h).
const (
	DomIDSelf          DomID = 0x7FF0
	DomIDFirstReserved DomID = 0x7FF0
	DomIDInvalid       DomID = 0x7FF4
)

// ShutdownReason is the SHUTDOWN_* code of sched.h.
type ShutdownReason uint8

// Shutdown reasons (sched.h).
const (
	ShutdownPoweroff  ShutdownReason = 0
	ShutdownReboot    ShutdownReason = 1
	ShutdownSuspend   ShutdownReason = 2
	ShutdownCrash     ShutdownReason = 3
	ShutdownWatchdog  ShutdownReason = 4
	ShutdownSoftReset ShutdownReason = 5
)

func (r ShutdownReason) String() string {
	switch r {
	case ShutdownPoweroff:
		return "poweroff"
	case ShutdownReboot:
		return "reboot"
	case ShutdownSuspend:
		return "suspend"
	case ShutdownCrash:
		return "crash"
	case ShutdownWatchdog:
		return "watchdog"
	case ShutdownSoftReset:
		return "soft_reset"
	}
	return fmt.Sprintf("shutdown(%d)", uint8(r))
}

// XEN_DOMINF_* flags of struct xen_domctl_getdomaininfo.
const (
	DomInfDying     uint32 = 1 << 0
	DomInfHVMGuest  uint32 = 1 << 1
	DomInfShutdown  uint32 = 1 << 2
	DomInfPaused    uint32 = 1 << 3
	DomInfBlocked   uint32 = 1 << 4
	DomInfRunning   uint32 = 1 << 5
	DomInfDebugged  uint32 = 1 << 6
	DomInfXSDomain  uint32 = 1 << 7
	DomInfHAP       uint32 = 1 << 8
	domInfShutShift        = 16
)

// DomainInfo is the decoded result of XEN_DOMCTL_getdomaininfo.
type DomainInfo struct {
	Domain          DomID
	Flags           uint32
	TotPages        uint64
	MaxPages        uint64
	SharedInfoFrame uint64
	CPUTime         uint64
	NrOnlineVCPUs   uint32
	MaxVCPUID       uint32
	Handle          [16]byte
	CPUPool         uint32
	GPAddrBits      uint8
}

// Dying reports XEN_DOMINF_dying.
func (d DomainInfo) Dying() bool { return d.Flags&DomInfDying != 0 }

// HVM reports XEN_DOMINF_hvm_guest (HVM and PVH guests).
func (d DomainInfo) HVM() bool { return d.Flags&DomInfHVMGuest != 0 }

// Shutdown reports XEN_DOMINF_shutdown: every vCPU has stopped for a shutdown.
func (d DomainInfo) Shutdown() bool { return d.Flags&DomInfShutdown != 0 }

// Paused reports XEN_DOMINF_paused (paused by the toolstack).
func (d DomainInfo) Paused() bool { return d.Flags&DomInfPaused != 0 }

// ShutdownReason is meaningful only when Shutdown is true.
func (d DomainInfo) ShutdownReason() ShutdownReason {
	return ShutdownReason(d.Flags >> domInfShutShift & 0xff)
}

// Suspended reports a domain shut down with SHUTDOWN_suspend.
func (d DomainInfo) Suspended() bool {
	return d.Shutdown() && d.ShutdownReason() == ShutdownSuspend
}

// TSCInfo is struct xen_domctl_tsc_info.
type TSCInfo struct {
	Mode        uint32
	GTSCKHz     uint32
	Incarnation uint32
	ElapsedNsec uint64
}

// ShadowStats are the statistics a log-dirty CLEAN or PEEK returns.
type ShadowStats struct {
	FaultCount uint32
	DirtyCount uint32
	// Pages is the number of pages the bitmap covers (the pages field).
	Pages uint64
}

// CreateConfig is what CreateDomain needs for a restore target.
type CreateConfig struct {
	// HVM creates an HVM container (HVM or PVH); false creates a PV domain.
	HVM bool
	// MaxVCPUs is the number of vCPUs; zero means 1.
	MaxVCPUs uint32
	// Handle is the domain's UUID.
	Handle [16]byte
	// MaxMemKB is set with XEN_DOMCTL_max_mem after creation; zero skips it.
	MaxMemKB uint64
	// AddressSize, for PV only, is 32 or 64; zero means 64.
	AddressSize int
	// Domain is the id to create; zero lets Xen pick a free one.
	Domain DomID
	// EmulationFlags are the XEN_X86_EMU_* devices Xen emulates; zero means
	// all of them but vPCI for HVM (X86EmuAll &^ X86EmuVPCI, as libxl) and
	// none for PV. PVH wants X86EmuLAPIC.
	EmulationFlags uint32
	// MaxEvtchnPort is the highest event-channel port; zero means 1023
	// (libxl's default).
	MaxEvtchnPort uint32
}

// Emulation flags for CreateConfig.EmulationFlags (arch-x86/xen.h).
const (
	X86EmuLAPIC uint32 = abi.XEN_X86_EMU_LAPIC
	X86EmuAll   uint32 = abi.XEN_X86_EMU_ALL
	X86EmuVPCI  uint32 = abi.XEN_X86_EMU_VPCI
)

// VCPUContext is a vcpu_guest_context as Xen returns it, kept as raw bytes
// in the layout of the guest's width: struct vcpu_guest_context_x86_64
// (Width 8) or vcpu_guest_context_x86_32 (Width 4, 32-bit PV guests). The
// accessors (RAX, SetRAX, RDX, RIP) read the right offsets for the width.
type VCPUContext struct {
	// Width is the guest width in bytes: 8 or 4.
	Width int
	// Raw is the whole structure (5168 or 2800 bytes).
	Raw []byte
}
