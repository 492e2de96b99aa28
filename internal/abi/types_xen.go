// Input to cgo -godefs; see gen.go for the command. Not compiled into the
// package.

//go:build ignore

package abi

/*
#define __XEN_TOOLS__ 1
#define __user
#include <stdint.h>
#include <stddef.h>
#include <linux/types.h>
#include <linux/ioctl.h>
#include <xen/xen.h>
#include <xen/domctl.h>
#include <xen/sched.h>
#include <xen/memory.h>
#include <xen/grant_table.h>
#include <xen/event_channel.h>
#include <xen/version.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/params.h>
#include <xen/hvm/save.h>
#include <xen/foreign/x86_64.h>
#include <xen/foreign/x86_32.h>
#include <xen/sys/privcmd.h>
#include <xen/sys/evtchn.h>

// HVM_SAVE_CODE is a sizeof expression; name its values for godefs.
enum {
	xenckpt_hvm_save_code_header = HVM_SAVE_CODE(HEADER),
	xenckpt_hvm_save_code_cpu = HVM_SAVE_CODE(CPU),
	xenckpt_hvm_save_code_end = HVM_SAVE_CODE(END),
};
*/
import "C"

// Linux privcmd and evtchn device ABI (xen/sys/privcmd.h, xen/sys/evtchn.h).

type PrivcmdHypercall C.struct_privcmd_hypercall

type PrivcmdMmapbatchV2 C.struct_privcmd_mmapbatch_v2

type IoctlEvtchnBindVirq C.struct_ioctl_evtchn_bind_virq

type IoctlEvtchnBindInterdomain C.struct_ioctl_evtchn_bind_interdomain

type IoctlEvtchnBindUnboundPort C.struct_ioctl_evtchn_bind_unbound_port

type IoctlEvtchnUnbind C.struct_ioctl_evtchn_unbind

type IoctlEvtchnNotify C.struct_ioctl_evtchn_notify

type IoctlEvtchnRestrictDomid C.struct_ioctl_evtchn_restrict_domid

const (
	IOCTL_PRIVCMD_HYPERCALL        = C.IOCTL_PRIVCMD_HYPERCALL
	IOCTL_PRIVCMD_MMAPBATCH_V2     = C.IOCTL_PRIVCMD_MMAPBATCH_V2
	IOCTL_EVTCHN_BIND_VIRQ         = C.IOCTL_EVTCHN_BIND_VIRQ
	IOCTL_EVTCHN_BIND_INTERDOMAIN  = C.IOCTL_EVTCHN_BIND_INTERDOMAIN
	IOCTL_EVTCHN_BIND_UNBOUND_PORT = C.IOCTL_EVTCHN_BIND_UNBOUND_PORT
	IOCTL_EVTCHN_UNBIND            = C.IOCTL_EVTCHN_UNBIND
	IOCTL_EVTCHN_NOTIFY            = C.IOCTL_EVTCHN_NOTIFY
	IOCTL_EVTCHN_RESET             = C.IOCTL_EVTCHN_RESET
	IOCTL_EVTCHN_RESTRICT_DOMID    = C.IOCTL_EVTCHN_RESTRICT_DOMID
)

// Hypercall numbers (xen.h).

const (
	HYPERVISOR_mmu_update       = C.__HYPERVISOR_mmu_update
	HYPERVISOR_mmuext_op        = C.__HYPERVISOR_mmuext_op
	HYPERVISOR_grant_table_op   = C.__HYPERVISOR_grant_table_op
	HYPERVISOR_memory_op        = C.__HYPERVISOR_memory_op
	HYPERVISOR_xen_version      = C.__HYPERVISOR_xen_version
	HYPERVISOR_sched_op         = C.__HYPERVISOR_sched_op
	HYPERVISOR_sched_op_compat  = C.__HYPERVISOR_sched_op_compat
	HYPERVISOR_event_channel_op = C.__HYPERVISOR_event_channel_op
	HYPERVISOR_hvm_op           = C.__HYPERVISOR_hvm_op
	HYPERVISOR_sysctl           = C.__HYPERVISOR_sysctl
	HYPERVISOR_domctl           = C.__HYPERVISOR_domctl

	DOMID_FIRST_RESERVED = C.DOMID_FIRST_RESERVED
	DOMID_SELF           = C.DOMID_SELF
	DOMID_INVALID        = C.DOMID_INVALID

	XEN_PAGE_SHIFT = 12
)

