// Package xensim is a simulated Xen host for tests, examples and demos: a
// hypervisor that implements domctl.Backend at the byte level, an embedded
// xenstored, and simulated guest kernels that answer suspend requests the
// way real guests do.
//
// # Hypervisor
//
// Host.Backend decodes the same marshalled hypercall arguments the Linux
// privcmd backend hands to Xen (struct xen_domctl and friends, from
// internal/abi, in buffers obtained from AllocBuffer), acts on a domain
// model, and writes results back in place, as Xen does. Supported:
//
//   - domctl: createdomain, destroydomain, pause/unpause, resumedomain,
//     getdomaininfo, shadow_op (log-dirty ENABLE_LOGDIRTY/ENABLE, CLEAN,
//     PEEK with XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL, OFF), max_mem,
//     get/setvcpucontext (x86_64 and x86_32 layouts), get/sethvmcontext,
//     get/set_address_size, get/settscinfo, subscribe, getpageframeinfo3,
//     get/set_ext_vcpucontext, get/setvcpuextstate and get/set_vcpu_msrs
//     (per-vCPU state as Xen 4.17 checks it; a host with x87|SSE|AVX
//     xsave and no DBEXT);
//   - memory_op: populate_physmap, maximum_gpfn, add_to_physmap (grant
//     table), remove_from_physmap;
//   - mmu_update (MMU_NORMAL_PT_UPDATE, MMU_MACHPHYS_UPDATE) and mmuext_op
//     (MMUEXT_PIN_L{1..4}_TABLE, MMUEXT_UNPIN_TABLE) on a foreign PV
//     domain; grant_table_op: setup_table (one frame);
//   - xen_version: version, capabilities; event_channel_op: alloc_unbound;
//   - hvm_op: get/set_param; sched_op: remote_shutdown.
//
// Anything else fails with ENOSYS. A domctl whose interface_version is not
// the simulated release's (Config.Version: 0x15 for 4.17, 0x16 for 4.18,
// 0x17 for 4.19) fails with EACCES before anything else. getdomaininfo of a
// missing domain returns the next existing domain on 4.17 and ESRCH later.
// Pausing or resuming dom0 is EINVAL; unknown domains are ESRCH; unpausing
// a domain the toolstack has not paused is EINVAL.
//
// The shutdown state machine follows xen/common/domain.c: a guest's
// SCHEDOP_shutdown(SHUTDOWN_suspend) pauses every vCPU for shutdown, leaves
// rax = 0 (and, for PV, rdx = start_info's MFN) in vCPU0's saved frame,
// marks the domain shut down, then notifies the suspend event channel
// subscribed with XEN_DOMCTL_subscribe if any, else raises VIRQ_DOM_EXC
// (the embedded xenstored then fires @releaseDomain, and event-channel
// devices bound to the VIRQ see it). resumedomain clears the shutdown and
// unpauses the vCPUs. A destroyed domain is dying until the last foreign
// mapping of its memory is unmapped, then gone.
//
// # Memory
//
// Each domain's physical memory is one memfd the size of the physmap
// (Config.PhysmapFrames, sparse). MapForeign maps each run of consecutive
// populated frames of that memfd into a PROT_NONE reservation with
// MAP_SHARED|MAP_FIXED|MAP_POPULATE, so a mapping aliases guest memory
// without copying, writes through it land in the guest, and UnmapForeign is
// a real munmap. A read-only MapForeign of consecutive pages of the memfd
// (a snapshot batch) needs no new mapping: it is a slice of a second,
// read-only mapping of the whole memfd, populated as frames are allocated,
// much as Xen maps guest frames for dom0 out of memory it already holds;
// it faults on a write, and keeps a destroyed domain's memory until it is
// unmapped like any mapping. Unpopulated frames get -EINVAL in the error
// array and stay inaccessible. Writable mappings mark their frames dirty when made and
// when unmapped (and a CLEAN with LOGDIRTY_FINAL adds frames still mapped
// writable). Guest kernels write through the simulator, which marks log-
// dirty pages. getpageframeinfo3 reports NOTAB for populated frames and
// XTAB for holes. The frame getdomaininfo reports as shared_info_frame is
// a Xen page outside the physmap (backed by the page past it in the
// memfd): MapForeign maps it, getpageframeinfo3 calls it XTAB, and
// log-dirty does not track it. Frame 0 of the grant table is the next
// page; for a PV domain GNTTABOP_setup_table names it and MapForeign maps
// it.
//
// # PV frames
//
// HVM and PVH domains are mapped by gfn. For PV domains Config.PVFrames
// chooses: PVFramesMachine numbers their frames as real Xen does, each
// populated pfn backed by a machine frame (MFN) from a host-wide space
// (permuted, never equal to the pfn), with the host's M2P kept per
// owner; populate_physmap writes the new MFN back into extent_start, and
// MapForeign, getpageframeinfo3, mmu_update and mmuext_op take MFNs (a
// pfn, or another domain's frame, is -EINVAL / XTAB). PVFramesMachine is
// the default. PVFramesIdentity gives every pfn the MFN equal to it, for
// toolstacks (and low-level tests) that do not translate. Log-dirty is
// indexed by pfn either way, as in Xen.
//
// Page tables are typed as Xen types them: pinning a table
// (MMUEXT_PIN_L<n>_TABLE) validates it (present entries must name the
// domain's frames, no superpages above L1), types it and every table it
// references one level down, and, for an L4, fills Xen's slots 256..271
// with entries naming Xen's frames; getpageframeinfo3 reports
// L1TAB..L4TAB (| LPINTAB for the pinned one); a page-table frame is
// never mapped writable; unpinning drops the types. mmu_update validates
// a page-table entry against its table's type.
//
// HVM domains (PVH guests) have an HVM context that is a real hvm_save
// stream: a HEADER record (struct hvm_save_header, HVM_FILE_MAGIC), one CPU
// record (struct hvm_hw_cpu, instance = vCPU id) per vCPU, then END. The
// guest's suspend return value is the rax field of vCPU0's CPU record;
// sethvmcontext accepts any well-formed stream starting with HEADER and
// ending with END. get/setvcpucontext on an HVM domain keep rax in step
// with that record.
//
// # Guests and the boot ROM convention
//
// Host.CreateGuest builds a domain like a toolstack and starts a simulated
// kernel: a goroutine acting as the domain's vCPUs, with its own xenstore
// connection as its domain. It watches control/shutdown, acknowledges
// "suspend" by writing "" in a transaction (Linux style), advertises
// control/feature-suspend=1, optionally allocates a suspend event channel
// (device/suspend/event-channel), and suspends with SCHEDOP_shutdown. It
// interprets the value the hypercall returns by its Convention.
//
// All of a kernel's state lives in guest memory, so a domain restored from
// an image (by any toolstack, through the Backend) runs the same guest.
// Frame 0 holds the kernel header: the magic "XSIMKRN1", kernel id, Kind,
// Convention, Behaviour, flags, dirty rate, a counter incremented every
// tick, reconnect and suspend counts, the last suspend return value and a
// "suspending" state word. Frame 1 holds start_info: the builder writes
// the guest type into magic[] ("xen-3.0-x86_64" or "xen-3.0-x86_32p"), and
// a seed kernel appends the "sc" capability token when it first boots (PVH
// guests get a start_info-format page too). Frames 2 and 3 are the store
// and console frames; frames 4 and up are data pages the kernel dirties at
// its configured rate. All frames are backed by memory when populated.
//
// A PV guest keeps, in its top frames (above the data pages; a smaller
// Pages is raised to fit them and 4 data pages), what a Linux PV kernel has and a toolstack must
// translate: page tables mapping all of its memory (4 levels, or 3 PAE
// levels for PV32; entries hold MFNs; the top level pinned and in every
// vCPU's cr3), a GDT frame (gdt_frames[0]), and its p2m as the 3-level
// tree Xen's tools walk: leaves of pfn-to-MFN entries (guest width), frame
// lists, and the frame-list list, announced in shared_info (max_pfn,
// pfn_to_mfn_frame_list_list). 64-bit guests also publish it as Linux
// does, as a virtual linear list through their own page tables (p2m_cr3,
// p2m_vaddr in the direct map, p2m_generation 0); 32-bit guests leave
// p2m_cr3 0, so tools walk the tree. start_info holds the store
// and console MFNs while the guest runs. At suspend the kernel turns them
// into pfns and passes start_info's MFN (read from its own p2m) in rdx, as
// Linux's xen_pv_pre_suspend; a cancelled suspend turns them back into
// MFNs. A kernel that resumes in a new domain requires its store frame to
// be the MFN its p2m (rewritten by the restoring toolstack) gives the
// store pfn, then rebuilds its frame lists and shared_info's p2m fields.
//
// A kernel that returns from its suspend call in a new domain re-reads
// start_info (PV) and, if store_mfn is not where it left it, ends up
// GuestBroken; otherwise it reconnects to xenstore (Reconnects counts it),
// re-advertises control/feature-suspend and, if configured, allocates a
// new suspend event channel.
//
// The boot ROM: whenever a domain becomes runnable (unpause, resumedomain)
// and no kernel runs in it, the simulator looks at frame 0; if it holds a
// kernel header, it starts a kernel there. A header in the "suspending"
// state means the kernel is returning from its suspend hypercall in a new
// domain: it reads the return value from vCPU0's rax (eax for 32-bit PV;
// the HVM CPU record for PVH), and acts on it by its convention. A
// restored guest that is told "cancelled" ends up GuestBroken (its old
// xenstore connection does not exist here). Restore targets need their
// xenstore nodes and an XS_INTRODUCE before the kernel can reconnect:
// Host.PrepareDomain does what libxl does.
//
// # Concurrency
//
// A Host and everything it returns are safe for concurrent use. Pausing a
// domain waits until its kernel has finished its current step, so after
// pausedomain returns guest memory does not change.
//
// # Errors
//
// Hypercalls fail with syscall.Errno values, as the privcmd backend
// reports Xen's -errno. Host methods wrap them with context.
package xensim
