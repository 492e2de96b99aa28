package xensim

import (
	"fmt"

	"github.com/xenckpt/xenckpt/domctl"
)

// Frame returns the frame number a toolstack maps to reach pfn of dom: its
// machine frame for a PV domain with machine frames (Config.PVFrames), the
// pfn itself otherwise. On real Xen a toolstack finds it through the
// guest's p2m; tests and demos that know a pfn (a simulated guest keeps
// start_info in pfn 1) use this instead. An unpopulated pfn or a missing
// domain is an error.
func (h *Host) Frame(dom domctl.DomID, pfn uint64) (uint64, error) {
	h.x.mu.Lock()
	defer h.x.mu.Unlock()
	d, err := h.x.lookupLocked(dom)
	if err != nil {
		return 0, err
	}
	f := d.pfnFrame(pfn)
	if f == invalidMFN {
		return 0, fmt.Errorf("xensim: domain %d has no pfn %#x", dom, pfn)
	}
	return f, nil
}
