package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/xenstore"
)

// The xenstore nodes of the suspend protocol, relative to the domain path.
const (
	nodeShutdown       = "control/shutdown"
	nodeFeatureSuspend = "control/feature-suspend"
	nodeSuspendEvtchn  = "device/suspend/event-channel"
	releaseDomainWatch = "@releaseDomain"
)

// isGone reports an error meaning the domain no longer exists.
func isGone(err error) bool {
	return errors.Is(err, domctl.ErrNoDomain) || errors.Is(err, syscall.ESRCH)
}

// suspender asks one domain to suspend, as many times as the operation
// needs (once for a save, every epoch for Remus). It holds the suspend
// event channel, when the guest has one, for its whole life.
type suspender struct {
	c       *Controller
	dom     domctl.DomID
	domPath string

	ev        *domctl.Evtchn // nil: use control/shutdown
	localPort uint32
	lock      *suspendLock
}

// newSuspender looks at the guest's advertised suspend mechanisms and binds
// its suspend event channel if it has one (lock file, bind, subscribe,
// consume the event the bind raises: xc_suspend_evtchn_init_exclusive).
func (c *Controller) newSuspender(ctx context.Context, dom domctl.DomID) (*suspender, error) {
	path, err := c.xs.GetDomainPath(ctx, uint32(dom))
	if err != nil {
		return nil, fmt.Errorf("getting domain path: %w", err)
	}
	s := &suspender{c: c, dom: dom, domPath: path}
	port, ok, err := s.readUint(ctx, nodeSuspendEvtchn)
	if err != nil {
		return nil, err
	}
	if !ok {
		return s, nil
	}
	if err := s.bindEvtchn(ctx, port); err != nil {
		return nil, errors.Join(err, s.close())
	}
	return s, nil
}

func (s *suspender) bindEvtchn(ctx context.Context, port uint32) error {
	var err error
	if s.lock, err = lockSuspendEvtchn(s.c.cfg.LockDir, uint32(s.dom)); err != nil {
		return err
	}
	if s.ev, err = s.c.hv.OpenEvtchn(ctx); err != nil {
		return fmt.Errorf("opening event channel device: %w", err)
	}
	if s.localPort, err = s.ev.BindInterdomain(ctx, s.dom, port); err != nil {
		return domErr(fmt.Sprintf("binding suspend event channel %d", port), err)
	}
	if err := s.c.hv.SubscribeSuspend(ctx, s.dom, port); err != nil {
		return domErr(fmt.Sprintf("subscribing suspend event channel %d", port), err)
	}
	// Binding raises the port once; consume it so the first real
	// notification is not mistaken for a suspend (xc_await_suspend).
	if err := s.awaitEvtchn(ctx, time.Second); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("consuming initial suspend event: %w", err)
	}
	s.c.log.DebugContext(ctx, "bound suspend event channel", "domain", s.dom, "remote", port, "local", s.localPort)
	return nil
}

// awaitEvtchn waits up to d for our local port to fire, then unmasks it.
func (s *suspender) awaitEvtchn(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		p, err := s.ev.Wait(ctx)
		if err != nil {
			return err
		}
		if err := s.ev.Unmask(p); err != nil {
			return fmt.Errorf("unmasking port %d: %w", p, err)
		}
		if p == s.localPort {
			return nil
		}
	}
}

func (s *suspender) close() error {
	var err error
	if s.ev != nil {
		err = errors.Join(err, s.ev.Close())
		s.ev = nil
	}
	if s.lock != nil {
		err = errors.Join(err, s.lock.release())
		s.lock = nil
	}
	return err
}

func (s *suspender) node(rel string) string { return s.domPath + "/" + rel }

// readNode reads a node; ok is false when it does not exist.
func (s *suspender) readNode(ctx context.Context, rel string) (string, bool, error) {
	v, err := s.c.xs.Read(ctx, s.node(rel))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading %s: %w", s.node(rel), err)
	}
	return strings.TrimRight(string(v), "\x00"), true, nil
}

// readUint reads a decimal node like xs_suspend_evtchn_port: absent, empty
// or unparsable means "not there".
func (s *suspender) readUint(ctx context.Context, rel string) (uint32, bool, error) {
	v, ok, err := s.readNode(ctx, rel)
	if err != nil || !ok {
		return 0, false, err
	}
	n, perr := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	if perr != nil {
		return 0, false, nil
	}
	return uint32(n), true, nil
}

