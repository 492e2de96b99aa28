package xensim

import (
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// remoteShutdown is SCHEDOP_remote_shutdown from dom0 (xc_domain_shutdown,
// how libxl suspends an HVM guest without PV drivers): domain_shutdown on
// the target, whose registers stay as they are. It returns once the
// target's vCPUs are off the CPU, as domain_shutdown's vcpu pause is
// complete before __domain_finalise_shutdown reports the domain shut down,
// so memory does not change after the caller sees SHUTDOWN_suspend.
func (x *xen) remoteShutdown(a *abi.SchedRemoteShutdown) error {
	if a.DomainID == 0 || a.Reason > abi.SHUTDOWN_soft_reset {
		return errEINVAL
	}
	id := domctl.DomID(a.DomainID)
	if err := x.shutdown(id, uint8(a.Reason), 0, false); err != nil {
		return err
	}
	x.mu.Lock()
	d := x.doms[id]
	x.mu.Unlock()
	if d != nil {
		d.waitOffCPU()
	}
	return nil
}
