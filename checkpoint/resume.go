package checkpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
)

// ResumeOptions say how a suspended guest is brought back in the same
// domain (a cancelled suspend). The zero value negotiates the convention
// from what the guest advertises and refuses guests with none.
type ResumeOptions struct {
	// Convention, if not zero, is the caller's override
	// (magic.Sources.Override): it decides unless the guest's own evidence
	// contradicts it, which is a magic.ErrConflict error unless Force.
	Convention magic.Convention
	// Force lets Convention win over contradicting evidence.
	Force bool
	// Notes are the Xen ELF notes of the guest's kernel, when the caller
	// knows them (magic.ReadNotes on the kernel image). A kernel with
	// XEN_ELFNOTE_SUSPEND_CANCEL set is an upstream-convention guest.
	Notes *magic.Notes
	// SlowResume allows the slow resume (xc_domain_resume_any: the guest
	// sees 0 and reconnects as after a restore) for guests with no cancel
	// convention. Without it such a guest yields ErrNotCancellable.
	SlowResume bool
}

// Resume cancels the suspend of a domain that is shut down with
// SHUTDOWN_suspend, so it continues in the same domain: it writes the
// guest's convention's cancel value into vCPU0's return register
// (seed: 0, upstream: 1), issues resumedomain and XS_RESUME.
//
// For a guest without a convention and without opts.SlowResume, Resume
// returns ErrNotCancellable and leaves the domain suspended; the caller can
// retry with SlowResume or destroy it. A domain that is not suspended gives
// ErrNotSuspended and is not touched.
func (c *Controller) Resume(ctx context.Context, dom domctl.DomID, opts *ResumeOptions) (magic.Convention, error) {
	release, err := c.acquire(dom)
	if err != nil {
		return 0, newOpError(OpResume, dom, err)
	}
	defer release()
	var o ResumeOptions
	if opts != nil {
		o = *opts
	}
	conv, err := c.resume(ctx, dom, &o, false)
	return conv, newOpError(OpResume, dom, err)
}

// resume is Resume without the lock. With force, a guest without a
// convention is slow-resumed even if the options do not allow it, and
// ErrNotCancellable is returned alongside: used when the Controller itself
// suspended the guest and must not leave it suspended.
func (c *Controller) resume(ctx context.Context, dom domctl.DomID, o *ResumeOptions, force bool) (magic.Convention, error) {
	info, err := c.hv.DomainInfo(ctx, dom)
	if isGone(err) {
		return 0, fmt.Errorf("%w: %w", ErrDomainGone, err)
	}
	if err != nil {
		return 0, fmt.Errorf("getting domain info: %w", err)
	}
	if !info.Suspended() {
		return 0, fmt.Errorf("%w (shutdown %t, reason %s)", ErrNotSuspended, info.Shutdown(), info.ShutdownReason())
	}
	// An HVM guest suspended by remote shutdown made no hypercall: no
	// return value, no convention, resumedomain is all (suspend.go).
	bare, err := c.noSuspendCall(ctx, dom, info)
	if err != nil {
		return 0, err
	}
	conv := magic.ConventionNone
	if !bare {
		if conv, err = c.convention(ctx, dom, info, o); err != nil {
			return 0, err
		}
	}
	var refused error
	if conv == magic.ConventionNone && !o.SlowResume && !bare {
		if !force {
			return conv, ErrNotCancellable
		}
		refused = fmt.Errorf("%w: slow-resumed it instead", ErrNotCancellable)
	}
	if err := c.cfg.Hooks.PreResume(ctx, dom); err != nil {
		// The guest must run again regardless; report the hook's error.
		refused = errors.Join(refused, fmt.Errorf("pre-resume hook: %w", err))
	}
	switch v, ok := conv.CancelValue(); {
	case bare:
	case ok:
		err = c.setReturn(ctx, dom, info, v, false)
	default:
		err = c.slowResumeFixup(ctx, dom, info)
		if err == nil && !info.HVM() {
			err = c.pvSlowResumeStartInfo(ctx, dom, info)
		}
	}
	if err != nil {
		return conv, err
	}
	if err := c.hv.ResumeDomain(ctx, dom); err != nil {
		return conv, fmt.Errorf("resuming domain: %w", err)
	}
	// Re-arm @releaseDomain, or the next suspend's wait would hang.
	if err := c.xs.Resume(ctx, uint32(dom)); err != nil {
		return conv, fmt.Errorf("xenstore resume: %w", err)
	}
	c.log.DebugContext(ctx, "resumed domain", "domain", dom, "convention", conv)
	return conv, refused
}