// PV memory management (xen.h): page-table updates and pinning with a
// foreign domain id.

type MMUUpdate C.struct_mmu_update

type MMUExtOp C.struct_mmuext_op

const (
	MMU_NORMAL_PT_UPDATE = C.MMU_NORMAL_PT_UPDATE
	MMU_MACHPHYS_UPDATE  = C.MMU_MACHPHYS_UPDATE

	MMUEXT_PIN_L1_TABLE = C.MMUEXT_PIN_L1_TABLE
	MMUEXT_PIN_L2_TABLE = C.MMUEXT_PIN_L2_TABLE
	MMUEXT_PIN_L3_TABLE = C.MMUEXT_PIN_L3_TABLE
	MMUEXT_PIN_L4_TABLE = C.MMUEXT_PIN_L4_TABLE
	MMUEXT_UNPIN_TABLE  = C.MMUEXT_UNPIN_TABLE

	VGCF_online = C.VGCF_online
)

// Domain control (domctl.h).

type Domctl C.struct_xen_domctl

type DomctlCreateDomain C.struct_xen_domctl_createdomain

type ArchDomainConfig C.struct_xen_arch_domainconfig

type DomctlGetDomainInfo C.struct_xen_domctl_getdomaininfo

type DomctlGetPageFrameInfo3 C.struct_xen_domctl_getpageframeinfo3

type DomctlShadowOp C.struct_xen_domctl_shadow_op

type DomctlShadowOpStats C.struct_xen_domctl_shadow_op_stats

type DomctlMaxMem C.struct_xen_domctl_max_mem

type DomctlMaxVCPUs C.struct_xen_domctl_max_vcpus

type DomctlVCPUContext C.struct_xen_domctl_vcpucontext

type DomctlHVMContext C.struct_xen_domctl_hvmcontext

type DomctlAddressSize C.struct_xen_domctl_address_size

type DomctlTSCInfo C.struct_xen_domctl_tsc_info

type DomctlSubscribe C.struct_xen_domctl_subscribe

type DomctlVCPUExtState C.struct_xen_domctl_vcpuextstate

type DomctlVCPUMSRs C.struct_xen_domctl_vcpu_msrs

type DomctlVCPUMSR C.struct_xen_domctl_vcpu_msr

type DomctlExtVCPUContext C.struct_xen_domctl_ext_vcpucontext

type DomctlCPUPolicy C.struct_xen_domctl_cpu_policy

type CPUIDLeaf C.struct_xen_cpuid_leaf

type MSREntry C.struct_xen_msr_entry

