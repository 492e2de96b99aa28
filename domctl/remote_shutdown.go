package domctl

import (
	"context"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
)

// OpRemoteShutdown names SCHEDOP_remote_shutdown in an OpError.
const OpRemoteShutdown = "sched_op remote_shutdown"

// RemoteShutdown is SCHEDOP_remote_shutdown (xc_domain_shutdown): Xen shuts
// dom down with reason as if the guest had asked, without the guest's
// cooperation. Every vCPU is paused for shutdown; the registers are left
// as they are (no hypercall returns in the guest). libxl suspends an HVM
// guest without PV drivers this way (reason ShutdownSuspend), and resumes
// it with resumedomain. A reason above ShutdownSoftReset is refused with
// EINVAL before any hypercall; a missing domain matches ErrNoDomain.
func (c *Conn) RemoteShutdown(ctx context.Context, dom DomID, reason ShutdownReason) error {
	if reason > ShutdownSoftReset {
		return newOpError(OpRemoteShutdown, dom, fmt.Errorf("shutdown reason %d out of range: %w", reason, syscall.EINVAL))
	}
	buf, err := c.alloc(int(unsafe.Sizeof(abi.SchedRemoteShutdown{})))
	if err != nil {
		return newOpError(OpRemoteShutdown, dom, err)
	}
	defer c.free(buf)
	a := abi.View[abi.SchedRemoteShutdown](buf)
	a.DomainID = uint16(dom)
	a.Reason = uint32(reason)
	_, err = c.hypercall(ctx, abi.HYPERVISOR_sched_op, abi.SCHEDOP_remote_shutdown, bufAddr(buf))
	return newOpError(OpRemoteShutdown, dom, err)
}