// guestWidth is the width of the guest's registers in bytes: the address
// size for PV; for HVM the hypervisor's (XENVER_capabilities) as libxc's
// modify_returncode decides it.
func (c *Controller) guestWidth(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo) (int, error) {
	if !info.HVM() {
		bits, err := c.hv.AddressSize(ctx, dom)
		if err != nil {
			return 0, fmt.Errorf("getting address size: %w", err)
		}
		return bits / 8, nil
	}
	caps, err := c.hv.Capabilities(ctx)
	if err != nil {
		return 0, fmt.Errorf("getting capabilities: %w", err)
	}
	if strings.Contains(caps, "x86_64") {
		return 8, nil
	}
	return 4, nil
}

// setReturn writes v as the return value of the guest's suspend hypercall:
// vCPU0's rax/eax for PV, the rax of vCPU0's CPU record in the HVM context
// for HVM/PVH (for a cancel skipped, as libxc does, when
// HVM_PARAM_CALLBACK_IRQ is 0: without PV drivers nothing reads it; a
// restore target has no callback registered yet, so restore passes always).
func (c *Controller) setReturn(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo, v uint64, always bool) error {
	width, err := c.guestWidth(ctx, dom, info)
	if err != nil {
		return err
	}
	if info.HVM() {
		irq, err := c.hv.HVMParam(ctx, dom, abi.HVM_PARAM_CALLBACK_IRQ)
		if err != nil {
			return fmt.Errorf("getting HVM callback irq: %w", err)
		}
		if irq == 0 && !always && c.domainType(ctx, dom, info) != "pvh" {
			return nil // no PV drivers: nothing reads it (noSuspendCall)
		}
		hc, err := c.hv.HVMContext(ctx, dom)
		if err != nil {
			return fmt.Errorf("getting HVM context: %w", err)
		}
		if err := setHVMRax(hc, 0, v, width); err != nil {
			return err
		}
		if err := c.hv.SetHVMContext(ctx, dom, hc); err != nil {
			return fmt.Errorf("setting HVM context: %w", err)
		}
		return nil
	}
	vc, err := c.hv.VCPUContext(ctx, dom, 0, width)
	if err != nil {
		return fmt.Errorf("getting vCPU 0 context: %w", err)
	}
	vc.SetRAX(v)
	if err := c.hv.SetVCPUContext(ctx, dom, 0, vc); err != nil {
		return fmt.Errorf("setting vCPU 0 context: %w", err)
	}
	return nil
}

// HVM save format (xen/include/public/hvm/save.h): a sequence of records,
// each a struct hvm_save_descriptor {u16 typecode, u16 instance, u32
// length} and length bytes; typecode 0 ends it. struct hvm_hw_cpu
// (typecode 2, one per vCPU) begins with fpu_regs[512], then rax.
const (
	hvmDescSize   = int(unsafe.Sizeof(abi.HVMSaveDescriptor{}))
	hvmCodeEnd    = abi.HVM_SAVE_CODE_END
	hvmCodeCPU    = abi.HVM_SAVE_CODE_CPU
	hvmCPURaxOff  = int(unsafe.Offsetof(abi.HVMHWCPU{}.Rax))
	errHVMContext = "HVM context"
)

var errNoCPURecord = errors.New("HVM context has no CPU record for the vCPU")

// hvmCPURecord returns the body of vCPU vcpu's CPU record in hc.
func hvmCPURecord(hc []byte, vcpu uint16) ([]byte, error) {
	for off := 0; off+hvmDescSize <= len(hc); {
		code := binary.LittleEndian.Uint16(hc[off:])
		inst := binary.LittleEndian.Uint16(hc[off+2:])
		n := int(binary.LittleEndian.Uint32(hc[off+4:]))
		body := off + hvmDescSize
		if n < 0 || body+n > len(hc) {
			return nil, fmt.Errorf("%s: record at %d overruns the context", errHVMContext, off)
		}
		if code == hvmCodeEnd {
			break
		}
		if code == hvmCodeCPU && inst == vcpu {
			if n < hvmCPURaxOff+8 {
				return nil, fmt.Errorf("%s: CPU record of %d bytes is too short", errHVMContext, n)
			}
			return hc[body : body+n], nil
		}
		off = body + n
	}
	return nil, errNoCPURecord
}

// setHVMRax writes v into the rax of vCPU vcpu's CPU record: all 8 bytes
// for a 64-bit hypervisor, the low 4 (eax) otherwise, as SET_FIELD does.
func setHVMRax(hc []byte, vcpu uint16, v uint64, width int) error {
	rec, err := hvmCPURecord(hc, vcpu)
	if err != nil {
		return err
	}
	if width == 4 {
		binary.LittleEndian.PutUint32(rec[hvmCPURaxOff:], uint32(v))
	} else {
		binary.LittleEndian.PutUint64(rec[hvmCPURaxOff:], v)
	}
	return nil
}