// checkState fails unless the domain is running normally.
func (s *suspender) checkState(ctx context.Context) (domctl.DomainInfo, error) {
	info, err := s.c.hv.DomainInfo(ctx, s.dom)
	if isGone(err) {
		return info, fmt.Errorf("%w: %w", ErrDomainGone, err)
	}
	if err != nil {
		return info, fmt.Errorf("getting domain info: %w", err)
	}
	if info.Dying() {
		return info, ErrDomainGone
	}
	if info.Suspended() {
		return info, ErrAlreadySuspended
	}
	if info.Shutdown() {
		return info, &ShutdownError{Domain: s.dom, Reason: info.ShutdownReason()}
	}
	return info, nil
}

// suspendVia is how a guest is asked to suspend.
type suspendVia int

const (
	viaXenstore suspendVia = iota // control/shutdown = "suspend"
	viaEvtchn                     // the guest's suspend event channel
	viaRemote                     // SCHEDOP_remote_shutdown: HVM without PV drivers
)

func (v suspendVia) String() string {
	return [...]string{"xenstore", "event channel", "remote shutdown"}[v]
}

// HVM_PARAM_ACPI_S_STATE: the ACPI sleep state of an HVM guest (0 = S0).
const hvmParamACPISState = abi.HVM_PARAM_ACPI_S_STATE

// via chooses the mechanism as libxl's domain_suspend_callback_common does,
// on every suspend (the guest's state may change between epochs): the
// suspend event channel when the guest has one and is not in an ACPI sleep
// state; for a guest libxl calls HVM (not PVH) without PV drivers
// (HVM_PARAM_CALLBACK_IRQ 0) or asleep (HVM_PARAM_ACPI_S_STATE not 0), a
// remote shutdown, which needs nothing from the guest; else xenstore.
func (s *suspender) via(ctx context.Context, info domctl.DomainInfo) (suspendVia, error) {
	var pvDrivers, sleep uint64
	if info.HVM() {
		var err error
		if pvDrivers, err = s.c.hvmParam(ctx, s.dom, abi.HVM_PARAM_CALLBACK_IRQ); err != nil {
			return 0, err
		}
		if sleep, err = s.c.hvmParam(ctx, s.dom, hvmParamACPISState); err != nil {
			return 0, err
		}
	}
	switch {
	case sleep == 0 && s.ev != nil:
		return viaEvtchn, nil
	case info.HVM() && (pvDrivers == 0 || sleep != 0) && s.c.domainType(ctx, s.dom, info) == "hvm":
		return viaRemote, nil
	}
	return viaXenstore, nil
}

// hvmParam reads an HVM parameter, a missing domain as ErrDomainGone.
func (c *Controller) hvmParam(ctx context.Context, dom domctl.DomID, idx uint32) (uint64, error) {
	v, err := c.hv.HVMParam(ctx, dom, idx)
	if err != nil {
		return 0, domErr(fmt.Sprintf("getting HVM param %d", idx), err)
	}
	return v, nil
}