const (
	XEN_DOMCTL_INTERFACE_VERSION = C.XEN_DOMCTL_INTERFACE_VERSION

	XEN_DOMCTL_createdomain        = C.XEN_DOMCTL_createdomain
	XEN_DOMCTL_destroydomain       = C.XEN_DOMCTL_destroydomain
	XEN_DOMCTL_pausedomain         = C.XEN_DOMCTL_pausedomain
	XEN_DOMCTL_unpausedomain       = C.XEN_DOMCTL_unpausedomain
	XEN_DOMCTL_getdomaininfo       = C.XEN_DOMCTL_getdomaininfo
	XEN_DOMCTL_shadow_op           = C.XEN_DOMCTL_shadow_op
	XEN_DOMCTL_max_mem             = C.XEN_DOMCTL_max_mem
	XEN_DOMCTL_max_vcpus           = C.XEN_DOMCTL_max_vcpus
	XEN_DOMCTL_setvcpucontext      = C.XEN_DOMCTL_setvcpucontext
	XEN_DOMCTL_getvcpucontext      = C.XEN_DOMCTL_getvcpucontext
	XEN_DOMCTL_resumedomain        = C.XEN_DOMCTL_resumedomain
	XEN_DOMCTL_subscribe           = C.XEN_DOMCTL_subscribe
	XEN_DOMCTL_gethvmcontext       = C.XEN_DOMCTL_gethvmcontext
	XEN_DOMCTL_sethvmcontext       = C.XEN_DOMCTL_sethvmcontext
	XEN_DOMCTL_set_address_size    = C.XEN_DOMCTL_set_address_size
	XEN_DOMCTL_get_address_size    = C.XEN_DOMCTL_get_address_size
	XEN_DOMCTL_gettscinfo          = C.XEN_DOMCTL_gettscinfo
	XEN_DOMCTL_settscinfo          = C.XEN_DOMCTL_settscinfo
	XEN_DOMCTL_getpageframeinfo3   = C.XEN_DOMCTL_getpageframeinfo3
	XEN_DOMCTL_set_ext_vcpucontext = C.XEN_DOMCTL_set_ext_vcpucontext
	XEN_DOMCTL_setvcpuextstate     = C.XEN_DOMCTL_setvcpuextstate
	XEN_DOMCTL_set_vcpu_msrs       = C.XEN_DOMCTL_set_vcpu_msrs
	XEN_DOMCTL_set_cpu_policy      = C.XEN_DOMCTL_set_cpu_policy
	XEN_DOMCTL_get_ext_vcpucontext = C.XEN_DOMCTL_get_ext_vcpucontext
	XEN_DOMCTL_getvcpuextstate     = C.XEN_DOMCTL_getvcpuextstate
	XEN_DOMCTL_get_vcpu_msrs       = C.XEN_DOMCTL_get_vcpu_msrs

	XEN_DOMCTL_CDF_hvm            = C.XEN_DOMCTL_CDF_hvm
	XEN_DOMCTL_CDF_hap            = C.XEN_DOMCTL_CDF_hap
	XEN_DOMCTL_GRANT_version_mask = C.XEN_DOMCTL_GRANT_version_mask

	XEN_X86_EMU_LAPIC = C.XEN_X86_EMU_LAPIC
	XEN_X86_EMU_ALL   = C.XEN_X86_EMU_ALL
	XEN_X86_EMU_VPCI  = C.XEN_X86_EMU_VPCI

	XEN_DOMINF_dying         = C.XEN_DOMINF_dying
	XEN_DOMINF_hvm_guest     = C.XEN_DOMINF_hvm_guest
	XEN_DOMINF_shutdown      = C.XEN_DOMINF_shutdown
	XEN_DOMINF_paused        = C.XEN_DOMINF_paused
	XEN_DOMINF_blocked       = C.XEN_DOMINF_blocked
	XEN_DOMINF_running       = C.XEN_DOMINF_running
	XEN_DOMINF_debugged      = C.XEN_DOMINF_debugged
	XEN_DOMINF_xs_domain     = C.XEN_DOMINF_xs_domain
	XEN_DOMINF_hap           = C.XEN_DOMINF_hap
	XEN_DOMINF_shutdownshift = C.XEN_DOMINF_shutdownshift
	XEN_DOMINF_shutdownmask  = C.XEN_DOMINF_shutdownmask

	XEN_DOMCTL_PFINFO_LTAB_SHIFT    = C.XEN_DOMCTL_PFINFO_LTAB_SHIFT
	XEN_DOMCTL_PFINFO_NOTAB         = C.XEN_DOMCTL_PFINFO_NOTAB
	XEN_DOMCTL_PFINFO_L1TAB         = C.XEN_DOMCTL_PFINFO_L1TAB
	XEN_DOMCTL_PFINFO_L2TAB         = C.XEN_DOMCTL_PFINFO_L2TAB
	XEN_DOMCTL_PFINFO_L3TAB         = C.XEN_DOMCTL_PFINFO_L3TAB
	XEN_DOMCTL_PFINFO_L4TAB         = C.XEN_DOMCTL_PFINFO_L4TAB
	XEN_DOMCTL_PFINFO_LTABTYPE_MASK = C.XEN_DOMCTL_PFINFO_LTABTYPE_MASK
	XEN_DOMCTL_PFINFO_LPINTAB       = C.XEN_DOMCTL_PFINFO_LPINTAB
	XEN_DOMCTL_PFINFO_XTAB          = C.XEN_DOMCTL_PFINFO_XTAB
	XEN_DOMCTL_PFINFO_XALLOC        = C.XEN_DOMCTL_PFINFO_XALLOC
	XEN_DOMCTL_PFINFO_BROKEN        = C.XEN_DOMCTL_PFINFO_BROKEN
	XEN_DOMCTL_PFINFO_LTAB_MASK     = C.XEN_DOMCTL_PFINFO_LTAB_MASK

	XEN_DOMCTL_SHADOW_OP_OFF             = C.XEN_DOMCTL_SHADOW_OP_OFF
	XEN_DOMCTL_SHADOW_OP_ENABLE          = C.XEN_DOMCTL_SHADOW_OP_ENABLE
	XEN_DOMCTL_SHADOW_OP_CLEAN           = C.XEN_DOMCTL_SHADOW_OP_CLEAN
	XEN_DOMCTL_SHADOW_OP_PEEK            = C.XEN_DOMCTL_SHADOW_OP_PEEK
	XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION  = C.XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION
	XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION  = C.XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION
	XEN_DOMCTL_SHADOW_OP_ENABLE_TEST     = C.XEN_DOMCTL_SHADOW_OP_ENABLE_TEST
	XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY = C.XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY
	XEN_DOMCTL_SHADOW_ENABLE_REFCOUNT    = C.XEN_DOMCTL_SHADOW_ENABLE_REFCOUNT
	XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY   = C.XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY
	XEN_DOMCTL_SHADOW_ENABLE_TRANSLATE   = C.XEN_DOMCTL_SHADOW_ENABLE_TRANSLATE
	XEN_DOMCTL_SHADOW_ENABLE_EXTERNAL    = C.XEN_DOMCTL_SHADOW_ENABLE_EXTERNAL
	XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL     = C.XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL
)

