package checkpoint

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/xenckpt/xenckpt/domctl"
)

// Default timeouts, the values libxl uses (XEN-NOTES §2.2).
const (
	DefaultAckTimeout     = 60 * time.Second
	DefaultSuspendTimeout = 60 * time.Second
	DefaultLockDir        = "/var/run/xen"
)

// Config configures a Controller. The zero value (or nil) means the
// documented defaults.
type Config struct {
	// AckTimeout bounds the wait for the guest to acknowledge
	// control/shutdown="suspend". Zero means DefaultAckTimeout.
	AckTimeout time.Duration
	// SuspendTimeout bounds the wait, after the acknowledgement (or the
	// suspend event-channel notification), for the domain to reach
	// SHUTDOWN_suspend. Zero means DefaultSuspendTimeout.
	SuspendTimeout time.Duration
	// LockDir holds the suspend event-channel lock files
	// (suspend-evtchn-<domid>.lock, as libxenguest names them). Empty
	// means DefaultLockDir; tests point it at a temporary directory.
	LockDir string
	// RequireFeatureSuspend refuses to suspend a guest that does not
	// advertise control/feature-suspend="1". When false (the default) only
	// an explicit value other than "1" is refused: a missing or empty node
	// (libxl creates it empty; a guest restored by xl does not rewrite it)
	// counts as unknown, so such guests and those older than the node work.
	RequireFeatureSuspend bool
	// Hooks are called around suspend and resume. Nil means NopHooks.
	Hooks Hooks
	// Logger receives debug and info records. Nil discards them.
	Logger *slog.Logger
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.AckTimeout <= 0 {
		out.AckTimeout = DefaultAckTimeout
	}
	if out.SuspendTimeout <= 0 {
		out.SuspendTimeout = DefaultSuspendTimeout
	}
	if out.LockDir == "" {
		out.LockDir = DefaultLockDir
	}
	if out.Hooks == nil {
		out.Hooks = NopHooks{}
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out
}

// Controller runs suspend, checkpoint, save, restore, migration and Remus
// operations against one hypervisor connection and one xenstore client.
//
// A Controller is safe for concurrent use. Operations on different domains
// run in parallel; a second operation on a domain that already has one in
// progress fails at once with ErrBusy instead of interleaving.
type Controller struct {
	hv  Hypervisor
	xs  Store
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	busy map[domctl.DomID]int // operations and late-suspend guards per domain

	// Late-suspend guards still running, and a channel closed when the
	// count drops to zero (Wait). Both under mu. Not a sync.WaitGroup: a
	// guard may start while an abandoned Wait still waits.
	guards     int
	guardsIdle chan struct{}
}

// Wait blocks until every late-suspend guard of this Controller has
// finished, or ctx ends. A guard runs after an operation was cancelled once
// the guest had acknowledged the suspend request (see Concurrency in the
// package doc): it resumes the guest if it still suspends. A program about
// to exit after a cancelled operation should call Wait first, or a guest
// that suspends just after the cancel may be left suspended. A guard lasts
// at most Config.SuspendTimeout.
func (c *Controller) Wait(ctx context.Context) error {
	c.mu.Lock()
	idle := c.guardsIdle
	c.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// guardStarted and guardDone count late-suspend guards for Wait.
func (c *Controller) guardStarted() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.guards++; c.guards == 1 {
		c.guardsIdle = make(chan struct{})
	}
}

func (c *Controller) guardDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.guards--; c.guards == 0 {
		close(c.guardsIdle)
		c.guardsIdle = nil
	}
}

// New returns a Controller using hv and xs. cfg may be nil.
func New(hv Hypervisor, xs Store, cfg *Config) *Controller {
	c := cfg.withDefaults()
	return &Controller{hv: hv, xs: xs, cfg: c, log: c.Logger, busy: make(map[domctl.DomID]int)}
}

// acquire takes the per-domain operation lock.
func (c *Controller) acquire(dom domctl.DomID) (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy[dom] > 0 {
		return nil, ErrBusy
	}
	return c.hold(dom), nil
}

// hold marks dom busy until the returned func is called.
func (c *Controller) hold(dom domctl.DomID) func() {
	c.busy[dom]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.busy[dom]--; c.busy[dom] <= 0 {
				delete(c.busy, dom)
			}
			c.mu.Unlock()
		})
	}
}

// Hooks are called at the edges of an operation. An error from a Pre hook
// aborts the operation (before the guest is touched for PreSuspend; the
// guest is still resumed for PreResume). Embed NopHooks to implement only
// some of them.
type Hooks interface {
	// PreSuspend runs before the guest is asked to suspend.
	PreSuspend(ctx context.Context, dom domctl.DomID) error
	// PostSuspend runs once the domain is in SHUTDOWN_suspend.
	PostSuspend(ctx context.Context, dom domctl.DomID) error
	// PreResume runs before a suspended domain is resumed (cancelled).
	PreResume(ctx context.Context, dom domctl.DomID) error
	// PostRestore runs after a restored domain is built, before it is
	// unpaused.
	PostRestore(ctx context.Context, dom domctl.DomID) error
}

// NopHooks implements Hooks with methods that do nothing.
type NopHooks struct{}

// PreSuspend does nothing.
func (NopHooks) PreSuspend(context.Context, domctl.DomID) error { return nil }

// PostSuspend does nothing.
func (NopHooks) PostSuspend(context.Context, domctl.DomID) error { return nil }

// PreResume does nothing.
func (NopHooks) PreResume(context.Context, domctl.DomID) error { return nil }

// PostRestore does nothing.
func (NopHooks) PostRestore(context.Context, domctl.DomID) error { return nil }

// Phase names the stage a Progress event reports.
type Phase string

// Phases of a save, migration or Remus epoch.
const (
	PhasePrecopy   Phase = "precopy"   // a live round while the guest runs
	PhaseSuspended Phase = "suspended" // the final round, guest suspended
	PhaseResumed   Phase = "resumed"   // the guest runs again (cancel)
	PhaseDone      Phase = "done"      // the image is complete
	PhaseRestore   Phase = "restore"   // pages loaded into a restore target
)

// Progress is one progress event.
type Progress struct {
	Domain domctl.DomID
	Phase  Phase
	// Round is the precopy round (0 = the full first pass).
	Round int
	// Pages and Bytes sent so far in the whole operation.
	Pages uint64
	Bytes uint64
	// RoundPages is the number of pages sent in this round.
	RoundPages uint64
	// DirtyRate is the measured dirty rate in pages per second (live only).
	DirtyRate float64
	// Bandwidth is the measured send rate in bytes per second.
	Bandwidth float64
	// PauseTime is how long the guest has been (or was) suspended.
	PauseTime time.Duration
}