// domErr wraps the error of an operation on the domain; a missing domain
// also matches ErrDomainGone.
func domErr(what string, err error) error {
	if isGone(err) {
		return fmt.Errorf("%s: %w: %w", what, ErrDomainGone, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// noSuspendCall reports an HVM guest whose suspend leaves no return value
// to set: one without PV drivers (HVM_PARAM_CALLBACK_IRQ 0: libxc's
// modify_returncode leaves it alone, and an HVM one was suspended by
// remote shutdown, not by a hypercall) or one in an ACPI sleep state
// (HVM_PARAM_ACPI_S_STATE not 0: suspended by remote shutdown while its
// vCPUs sleep, rax holding the guest's own value). Cancelling its suspend
// is resumedomain alone, with no convention to follow.
//
// A PVH guest is never one of them: it has no device model, so it can only
// be suspended by asking it (via never picks remote shutdown for it), and
// a Linux that takes its events on per-vCPU upcall vectors may leave
// HVM_PARAM_CALLBACK_IRQ at 0 while sitting in its suspend hypercall.
func (c *Controller) noSuspendCall(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo) (bool, error) {
	if !info.HVM() || c.domainType(ctx, dom, info) == "pvh" {
		return false, nil
	}
	irq, err := c.hvmParam(ctx, dom, abi.HVM_PARAM_CALLBACK_IRQ)
	if err != nil || irq == 0 {
		return err == nil, err
	}
	sleep, err := c.hvmParam(ctx, dom, hvmParamACPISState)
	return err == nil && sleep != 0, err
}

// domainType is libxl's domain type: "pv", or for an HVM container what
// libxl recorded in /libxl/<domid>/type ("pvh" or "hvm"; "hvm" without
// it), as libxl__domain_type reads it.
func (c *Controller) domainType(ctx context.Context, dom domctl.DomID, info domctl.DomainInfo) string {
	if !info.HVM() {
		return "pv"
	}
	if v, err := c.xs.Read(ctx, fmt.Sprintf("/libxl/%d/type", dom)); err == nil && strings.TrimRight(string(v), "\x00") == "pvh" {
		return "pvh"
	}
	return "hvm"
}

// suspend asks the guest to suspend and waits until the domain is shut down
// with SHUTDOWN_suspend. On every error return the guest was either never
// asked, had its request withdrawn, or is not suspended: it is not left
// suspended (if ctx ends or a wait times out once the request can no
// longer be withdrawn, a guard goroutine resumes it should it still
// suspend; see guard).
func (s *suspender) suspend(ctx context.Context, resume func(context.Context) error) error {
	info, err := s.checkState(ctx)
	if err != nil {
		return err
	}
	via, err := s.via(ctx, info)
	if err != nil {
		return err
	}
	if err := s.c.cfg.Hooks.PreSuspend(ctx, s.dom); err != nil {
		return fmt.Errorf("pre-suspend hook: %w", err)
	}
	switch via {
	case viaEvtchn:
		err = s.suspendEvtchn(ctx)
	case viaRemote:
		err = s.suspendRemote(ctx)
	default:
		err = s.suspendXenstore(ctx)
	}
	if err != nil {
		var late *mayStillSuspend
		switch {
		case errors.Is(err, errAckedThenCancelled):
			return s.settleAfterCancel(ctx, resume)
		case errors.As(err, &late):
			s.guard(ctx, resume)
			return late.err
		}
		return err
	}
	if err := s.c.cfg.Hooks.PostSuspend(ctx, s.dom); err != nil {
		rerr := resume(context.WithoutCancel(ctx))
		return errors.Join(fmt.Errorf("post-suspend hook: %w", err), rerr)
	}
	return nil
}

// errAckedThenCancelled: ctx ended after the guest had committed to
// suspending.
var errAckedThenCancelled = errors.New("cancelled after acknowledgement")

// mayStillSuspend wraps the error of a wait that ran out after the request
// could no longer be withdrawn (acknowledged, notified on the event
// channel, or a remote shutdown issued): the domain may still suspend.
type mayStillSuspend struct{ err error }

func (e *mayStillSuspend) Error() string { return e.err.Error() }
func (e *mayStillSuspend) Unwrap() error { return e.err }

// settleAfterCancel handles a ctx cancelled after the guest acknowledged
// (or was notified on its event channel): it may still suspend on its own,
// and then nobody would resume it. The call returns ctx's error at once; a
// guard goroutine keeps the domain busy and watches it for up to
// SuspendTimeout, resuming it if it does suspend.
func (s *suspender) settleAfterCancel(ctx context.Context, resume func(context.Context) error) error {
	s.guard(ctx, resume)
	return ctx.Err()
}

// guard starts the late-suspend guard: a goroutine that keeps the domain
// busy and watches it for up to SuspendTimeout, resuming it if it
// suspends after the operation gave up waiting.
func (s *suspender) guard(ctx context.Context, resume func(context.Context) error) {
	c, dom := s.c, s.dom
	c.mu.Lock()
	done := c.hold(dom)
	c.mu.Unlock()
	bg := context.WithoutCancel(ctx)
	c.guardStarted()
	go func() {
		defer c.guardDone()
		defer done()
		deadline := time.Now().Add(c.cfg.SuspendTimeout)
		for time.Now().Before(deadline) {
			ok, err := s.checkSuspended(bg)
			if err != nil {
				c.log.DebugContext(bg, "late-suspend guard stops", "domain", dom, "error", err)
				return
			}
			if ok {
				if err := resume(bg); err != nil {
					c.log.ErrorContext(bg, "resuming a guest that suspended after cancellation", "domain", dom, "error", err)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
}

func (s *suspender) suspendXenstore(ctx context.Context) error {
	feat, ok, err := s.readNode(ctx, nodeFeatureSuspend)
	if err != nil {
		return err
	}
	// libxl creates control/feature-suspend empty and a guest writes "1"
	// when it boots; a guest restored or migrated by xl finds the node
	// re-created empty and does not write it again. Empty is "unknown",
	// like a missing node: only an explicit other value refuses.
	known := ok && feat != ""
	if (known && feat != "1") || (!known && s.c.cfg.RequireFeatureSuspend) {
		return fmt.Errorf("%w (control/feature-suspend=%q)", ErrSuspendUnsupported, feat)
	}
	// Watch before writing, so neither the acknowledgement nor the
	// shutdown can slip between the write and the watch.
	ackW, err := s.c.xs.Watch(ctx, s.node(nodeShutdown))
	if err != nil {
		return fmt.Errorf("watching %s: %w", s.node(nodeShutdown), err)
	}
	defer ackW.Close()
	relW, err := s.c.xs.Watch(ctx, releaseDomainWatch)
	if err != nil {
		return fmt.Errorf("watching %s: %w", releaseDomainWatch, err)
	}
	defer relW.Close()

	if err := s.c.xs.Write(ctx, s.node(nodeShutdown), []byte("suspend")); err != nil {
		err = fmt.Errorf("writing %s: %w", s.node(nodeShutdown), err)
		if ctx.Err() != nil {
			// The request may have reached xenstored before ctx ended
			// (a cancelled call only stops the wait): withdraw it, or,
			// if it is no longer there, guard against a late suspend.
			return s.withdraw(ctx, err)
		}
		return err
	}
	s.c.log.DebugContext(ctx, "requested suspend", "domain", s.dom)
	if err := s.waitAck(ctx, ackW.Events(), relW.Events()); err != nil {
		return err
	}
	s.c.log.DebugContext(ctx, "guest acknowledged suspend", "domain", s.dom)
	return committedWait(ctx, s.waitSuspended(ctx, relW.Events(), nil))
}

// committedWait classifies the result of a wait for SHUTDOWN_suspend made
// after the request could no longer be withdrawn: ctx's end and a timeout
// both leave a domain that may still suspend.
func committedWait(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return errAckedThenCancelled
	case errors.Is(err, ErrNotSuspended):
		return &mayStillSuspend{err}
	}
	return err
}

// acked reports whether control/shutdown no longer holds our request.
func acked(v []byte, err error) (bool, error) {
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return strings.TrimRight(string(v), "\x00") != "suspend", nil
}

// waitAck waits for the acknowledgement. On timeout or ctx end the request
// is withdrawn in a transaction, unless the guest acknowledged at the last
// moment, which wins (libxl domain_suspend_common_pvcontrol_suspending).
//
// released carries @releaseDomain: a domain destroyed or shut down for
// another reason while the request is pending ends the wait with
// ErrDomainGone or a *ShutdownError (the request withdrawn) instead of
// ErrNotAcknowledged after AckTimeout; one already suspended counts as an
// acknowledgement.
func (s *suspender) waitAck(ctx context.Context, events, released <-chan xenstore.Event) error {
	timer := time.NewTimer(s.c.cfg.AckTimeout)
	defer timer.Stop()
	path := s.node(nodeShutdown)
	for {
		ok, err := acked(s.c.xs.Read(ctx, path))
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if ok {
			return nil
		}
		select {
		case _, open := <-events:
			if !open {
				if ctx.Err() != nil {
					return s.withdraw(ctx, ctx.Err())
				}
				return s.withdraw(ctx, fmt.Errorf("watch on %s closed", path))
			}
		case _, open := <-released:
			if !open {
				released = nil
				continue
			}
			done, err := s.checkSuspended(ctx)
			if err != nil && ctx.Err() == nil {
				return s.withdraw(ctx, err)
			}
			if done && err == nil {
				return nil
			}
		case <-timer.C:
			return s.withdraw(ctx, ErrNotAcknowledged)
		case <-ctx.Done():
			return s.withdraw(ctx, ctx.Err())
		}
	}
}

func (s *suspender) withdraw(ctx context.Context, cause error) error {
	path := s.node(nodeShutdown)
	bg := context.WithoutCancel(ctx)
	var late bool
	err := s.c.xs.Transaction(bg, func(tx *xenstore.Tx) error {
		ok, err := acked(tx.Read(bg, path))
		if err != nil {
			return err
		}
		if late = ok; late {
			return nil
		}
		return tx.Write(bg, path, []byte(""))
	})
	if err != nil {
		return errors.Join(cause, fmt.Errorf("withdrawing suspend request: %w", err))
	}
	if late {
		if ctx.Err() != nil {
			return errAckedThenCancelled
		}
		s.c.log.DebugContext(ctx, "guest acknowledged at the last moment", "domain", s.dom)
		return nil
	}
	s.c.log.InfoContext(ctx, "guest did not acknowledge suspend, request withdrawn", "domain", s.dom)
	return cause
}

// suspendEvtchn notifies the guest's suspend event channel and waits for
// SHUTDOWN_suspend, re-checking getdomaininfo on every notification back
// and on every @releaseDomain: Xen signals a suspend on the subscribed
// channel, but a crash, another shutdown or the domain's destruction only
// through VIRQ_DOM_EXC, which xenstored turns into @releaseDomain.
func (s *suspender) suspendEvtchn(ctx context.Context) error {
	relW, err := s.c.xs.Watch(ctx, releaseDomainWatch)
	if err != nil {
		return fmt.Errorf("watching %s: %w", releaseDomainWatch, err)
	}
	defer relW.Close()
	if err := s.ev.Notify(s.localPort); err != nil {
		return domErr("notifying suspend event channel", err)
	}
	s.c.log.DebugContext(ctx, "notified suspend event channel", "domain", s.dom)
	fired := make(chan struct{}, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(fired)
		for s.awaitEvtchn(wctx, s.c.cfg.SuspendTimeout) == nil {
			select {
			case fired <- struct{}{}:
			case <-wctx.Done():
				return
			}
		}
	}()
	err = s.waitSuspended(ctx, relW.Events(), fired)
	cancel()
	for range fired { // wait for the goroutine before the port is reused
	}
	// The notification is delivered: the guest may still suspend.
	return committedWait(ctx, err)
}

// suspendRemote suspends an HVM guest without PV drivers with
// SCHEDOP_remote_shutdown(SHUTDOWN_suspend), as libxl does: the guest is
// not asked and does not acknowledge; Xen pauses its vCPUs and fires
// @releaseDomain, and the wait is the same as after an acknowledgement.
func (s *suspender) suspendRemote(ctx context.Context) error {
	relW, err := s.c.xs.Watch(ctx, releaseDomainWatch)
	if err != nil {
		return fmt.Errorf("watching %s: %w", releaseDomainWatch, err)
	}
	defer relW.Close()
	if err := s.c.hv.RemoteShutdown(ctx, s.dom, domctl.ShutdownSuspend); err != nil {
		return domErr("remote shutdown for suspend", err)
	}
	s.c.log.DebugContext(ctx, "suspended by remote shutdown (no PV drivers)", "domain", s.dom)
	return committedWait(ctx, s.waitSuspended(ctx, relW.Events(), nil))
}

// waitSuspended waits until the domain reaches SHUTDOWN_suspend,
// re-checking getdomaininfo on every @releaseDomain event (events) or
// suspend event-channel notification (fired).
func (s *suspender) waitSuspended(ctx context.Context, events <-chan xenstore.Event, fired <-chan struct{}) error {
	timer := time.NewTimer(s.c.cfg.SuspendTimeout)
	defer timer.Stop()
	for {
		done, err := s.checkSuspended(ctx)
		if done || err != nil {
			return err
		}
		select {
		case _, open := <-events:
			if !open {
				events = nil
			}
		case _, open := <-fired:
			if !open {
				fired = nil
			}
		case <-timer.C:
			if done, err := s.checkSuspended(ctx); done || err != nil {
				return err
			}
			return ErrNotSuspended
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *suspender) checkSuspended(ctx context.Context) (bool, error) {
	info, err := s.c.hv.DomainInfo(ctx, s.dom)
	switch {
	case isGone(err):
		return true, fmt.Errorf("%w: %w", ErrDomainGone, err)
	case err != nil:
		return true, fmt.Errorf("getting domain info: %w", err)
	case info.Dying():
		return true, ErrDomainGone
	case !info.Shutdown():
		return false, nil
	case info.ShutdownReason() != domctl.ShutdownSuspend:
		return true, &ShutdownError{Domain: s.dom, Reason: info.ShutdownReason()}
	}
	return true, nil
}
