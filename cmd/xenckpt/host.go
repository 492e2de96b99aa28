package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xensim"
	"github.com/xenckpt/xenckpt/xenstore"
)

// simFlags are the flags every domain command takes to run on an
// in-process simulated host instead of this machine's Xen.
type simFlags struct {
	sim       bool
	guestType string
	guestConv string
	guestMiB  int
	dirtyRate int
	evtchn    bool
	behaviour string
}

func (s *simFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&s.sim, "sim", false, "run on an in-process simulated Xen host with a freshly booted guest (no DOMID)")
	f.StringVar(&s.guestType, "guest-type", "pv", "with --sim: guest type pv, pv32 or pvh")
	f.StringVar(&s.guestConv, "guest-convention", "seed", "with --sim: the guest kernel's cancel convention: seed, linux or legacy")
	f.IntVar(&s.guestMiB, "guest-mem", 16, "with --sim: guest memory in MiB")
	f.IntVar(&s.dirtyRate, "guest-dirty-rate", 0, "with --sim: pages per second the guest dirties")
	f.BoolVar(&s.evtchn, "guest-evtchn", false, "with --sim: the guest offers a suspend event channel")
	f.StringVar(&s.behaviour, "guest-behaviour", "normal", "with --sim: how the guest answers a suspend: normal, never-ack, ack-only, crash")
}

// guestConfig turns the flags into a simulated guest's config.
func (s *simFlags) guestConfig() (xensim.GuestConfig, error) {
	var g xensim.GuestConfig
	switch s.guestType {
	case "pv", "pv64":
		g.Kind = xensim.PV64
	case "pv32":
		g.Kind = xensim.PV32
	case "pvh", "hvm":
		g.Kind = xensim.PVH
	default:
		return g, usageErrorf("unknown --guest-type %q (pv, pv32 or pvh)", s.guestType)
	}
	switch s.guestConv {
	case "seed":
		g.Convention = xensim.ConventionSeed
	case "linux", "upstream":
		g.Convention = xensim.ConventionLinux
	case "legacy", "none":
		g.Convention = xensim.ConventionLegacy
	default:
		return g, usageErrorf("unknown --guest-convention %q (seed, linux or legacy)", s.guestConv)
	}
	switch s.behaviour {
	case "normal":
		g.Behaviour = xensim.Normal
	case "never-ack":
		g.Behaviour = xensim.NeverAcknowledge
	case "ack-only":
		g.Behaviour = xensim.AcknowledgeOnly
	case "crash":
		g.Behaviour = xensim.CrashOnSuspend
	default:
		return g, usageErrorf("unknown --guest-behaviour %q", s.behaviour)
	}
	if s.guestMiB < 1 {
		return g, usageErrorf("--guest-mem must be at least 1 (MiB)")
	}
	g.Pages = uint64(s.guestMiB) << 20 / xensim.PageSize
	g.DirtyRate = s.dirtyRate
	g.SuspendEventChannel = s.evtchn
	return g, nil
}

// resumeFlags say how a suspended guest is resumed (cancelled).
type resumeFlags struct {
	convention string
	kernel     string
	slowResume bool
}

func (r *resumeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&r.convention, "convention", "", "cancel convention override: seed (cancel writes 0) or upstream (writes 1); empty negotiates")
	f.StringVar(&r.kernel, "kernel", "", "the guest's kernel image: its XEN_ELFNOTE_SUSPEND_CANCEL note selects the upstream convention")
	f.BoolVar(&r.slowResume, "slow-resume", false, "allow the slow resume (guest reconnects as after a restore) for PV guests with no cancel convention (never for HVM/PVH guests: they would crash)")
}

// options builds checkpoint.ResumeOptions.
func (r *resumeFlags) options(ctx context.Context, sf *simFlags) (checkpoint.ResumeOptions, error) {
	o := checkpoint.ResumeOptions{SlowResume: r.slowResume}
	switch r.convention {
	case "":
	case "seed":
		o.Convention = magic.ConventionSeed
	case "upstream", "linux":
		o.Convention = magic.ConventionUpstream
	default:
		return o, usageErrorf("unknown --convention %q (seed or upstream)", r.convention)
	}
	if r.kernel != "" {
		f, err := os.Open(r.kernel)
		if err != nil {
			return o, err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return o, err
		}
		n, err := magic.ReadNotes(ctx, f, fi.Size(), nil)
		if err != nil {
			return o, withCode(exitImage, fmt.Errorf("reading ELF notes of %s: %w", r.kernel, err))
		}
		o.Notes = n
	}
	// A simulated Linux guest's kernel is known to this process: pass its
	// ELF note as a toolstack passes --kernel. (A legacy guest still needs
	// --slow-resume, as on a real host.)
	if sf != nil && sf.sim && o.Convention == 0 && o.Notes == nil && (sf.guestConv == "linux" || sf.guestConv == "upstream") {
		o.Notes = linuxNotes()
	}
	return o, nil
}