// vCPU contexts and start_info in both x86 guest widths
// (xen/foreign/x86_64.h, xen/foreign/x86_32.h).

type VCPUGuestContextX86_64 C.struct_vcpu_guest_context_x86_64

type CPUUserRegsX86_64 C.struct_cpu_user_regs_x86_64

type TrapInfoX86_64 C.struct_trap_info_x86_64

type VCPUGuestContextX86_32 C.struct_vcpu_guest_context_x86_32

type CPUUserRegsX86_32 C.struct_cpu_user_regs_x86_32

type TrapInfoX86_32 C.struct_trap_info_x86_32

type StartInfoX86_64 C.struct_start_info_x86_64

type StartInfoX86_32 C.struct_start_info_x86_32

type SharedInfoX86_64 C.struct_shared_info_x86_64

type VCPUInfoX86_64 C.struct_vcpu_info_x86_64

type ArchVCPUInfoX86_64 C.struct_arch_vcpu_info_x86_64

type VCPUTimeInfoX86_64 C.struct_vcpu_time_info_x86_64

type ArchSharedInfoX86_64 C.struct_arch_shared_info_x86_64

type SharedInfoX86_32 C.struct_shared_info_x86_32

type VCPUInfoX86_32 C.struct_vcpu_info_x86_32

type ArchVCPUInfoX86_32 C.struct_arch_vcpu_info_x86_32

type VCPUTimeInfoX86_32 C.struct_vcpu_time_info_x86_32

type ArchSharedInfoX86_32 C.struct_arch_shared_info_x86_32

// HVM save records (hvm/save.h) and parameters (hvm/hvm_op.h, hvm/params.h).

type HVMSaveDescriptor C.struct_hvm_save_descriptor

type HVMSaveHeader C.struct_hvm_save_header

type HVMHWCPU C.struct_hvm_hw_cpu

type HVMParam C.struct_xen_hvm_param

