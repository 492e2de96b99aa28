package checkpoint

import (
	"context"
	"fmt"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
)

// mapStartInfo maps (with prot) and decodes the start_info page of a
// suspended PV guest: the guest passed its frame in the third hypercall
// argument, which sits in vCPU0's rdx/edx (XEN-NOTES §1.5). The caller
// closes the mapping.
func (c *Controller) mapStartInfo(ctx context.Context, dom domctl.DomID, width int, prot domctl.Prot) (magic.StartInfo, *domctl.Mapping, error) {
	vc, err := c.hv.VCPUContext(ctx, dom, 0, width)
	if err != nil {
		return magic.StartInfo{}, nil, fmt.Errorf("getting vCPU 0 context: %w", err)
	}
	frame := vc.RDX()
	mp, err := mapFrames(ctx, c.hv, dom, prot, []uint64{frame})
	if err != nil {
		return magic.StartInfo{}, nil, fmt.Errorf("mapping start_info frame %#x: %w", frame, err)
	}
	si, err := magic.DecodeStartInfo(mp.Bytes(), width)
	if err != nil {
		mp.Close()
		return si, nil, fmt.Errorf("decoding start_info at frame %#x: %w", frame, err)
	}
	return si, mp, nil
}

// convention decides how to cancel dom's suspend with magic.Negotiate over
// the caller's override, the magic[] token (PV start_info), the ELF notes
// the caller passed and the guest's xenstore feature keys.
func (c *Controller) convention(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo, o *ResumeOptions) (magic.Convention, error) {
	if o.Convention != 0 && o.Force {
		// A forced override wins whatever the evidence says: skip reading it.
		d, err := magic.Negotiate(magic.Sources{Override: o.Convention, Force: true})
		if err != nil {
			return 0, fmt.Errorf("negotiating cancel convention: %w", err)
		}
		return d.Convention, nil
	}
	src := magic.Sources{Notes: o.Notes, Override: o.Convention, Force: o.Force}
	if !info.HVM() {
		width, err := c.guestWidth(ctx, dom, info)
		if err != nil {
			return 0, err
		}
		si, mp, err := c.mapStartInfo(ctx, dom, width, domctl.ProtRead)
		if err != nil {
			return 0, err
		}
		mp.Close()
		src.Magic = si.Magic
	}
	if path, err := c.xs.GetDomainPath(ctx, uint32(dom)); err == nil {
		if v, err := c.xs.Read(ctx, path+"/"+magic.XenstoreFeatureSuspend); err == nil {
			src.FeatureSuspend = string(v)
		}
		if v, err := c.xs.Read(ctx, path+"/"+magic.XenstoreFeatureSuspendCancel); err == nil {
			src.FeatureSuspendCancel = string(v)
		}
	}
	d, err := magic.Negotiate(src)
	if err != nil {
		return 0, fmt.Errorf("negotiating cancel convention: %w", err)
	}
	c.log.DebugContext(ctx, "negotiated cancel convention", "domain", dom, "decision", d.String())
	return d.Convention, nil
}

// slowResumeFixup prepares a guest without a cancel convention for
// resumedomain the way xc_domain_resume_any does, as far as this interface
// reaches: the guest sees 0 from its suspend hypercall and reconnects as
// after a restore; a PV guest's secondary vCPUs are reset (null context),
// to be brought up again by the guest. The rest of libxc's PV fix-up,
// start_info's store and console frames turned back from PFNs into MFNs,
// is pvSlowResumeStartInfo (pv_resume.go), which resume calls next.
//
// An HVM or PVH guest whose PV drivers made the suspend hypercall cannot be
// slow-resumed: told 0 in the same domain it re-registers its vcpu_info,
// Xen answers EINVAL and Linux panics ("register_vcpu_info failed", seen
// on Xen 4.17 with Linux 6.1 in the QEMU lab). libxc's
// xc_domain_resume_any refuses these guests too. slowResumeFixup returns
// ErrNotCancellable for them and leaves the domain suspended.
func (c *Controller) slowResumeFixup(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo) error {
	if info.HVM() {
		// Only called for guests inside the hypercall (not noSuspendCall).
		return errNoInPlaceResume
	}
	if err := c.setReturn(ctx, dom, info, 0, false); err != nil {
		return err
	}
	for v := uint32(1); v <= info.MaxVCPUID; v++ {
		if err := c.hv.SetVCPUContext(ctx, dom, v, nil); err != nil {
			return fmt.Errorf("resetting vCPU %d: %w", v, err)
		}
	}
	return nil
}

// errNoInPlaceResume is why an HVM guest with PV drivers and no cancel
// convention cannot continue in its domain after suspending.
var errNoInPlaceResume = fmt.Errorf("%w: an HVM/PVH guest with PV drivers and no cancel convention cannot be resumed in its domain (it would take the restore path there and crash; libxc refuses it too)", ErrNotCancellable)

// preflightCancel refuses, before anything touches the guest, an
// operation that must end with the guest running in its own domain
// (checkpoint, Remus) when that is impossible: an HVM or PVH guest with PV
// drivers whose cancel convention is none (see slowResumeFixup). PV guests
// are decided after the suspend, when their start_info magic[] is
// readable, and can always be slow-resumed if the caller allows it.
func (c *Controller) preflightCancel(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo, o *ResumeOptions) error {
	if !info.HVM() {
		return nil
	}
	if bare, err := c.noSuspendCall(ctx, dom, info); err != nil || bare {
		return err // suspended without a hypercall: resumedomain suffices
	}
	conv, err := c.convention(ctx, dom, info, o)
	if err != nil {
		return err
	}
	if conv == magic.ConventionNone {
		return errNoInPlaceResume
	}
	return nil
}