// host is a toolstack's view of one Xen host: this dom0, or a simulated
// host living in this process.
type host struct {
	hv  *domctl.Conn
	xs  *xenstore.Client
	ctl *checkpoint.Controller

	sim     *xensim.Host // nil on a real dom0
	lockDir string
	// guardWait bounds how long close waits for late-suspend guards: the
	// suspend timeout and a little more.
	guardWait time.Duration
}

// timeoutFlags are the suspend handshake timeouts.
type timeoutFlags struct {
	ack, suspend time.Duration
}

func (t *timeoutFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.DurationVar(&t.ack, "ack-timeout", checkpoint.DefaultAckTimeout, "how long the guest may take to acknowledge a suspend request")
	f.DurationVar(&t.suspend, "suspend-timeout", checkpoint.DefaultSuspendTimeout, "how long the guest may take to suspend after acknowledging")
}

// openHost connects to this machine's Xen, or boots a simulated host.
func (a *app) openHost(ctx context.Context, sim bool, tf *timeoutFlags) (*host, error) {
	h := &host{}
	cfg := &checkpoint.Config{Logger: a.log}
	if tf != nil {
		cfg.AckTimeout, cfg.SuspendTimeout = tf.ack, tf.suspend
	}
	if sim {
		s, err := xensim.NewHost(nil)
		if err != nil {
			return nil, fmt.Errorf("booting simulated host: %w", err)
		}
		h.sim = s
		if h.hv, err = domctl.NewConn(s.Backend(), nil); err != nil {
			h.close()
			return nil, fmt.Errorf("connecting to simulated hypervisor: %w", err)
		}
		if h.xs, err = s.Store(0); err != nil {
			h.close()
			return nil, fmt.Errorf("connecting to simulated xenstored: %w", err)
		}
		// The simulated host's suspend lock files are its own.
		if h.lockDir, err = os.MkdirTemp("", "xenckpt-sim-lock-"); err != nil {
			h.close()
			return nil, err
		}
		cfg.LockDir = h.lockDir
	} else {
		var err error
		if h.hv, err = domctl.Open(ctx); err != nil {
			return nil, withCode(exitPermission, fmt.Errorf("opening the hypervisor (is this a Xen dom0, running as root?): %w", err))
		}
		if h.xs, err = xenstore.Dial(ctx, nil); err != nil {
			h.close()
			return nil, withCode(exitPermission, fmt.Errorf("connecting to xenstored: %w", err))
		}
	}
	h.ctl = checkpoint.New(h.hv, h.xs, cfg)
	h.guardWait = checkpoint.DefaultSuspendTimeout + 5*time.Second
	if cfg != nil && cfg.SuspendTimeout > 0 {
		h.guardWait = cfg.SuspendTimeout + 5*time.Second
	}
	return h, nil
}

func (h *host) close() error {
	var errs []error
	if h.ctl != nil {
		// A cancelled operation may have left a guard watching a guest
		// that acknowledged the suspend request: let it finish (it resumes
		// the guest if it suspends late) before the connections go. A
		// guard lasts at most the suspend timeout.
		ctx, cancel := context.WithTimeout(context.Background(), h.guardWait)
		if err := h.ctl.Wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("waiting for the guest to settle after a cancel: %w", err))
		}
		cancel()
	}
	if h.xs != nil {
		errs = append(errs, h.xs.Close())
	}
	if h.hv != nil {
		errs = append(errs, h.hv.Close())
	}
	if h.sim != nil {
		errs = append(errs, closeWithin(h.sim, 10*time.Second))
	}
	if h.lockDir != "" {
		errs = append(errs, os.RemoveAll(h.lockDir))
	}
	return errors.Join(errs...)
}

