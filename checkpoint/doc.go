// Package checkpoint checkpoints, saves, restores, migrates and replicates
// Xen guest domains. It finds out how a guest can cancel a suspend, asks it
// to suspend, snapshots its memory (all at once, or live with log-dirty
// precopy rounds) into Xen's migration stream (package stream), and then
// either cancels the suspend so the original keeps running (a checkpoint)
// or completes the operation (destroying the source of a save or a
// migration only once the image is safe or the receiver holds the domain).
// Whatever fails after the guest suspended, the guest is resumed.
//
// # Operations
//
// A Controller runs every operation on one hypervisor connection
// (Hypervisor, implemented by *domctl.Conn) and one xenstore client (Store,
// implemented by *xenstore.Client):
//
//   - Suspend and Resume: the two halves of a checkpoint, by hand.
//   - Checkpoint: image to an io.Writer, then cancel the suspend.
//   - Save: image to an io.Writer (synced if it is an *os.File), then
//     destroy the domain.
//   - Restore: build a new domain from an image (xl, libxl or libxc
//     format) and unpause it.
//   - Migrate and Receive: the two ends of a migration over any
//     io.ReadWriter (TCP, an SSH pipe), with a handshake that destroys the
//     source only after the receiver reports a complete domain.
//   - Remus and RemusBackup: a checkpoint every interval as a checkpointed
//     stream; the backup applies complete checkpoints only and fails over
//     to the last one when the stream breaks.
//
// # The suspend handshake
//
// As libxl does it: when the guest publishes device/suspend/event-channel
// the Controller takes the lock file <LockDir>/suspend-evtchn-<domid>.lock,
// binds and subscribes the channel and notifies it; otherwise it writes
// control/shutdown="suspend" and waits for the acknowledgement (any other
// value, or the node's removal). An unacknowledged request is withdrawn in
// a transaction, where a last-moment acknowledgement still wins. An HVM
// guest (libxl type "hvm", not "pvh") without PV drivers
// (HVM_PARAM_CALLBACK_IRQ 0) or in an ACPI sleep state is not asked: it
// is suspended with SCHEDOP_remote_shutdown, as libxl does, and cancelling
// that suspend is resumedomain alone (no convention is involved). Then it
// waits for SHUTDOWN_suspend, re-checking getdomaininfo on every
// @releaseDomain and, on the event-channel path, every notification too
// (a crash or destruction fires only @releaseDomain). Config holds the
// timeouts (60 s each by default, as libxl), and a ctx cancels any wait.
// A guest whose control/feature-suspend is not "1" is refused at once.
// When a wait ends (timeout or ctx) after the request could no longer be
// withdrawn, a guard resumes the guest should it still suspend.
//
// # Cancel conventions
//
// Two conventions exist for telling a guest its suspend was cancelled, and
// both are implemented; the package magic decides which one a guest
// follows (ResumeOptions: caller override, ELF notes, the magic[] token of
// the start_info page):
//
//   - seed (Keir Fraser, 2006): the guest advertises "sc" in
//     start_info.magic[]; cancel writes 0 into vCPU0's eax/rax, a restore
//     leaves a positive value.
//   - upstream (Linux, XEN_ELFNOTE_SUSPEND_CANCEL): cancel writes 1; a
//     restored guest sees 0.
//   - neither: the slow resume of a PV guest (it sees 0 and reconnects as
//     after a restore) when ResumeOptions.SlowResume allows it, else
//     ErrNotCancellable. An HVM or PVH guest with PV drivers cannot be
//     slow-resumed: told 0 in its own domain it takes the restore path
//     there and crashes (Linux 6.1 panics re-registering its vcpu_info,
//     seen on Xen 4.17), so Checkpoint and Remus refuse it before
//     suspending, and a failed Save or Migrate of it returns
//     ErrNotCancellable with the domain still suspended (libxc's
//     xc_domain_resume_any refuses these guests too). Modern Linux PV
//     guests panic the same way; slow resume is for kernels of the seed's
//     era.
//
// The value goes into vCPU0's context at the guest's width for PV guests,
// and into the rax of vCPU0's CPU record of the HVM context for HVM and
// PVH guests (skipped, as in libxc, when HVM_PARAM_CALLBACK_IRQ is 0).
// Resumedomain and XS_RESUME follow, so that the next suspend's
// @releaseDomain fires.
//
// # Concurrency
//
// A Controller is safe for concurrent use. Operations on different domains
// run in parallel; a second operation on a busy domain fails with ErrBusy.
// Hooks and Progress callbacks run synchronously on the operation's
// goroutine. The one goroutine that outlives a call: when ctx ends after
// the guest acknowledged a suspend request, the call returns at once and a
// guard keeps the domain busy for up to Config.SuspendTimeout, resuming the
// guest if it still suspends.
//
// # Errors
//
// Every operation returns an *OpError naming the operation and domain. It
// wraps the cause, and cleanup failures are collected with it
// (go-multierror), so errors.Is works for each: ErrNotAcknowledged,
// ErrNotSuspended, ErrDomainGone, ErrBusy, ErrNotCancellable,
// ErrSuspendUnsupported, ErrAlreadySuspended, ErrRemote, ErrProtocol,
// ErrNoCheckpoint, ErrBadFrame, *ShutdownError (errors.As; carries the
// reason), and context errors.
//
// # Saving PV guests
//
// A PV guest's frames are machine frames (MFNs), which only its own p2m
// maps to its pseudo-physical frames (pfns), and an image must hold pfns
// only. So a save, checkpoint or migration of a PV guest follows libxc's
// x86 PV save. Before the first page it maps the shared_info frame and
// reads the guest's p2m from it: through the guest's page tables when
// shared_info names a virtual linear p2m (p2m_cr3, what Linux publishes),
// else through the 3-level frame-list tree (pfn_to_mfn_frame_list_list);
// max_pfn sizes the image, and X86_PV_P2M_FRAMES lists the pfns of the
// p2m's own frames. Pages are then sent by pfn, each read from its MFN
// with the type getpageframeinfo3 gives it (pfns the p2m does not back go
// as XTAB). Page tables are normalised: every present entry's MFN becomes
// its pfn, Xen's mappings are cleared (a 64-bit L4's slots 256..272, a
// PAE L3's entries 4..511, and a PAE L2's compat M2P range when it names
// a frame that is not the guest's), and superpages are refused
// (ErrUnsupportedGuest). In each vCPU's context vCPU0's edx (start_info
// of the suspend hypercall), cr3, cr1 and the GDT frames become pfns. A
// page table of a running guest (live rounds) that names a frame outside
// its p2m is sent as XTAB and again in the final round; once the guest is
// suspended that, like an unreadable p2m (found before the suspend), is
// ErrBadFrame, and the guest is resumed. Each online vCPU gets, in
// libxc's order, X86_PV_VCPU_BASIC, X86_PV_VCPU_EXTENDED (the
// ext_vcpucontext), X86_PV_VCPU_XSAVE (getvcpuextstate; none on a host
// without xsave) and X86_PV_VCPU_MSRS (get_vcpu_msrs; none when all are
// zero); as in libxc, a hypervisor that cannot answer one of those fails
// the save and the guest is resumed.
//
// # Restoring PV guests
//
// A PV guest's frames are machine frames, so Restore follows libxc's x86
// PV restore. The new domain gets the image's CPUID and MSR policy; every
// pfn of the image gets a new machine frame (XENMEM_populate_physmap
// returns it); page-table pages are localised before they are written: each present entry's pfn becomes the new mfn,
// Xen's L4 slots stay empty, superpages are refused. At the end of the
// stream shared_info is filled as libxc does; vCPU0's start_info is
// fixed up (its own frame, the store and console rings and their new
// event channels, nr_pages, shared_info); each vCPU's context is set with
// cr3, the user cr3 and the GDT frames turned into machine frames, then
// its EXTENDED, XSAVE and MSRS records; the pinned page tables are pinned
// by level (MMUEXT_PIN_L*_TABLE); the guest's own p2m frames
// (X86_PV_P2M_FRAMES) receive the new pfn-to-mfn map; and the reserved
// grant entries are seeded (GNTTABOP_setup_table). An image that names a
// frame it does not hold, or one of the wrong type, fails with a
// *PVImageError and the half-built domain is destroyed.
//
// # Limitations
//
//   - A PV guest on a Xen without log-dirty support for PV guests (no
//     shadow paging, as Debian's build) cannot be saved live: a Live
//     request copies it suspended instead, with a warning in the log.
//   - The p2m of a PV guest is read once per operation, before the
//     suspend. A guest with a linear p2m that changes it meanwhile (its
//     p2m_generation moves) fails the operation with ErrBadFrame, as
//     libxc aborts; a change to a tree-only p2m is not noticed.
//   - The slow resume turns start_info's rings back into MFNs as libxc
//     does, but modern Linux PV guests do not survive it (see Cancel
//     conventions). Give real Linux PV guests their convention
//     (ResumeOptions.Notes or Convention) so they are never slow-resumed.
//   - Restore applies an image's CPUID and MSR policy records
//     (X86_CPUID_POLICY, X86_MSR_POLICY; xl's images have them) to PV
//     guests only; an HVM or PVH domain keeps Xen's default policy.
//   - Device-model (QEMU) state of HVM guests is not saved; PVH guests
//     have none.
//   - Only the online vCPUs of a PV guest are saved (VGCF_online in the
//     context Xen returns), as libxc does; restore leaves the others
//     down. HVM and PVH guests rely on the HVM context, from which Xen
//     omits vCPUs that are down (the simulator keeps every CPU record).
//
// # Testing without Xen
//
// The tests and examples run on xensim, a simulated hypervisor behind the
// same byte-level domctl backend as the real privcmd one, with its embedded
// xenstored and simulated guests of every convention and misbehaviour.
package checkpoint
