package checkpoint

import (
	"context"
	"fmt"

	"github.com/xenckpt/xenckpt/domctl"
)

// pvSlowResumeStartInfo is the PV part of libxc's xc_domain_resume_any: a
// Linux PV guest turned start_info's store and console frames into pfns
// before suspending (xen_pv_pre_suspend) and, told 0 ("new domain"),
// expects the toolstack to have turned them back into machine frames, as
// a restore does. In the same domain the machine frames are the guest's
// own: they are read from its p2m.
//
// That is all libxc does, and it is not enough for a modern Linux PV
// guest: in the QEMU lab (Xen 4.17, Linux 6.1) the guest, told 0 in its
// own domain, re-registers its vcpu_info, Xen answers EINVAL and the
// kernel panics ("register_vcpu_info failed"), as HVM guests do. Give
// such guests their cancel convention (ResumeOptions.Notes).
func (c *Controller) pvSlowResumeStartInfo(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo) error {
	width, err := c.guestWidth(ctx, dom, info)
	if err != nil {
		return err
	}
	si, mp, err := c.mapStartInfo(ctx, dom, width, domctl.ProtReadWrite)
	if err != nil {
		return err
	}
	defer mp.Close()
	mem, err := readPVMemory(ctx, c.hv, dom, info.SharedInfoFrame, width)
	if err != nil {
		return fmt.Errorf("reading the guest's p2m for the slow resume: %w", err)
	}
	toMFN := func(what string, pfn uint64) (uint64, error) {
		if pfn >= uint64(len(mem.p2m)) || mem.p2m[pfn] == invalidFrame {
			return 0, fmt.Errorf("%w: start_info %s pfn %#x has no frame", ErrBadFrame, what, pfn)
		}
		return mem.p2m[pfn], nil
	}
	if si.StoreMFN, err = toMFN("store", si.StoreMFN); err != nil {
		return err
	}
	if si.ConsoleMFN, err = toMFN("console", si.ConsoleMFN); err != nil {
		return err
	}
	if err := si.EncodeTo(mp.Bytes(), width); err != nil {
		return fmt.Errorf("encoding start_info: %w", err)
	}
	return nil
}