// domainArg resolves the domain a command works on: DOMID on a real host,
// a freshly booted guest with --sim.
func (a *app) domainArg(ctx context.Context, h *host, sf *simFlags, args []string) (domctl.DomID, *xensim.Guest, error) {
	if h.sim != nil {
		gc, err := sf.guestConfig()
		if err != nil {
			return 0, nil, err
		}
		g, err := h.sim.CreateGuest(ctx, gc)
		if err != nil {
			return 0, nil, fmt.Errorf("booting simulated guest: %w", err)
		}
		if err := g.WaitCounter(ctx, 1); err != nil {
			return 0, nil, err
		}
		a.log.Info("simulated guest booted", "domain", g.Domain(), "type", sf.guestType, "convention", sf.guestConv, "pages", gc.Pages)
		return g.Domain(), g, nil
	}
	d, err := parseDomID(args)
	return d, nil, err
}

// parseDomID parses the DOMID argument of a command on a real host.
func parseDomID(args []string) (domctl.DomID, error) {
	if len(args) == 0 {
		return 0, usageErrorf("DOMID is required (or --sim)")
	}
	d, err := strconv.ParseUint(args[0], 10, 16)
	if err != nil || d == 0 || domctl.DomID(d) >= domctl.DomIDFirstReserved {
		return 0, usageErrorf("bad DOMID %q: a guest domain id, 1..%d", args[0], domctl.DomIDFirstReserved-1)
	}
	return domctl.DomID(d), nil
}

// domArgs validates [DOMID] plus extra positional arguments.
func domArgs(sf *simFlags, extra int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if sf.sim {
			return exactArgs(extra, names)(cmd, args)
		}
		want := "DOMID"
		if extra > 0 {
			want += " " + names
		}
		if err := exactArgs(1+extra, want)(cmd, args); err != nil {
			return err
		}
		_, err := parseDomID(args)
		return err
	}
}

// guestRunning reports whether dom exists, is neither paused nor shut
// down, and (on the simulator) its guest still counts.
func (h *host) guestRunning(ctx context.Context, dom domctl.DomID) bool {
	// Asked after the operation, also after Ctrl-C: not bound to ctx.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	info, err := h.hv.DomainInfo(ctx, dom)
	if err != nil || info.Paused() || info.Shutdown() || info.Dying() {
		return false
	}
	if h.sim == nil {
		return true
	}
	g := h.sim.Guest(dom)
	// The kernel may still be returning from its suspend hypercall; a
	// GuestBroken one counts, but its xenstore connection is dead.
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if g.WaitState(sctx, xensim.GuestRunning) != nil {
		return false
	}
	return g.WaitCounter(ctx, g.Counter()) == nil
}

// guestDomains counts the domains other than dom0.
func (h *host) guestDomains() int {
	if h.sim == nil {
		return -1
	}
	n := 0
	for _, d := range h.sim.Domains() {
		if d != 0 {
			n++
		}
	}
	return n
}

// ensureResumed is the command's last line of defence after an operation
// on dom failed or was interrupted: the library resumes a guest it
// suspended, in the background when ctx ended mid-handshake. Wait for that
// (up to grace); should the domain still be suspended then, resume it here
// and say so. It reports whether the command had to resume the guest.
func (a *app) ensureResumed(ctx context.Context, h *host, dom domctl.DomID, ro checkpoint.ResumeOptions, grace time.Duration) bool {
	bg := context.WithoutCancel(ctx)
	deadline := time.Now().Add(grace)
	for {
		info, err := h.hv.DomainInfo(bg, dom)
		if err != nil || !info.Suspended() {
			return false
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(bg, 30*time.Second)
	defer cancel()
	conv, err := h.ctl.Resume(rctx, dom, &ro)
	if err != nil {
		a.log.Error("domain left suspended and could not be resumed", "domain", dom, "err", err)
		return false
	}
	a.log.Warn("domain was left suspended after the failure; resumed it", "domain", dom, "convention", conv)
	return true
}

// closeWithin closes c, giving up after d: a simulated host that does not
// shut down must not hang the command (its memory goes with the process).
func closeWithin(c io.Closer, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("closing the simulated host: still not done after %v", d)
	}
}

// closeHost closes h at the end of a command, logging what fails.
func (a *app) closeHost(h *host) {
	if err := h.close(); err != nil {
		a.log.Warn("closing host", "err", err)
	}
}
