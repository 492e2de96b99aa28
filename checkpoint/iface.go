package checkpoint

import (
	"context"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xenstore"
)

// Hypervisor is what checkpoint needs from the hypervisor. *domctl.Conn
// implements it on every backend (privcmd on a real dom0, xensim in tests).
type Hypervisor interface {
	DomainInfo(ctx context.Context, dom domctl.DomID) (domctl.DomainInfo, error)
	Pause(ctx context.Context, dom domctl.DomID) error
	Unpause(ctx context.Context, dom domctl.DomID) error
	// ResumeDomain is XEN_DOMCTL_resumedomain.
	ResumeDomain(ctx context.Context, dom domctl.DomID) error
	DestroyDomain(ctx context.Context, dom domctl.DomID) error
	CreateDomain(ctx context.Context, cfg domctl.CreateConfig) (domctl.DomID, error)
	SetMaxMem(ctx context.Context, dom domctl.DomID, kb uint64) error

	// AddressSize is XEN_DOMCTL_get_address_size: 32 or 64 (bits).
	AddressSize(ctx context.Context, dom domctl.DomID) (int, error)
	SetAddressSize(ctx context.Context, dom domctl.DomID, bits int) error
	// Capabilities is XENVER_capabilities, e.g. "xen-3.0-x86_64 hvm-3.0-x86_64".
	Capabilities(ctx context.Context) (string, error)

	// VCPUContext reads vCPU vcpu's context in the layout of width (8 or 4 bytes).
	VCPUContext(ctx context.Context, dom domctl.DomID, vcpu uint32, width int) (*domctl.VCPUContext, error)
	SetVCPUContext(ctx context.Context, dom domctl.DomID, vcpu uint32, vc *domctl.VCPUContext) error
	// HVMContext is XEN_DOMCTL_gethvmcontext (size query, then data).
	HVMContext(ctx context.Context, dom domctl.DomID) ([]byte, error)
	SetHVMContext(ctx context.Context, dom domctl.DomID, data []byte) error
	HVMParam(ctx context.Context, dom domctl.DomID, index uint32) (uint64, error)
	SetHVMParam(ctx context.Context, dom domctl.DomID, index uint32, value uint64) error
	TSCInfo(ctx context.Context, dom domctl.DomID) (domctl.TSCInfo, error)
	SetTSCInfo(ctx context.Context, dom domctl.DomID, info domctl.TSCInfo) error

	// Log-dirty (XEN_DOMCTL_shadow_op). CleanDirty and PeekDirty fill
	// bitmap (bit i of word i/64 = pfn i) for len(bitmap)*64 pfns.
	EnableLogDirty(ctx context.Context, dom domctl.DomID) error
	DisableLogDirty(ctx context.Context, dom domctl.DomID) error
	CleanDirty(ctx context.Context, dom domctl.DomID, bitmap []uint64, final bool) (domctl.ShadowStats, error)
	PeekDirty(ctx context.Context, dom domctl.DomID, bitmap []uint64) (domctl.ShadowStats, error)

	// MaxGPFN is XENMEM_maximum_gpfn: the highest guest frame number in use.
	MaxGPFN(ctx context.Context, dom domctl.DomID) (uint64, error)
	// MapGrantTable is XENMEM_add_to_physmap(XENMAPSPACE_grant_table):
	// grant-table frame idx of dom appears at gfn. RemoveFromPhysmap is
	// XENMEM_remove_from_physmap. Restore uses them to seed an HVM guest's
	// reserved grant entries for xenstored and xenconsoled.
	MapGrantTable(ctx context.Context, dom domctl.DomID, idx, gfn uint64) error
	RemoveFromPhysmap(ctx context.Context, dom domctl.DomID, gfn uint64) error
	// PopulatePhysmap is XENMEM_populate_physmap of order-0 extents at gfns.
	PopulatePhysmap(ctx context.Context, dom domctl.DomID, gfns []uint64) error
	// PopulatePhysmapFrames is PopulatePhysmap returning the frame Xen
	// allocated for each gfn: the new MFN for a PV domain, the gfn itself
	// for HVM. PV restore builds its pfn -> mfn map from it.
	PopulatePhysmapFrames(ctx context.Context, dom domctl.DomID, gfns []uint64) ([]uint64, error)
	// PinTable is MMUEXT_PIN_L<level>_TABLE of machine frames mfns on
	// behalf of dom (PV restore pins the image's pinned page tables).
	PinTable(ctx context.Context, dom domctl.DomID, level int, mfns []uint64) error
	// GrantTableFrames is GNTTABOP_setup_table: the frames of dom's first
	// n grant-table frames (PV restore seeds the reserved entries there).
	GrantTableFrames(ctx context.Context, dom domctl.DomID, n uint32) ([]uint64, error)
	// SetExtVCPUContext, SetVCPUExtState and SetVCPUMSRs are
	// XEN_DOMCTL_set_ext_vcpucontext, _setvcpuextstate and _set_vcpu_msrs
	// with the blobs of a PV image's X86_PV_VCPU_EXTENDED, _XSAVE and
	// _MSRS records.
	SetExtVCPUContext(ctx context.Context, dom domctl.DomID, blob []byte) error
	SetVCPUExtState(ctx context.Context, dom domctl.DomID, vcpu uint32, blob []byte) error
	SetVCPUMSRs(ctx context.Context, dom domctl.DomID, vcpu uint32, blob []byte) error
	// ExtVCPUContext, VCPUExtState and VCPUMSRs are the getters
	// (XEN_DOMCTL_get_ext_vcpucontext, _getvcpuextstate, _get_vcpu_msrs):
	// the blobs of those records; the last two give nil when the vCPU
	// has no such state.
	ExtVCPUContext(ctx context.Context, dom domctl.DomID, vcpu uint32) ([]byte, error)
	VCPUExtState(ctx context.Context, dom domctl.DomID, vcpu uint32) ([]byte, error)
	VCPUMSRs(ctx context.Context, dom domctl.DomID, vcpu uint32) ([]byte, error)
	// SetCPUPolicy is XEN_DOMCTL_set_cpu_policy with an image's
	// X86_CPUID_POLICY and X86_MSR_POLICY bodies.
	SetCPUPolicy(ctx context.Context, dom domctl.DomID, leaves, msrs []byte) error
	// PageFrameTypes is XEN_DOMCTL_getpageframeinfo3: one XEN_DOMCTL_PFINFO_* per gfn.
	PageFrameTypes(ctx context.Context, dom domctl.DomID, gfns []uint64, types []uint32) error
	// MapForeign maps guest frames; the caller closes the Mapping.
	MapForeign(ctx context.Context, dom domctl.DomID, prot domctl.Prot, gfns []uint64) (*domctl.Mapping, error)

	// SubscribeSuspend is XEN_DOMCTL_subscribe: deliver the suspend
	// notification on the guest's suspend event channel port.
	SubscribeSuspend(ctx context.Context, dom domctl.DomID, port uint32) error
	// AllocUnboundEvtchn is EVTCHNOP_alloc_unbound in dom for remote.
	AllocUnboundEvtchn(ctx context.Context, dom, remote domctl.DomID) (uint32, error)
	// OpenEvtchn opens an event-channel device for binding, notify and wait.
	OpenEvtchn(ctx context.Context) (*domctl.Evtchn, error)

	// RemoteShutdown is SCHEDOP_remote_shutdown (xc_domain_shutdown): how
	// an HVM guest without PV drivers is suspended.
	RemoteShutdown(ctx context.Context, dom domctl.DomID, reason domctl.ShutdownReason) error
}

// Store is what checkpoint needs from xenstore. *xenstore.Client implements it.
type Store interface {
	Read(ctx context.Context, path string) ([]byte, error)
	Write(ctx context.Context, path string, value []byte) error
	Remove(ctx context.Context, path string) error
	Watch(ctx context.Context, path string) (*xenstore.Watch, error)
	Transaction(ctx context.Context, fn func(tx *xenstore.Tx) error) error
	GetDomainPath(ctx context.Context, dom uint32) (string, error)
	Introduce(ctx context.Context, dom uint32, mfn uint64, port uint32) error
	Release(ctx context.Context, dom uint32) error
	// Resume is XS_RESUME: re-arm @releaseDomain for dom after a cancel.
	Resume(ctx context.Context, dom uint32) error
}