const (
	HVM_SAVE_CODE_HEADER = C.xenckpt_hvm_save_code_header
	HVM_SAVE_CODE_CPU    = C.xenckpt_hvm_save_code_cpu
	HVM_SAVE_CODE_END    = C.xenckpt_hvm_save_code_end
	HVM_FILE_MAGIC       = C.HVM_FILE_MAGIC
	HVM_FILE_VERSION     = C.HVM_FILE_VERSION

	HVMOP_set_param = C.HVMOP_set_param
	HVMOP_get_param = C.HVMOP_get_param

	HVM_PARAM_CALLBACK_IRQ   = C.HVM_PARAM_CALLBACK_IRQ
	HVM_PARAM_STORE_PFN      = C.HVM_PARAM_STORE_PFN
	HVM_PARAM_STORE_EVTCHN   = C.HVM_PARAM_STORE_EVTCHN
	HVM_PARAM_PAE_ENABLED    = C.HVM_PARAM_PAE_ENABLED
	HVM_PARAM_IOREQ_PFN      = C.HVM_PARAM_IOREQ_PFN
	HVM_PARAM_BUFIOREQ_PFN   = C.HVM_PARAM_BUFIOREQ_PFN
	HVM_PARAM_VIRIDIAN       = C.HVM_PARAM_VIRIDIAN
	HVM_PARAM_ACPI_S_STATE   = C.HVM_PARAM_ACPI_S_STATE
	HVM_PARAM_CONSOLE_PFN    = C.HVM_PARAM_CONSOLE_PFN
	HVM_PARAM_CONSOLE_EVTCHN = C.HVM_PARAM_CONSOLE_EVTCHN
)

// Memory, event channel, version and scheduler operations.

type MemoryReservation C.struct_xen_memory_reservation

type AddToPhysmap C.struct_xen_add_to_physmap

type RemoveFromPhysmap C.struct_xen_remove_from_physmap

type GrantEntryV1 C.struct_grant_entry_v1

type GnttabSetupTable C.struct_gnttab_setup_table

type EvtchnAllocUnbound C.struct_evtchn_alloc_unbound

type SchedShutdown C.struct_sched_shutdown

type SchedRemoteShutdown C.struct_sched_remote_shutdown

const (
	XENMEM_populate_physmap    = C.XENMEM_populate_physmap
	XENMEM_maximum_gpfn        = C.XENMEM_maximum_gpfn
	XENMEM_add_to_physmap      = C.XENMEM_add_to_physmap
	XENMEM_remove_from_physmap = C.XENMEM_remove_from_physmap
	XENMAPSPACE_grant_table    = C.XENMAPSPACE_grant_table
	GNTTAB_RESERVED_CONSOLE    = C.GNTTAB_RESERVED_CONSOLE
	GNTTAB_RESERVED_XENSTORE   = C.GNTTAB_RESERVED_XENSTORE
	GTF_permit_access          = C.GTF_permit_access
	GNTTABOP_setup_table       = C.GNTTABOP_setup_table
	GNTST_okay                 = C.GNTST_okay

	EVTCHNOP_alloc_unbound = C.EVTCHNOP_alloc_unbound

	XENVER_version      = C.XENVER_version
	XENVER_capabilities = C.XENVER_capabilities
	XENVER_extraversion = C.XENVER_extraversion
	// XEN_EXTRAVERSION_LEN is sizeof(xen_extraversion_t).
	XEN_EXTRAVERSION_LEN = C.XEN_EXTRAVERSION_LEN
	// XEN_CAPABILITIES_INFO_LEN is sizeof(xen_capabilities_info_t).
	XEN_CAPABILITIES_INFO_LEN = C.sizeof_xen_capabilities_info_t

	SCHEDOP_yield           = C.SCHEDOP_yield
	SCHEDOP_block           = C.SCHEDOP_block
	SCHEDOP_shutdown        = C.SCHEDOP_shutdown
	SCHEDOP_remote_shutdown = C.SCHEDOP_remote_shutdown

	SHUTDOWN_poweroff   = C.SHUTDOWN_poweroff
	SHUTDOWN_reboot     = C.SHUTDOWN_reboot
	SHUTDOWN_suspend    = C.SHUTDOWN_suspend
	SHUTDOWN_crash      = C.SHUTDOWN_crash
	SHUTDOWN_watchdog   = C.SHUTDOWN_watchdog
	SHUTDOWN_soft_reset = C.SHUTDOWN_soft_reset

	VIRQ_DOM_EXC = C.VIRQ_DOM_EXC
)
