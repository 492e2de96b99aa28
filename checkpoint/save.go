package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
)

// Result summarises a finished save, checkpoint or migration.
type Result struct {
	Domain domctl.DomID
	// Pages is every pfn entry sent in PAGE_DATA records, all rounds,
	// holes included: as libxc, a save walks every pfn up to the guest's
	// highest, so a PVH guest with frames near 4 GiB counts about a
	// million. DataPages is those that carried data, Bytes their bytes.
	Pages     uint64
	DataPages uint64
	Bytes     uint64
	// Rounds is the number of precopy rounds after the first full pass
	// (live only).
	Rounds int
	// PrecopyStop says why precopy stopped iterating (live only; for
	// Remus, the last epoch's).
	PrecopyStop PrecopyStop
	// PauseTime is how long the guest was suspended: until it was resumed
	// (checkpoint) or until the image was complete (save, migration).
	PauseTime time.Duration
	// Convention is how the guest was resumed, when it was.
	Convention magic.Convention
}

// session is one save-like operation on one domain.
type session struct {
	c    *Controller
	dom  domctl.DomID
	op   string
	o    SaveOptions
	sh   guestShape
	info domctl.DomainInfo
	susp *suspender
	mem  *memCopier
	sink imageSink

	logDirty  bool
	suspended bool
	suspendAt time.Time
	res       Result
}

func (c *Controller) newSession(ctx context.Context, op string, dom domctl.DomID, opts *SaveOptions) (*session, error) {
	s := &session{c: c, dom: dom, op: op, o: opts.withDefaults(), res: Result{Domain: dom}}
	var err error
	if s.info, err = c.hv.DomainInfo(ctx, dom); err != nil {
		if isGone(err) {
			return nil, fmt.Errorf("%w: %w", ErrDomainGone, err)
		}
		return nil, fmt.Errorf("getting domain info: %w", err)
	}
	if s.sh, err = c.shape(ctx, dom); err != nil {
		return nil, err
	}
	if op == OpCheckpoint || op == OpRemus {
		if err := c.preflightCancel(ctx, dom, s.info, &s.o.Resume); err != nil {
			return nil, err
		}
	}
	if s.susp, err = c.newSuspender(ctx, dom); err != nil {
		return nil, err
	}
	return s, nil
}

// open starts the image on w.
func (s *session) open(ctx context.Context, w io.Writer) error {
	name, _, err := s.susp.readNode(ctx, "name")
	if err != nil {
		name = ""
	}
	cfg, err := configJSON(s.o.XLConfig, s.sh, s.info.Handle, name)
	if err != nil {
		return err
	}
	sink, err := newStreamSink(w, s.sh, cfg)
	if err != nil {
		return err
	}
	s.sink = sink
	s.mem = newMemCopier(s.c.hv, s.dom, sink)
	if !s.sh.HVM {
		return s.openPV(ctx, sink)
	}
	return nil
}

// resumeGuest cancels the suspend (forced: never leaves it suspended). The
// convention negotiated on the first resume is reused for later epochs:
// it cannot change while the guest runs, and the evidence costs several
// round trips while the guest is paused.
func (s *session) resumeGuest(ctx context.Context) error {
	o := s.o.Resume
	if s.res.Convention != 0 {
		o.Convention, o.Force = s.res.Convention, true
	}
	conv, err := s.c.resume(ctx, s.dom, &o, true)
	s.res.Convention = conv
	if err == nil || errors.Is(err, ErrNotCancellable) {
		s.suspended = false
		s.res.PauseTime = time.Since(s.suspendAt)
		s.o.emit(Progress{Domain: s.dom, Phase: PhaseResumed, Pages: s.mem.pages, Bytes: s.mem.bytes, PauseTime: s.res.PauseTime})
	}
	return err
}

// close undoes what the session holds: a suspended guest is resumed,
// log-dirty turned off, the suspend channel released. cause is the error
// the operation failed with (nil on success); cleanup errors are collected
// with it.
func (s *session) close(ctx context.Context, cause error) error {
	bg := context.WithoutCancel(ctx)
	var merr *multierror.Error
	if cause != nil {
		merr = multierror.Append(merr, cause)
	}
	if s.suspended {
		if err := s.resumeGuest(bg); err != nil {
			merr = multierror.Append(merr, fmt.Errorf("resuming guest after failure: %w", err))
		}
	}
	if s.logDirty {
		if err := s.c.hv.DisableLogDirty(bg, s.dom); err != nil && !isGone(err) {
			merr = multierror.Append(merr, fmt.Errorf("disabling log-dirty: %w", err))
		}
		s.logDirty = false
	}
	if s.susp != nil {
		if err := s.susp.close(); err != nil {
			merr = multierror.Append(merr, fmt.Errorf("releasing suspend event channel: %w", err))
		}
	}
	return merr.ErrorOrNil()
}

// precopy turns log-dirty on and runs the live rounds; it returns the set
// the final round must add.
//
// A PV guest whose hypervisor has no log-dirty mode for it (Xen built
// without shadow paging, as Debian's) is copied non-live instead: nil
// pending, log-dirty off.
func (s *session) precopy(ctx context.Context) ([]uint64, error) {
	if err := s.c.hv.EnableLogDirty(ctx, s.dom); err != nil {
		if !s.sh.HVM && !isGone(err) {
			s.c.log.WarnContext(ctx, "no log-dirty mode for this PV guest: copying it suspended (non-live)",
				"domain", s.dom, "error", err)
			return nil, nil
		}
		return nil, fmt.Errorf("enabling log-dirty: %w", err)
	}
	s.logDirty = true
	return s.c.precopy(ctx, &s.o, s.mem, s.sh, &s.res)
}

// suspend suspends the guest and records when.
func (s *session) suspend(ctx context.Context) error {
	if err := s.susp.suspend(ctx, func(ctx context.Context) error {
		_, err := s.c.resume(ctx, s.dom, &s.o.Resume, true)
		return err
	}); err != nil {
		return fmt.Errorf("suspending: %w", err)
	}
	s.suspended, s.suspendAt = true, time.Now()
	return nil
}

// final sends what remains with the guest suspended: the dirty set (live)
// or all of memory, then the register state. checkpointed streams end the
// checkpoint; plain ones end the stream.
func (s *session) final(ctx context.Context, pending []uint64, checkpointed bool) error {
	p0 := s.mem.pages
	s.mem.final = true
	if s.logDirty {
		bitmap := make([]uint64, len(pending))
		if len(bitmap) == 0 {
			bitmap = make([]uint64, (s.sh.MaxGPFN+1+63)/64)
		}
		if _, err := s.c.hv.CleanDirty(ctx, s.dom, bitmap, true); err != nil {
			return fmt.Errorf("collecting final dirty bitmap: %w", err)
		}
		for i := range pending {
			bitmap[i] |= pending[i]
		}
		s.mem.addRetries(bitmap)
		if err := s.mem.sendBitmap(ctx, bitmap); err != nil {
			return err
		}
	} else {
		if err := s.mem.sendRange(ctx, s.sh.MaxGPFN+1); err != nil {
			return err
		}
	}
	st, err := s.c.captureState(ctx, s.dom, s.sh)
	if err != nil {
		return err
	}
	if s.mem.pv != nil {
		if err := s.mem.pv.checkGeneration(st.SharedInfo); err != nil {
			return err
		}
		for _, v := range st.VCPUs {
			if err := s.mem.pv.normaliseVCPU(v.ID, v.Ctx); err != nil {
				return err
			}
		}
	}
	if err := s.sink.state(st); err != nil {
		return fmt.Errorf("writing domain state: %w", err)
	}
	if checkpointed {
		err = s.sink.checkpoint()
	} else {
		err = s.sink.end()
	}
	if err != nil {
		return fmt.Errorf("ending image: %w", err)
	}
	s.res.Pages, s.res.DataPages, s.res.Bytes = s.mem.pages, s.mem.dataPages, s.mem.bytes
	s.o.emit(Progress{Domain: s.dom, Phase: PhaseSuspended, Round: s.res.Rounds, Pages: s.mem.pages,
		Bytes: s.mem.bytes, RoundPages: s.mem.pages - p0, PauseTime: time.Since(s.suspendAt)})
	return nil
}

// image runs the whole image-producing part of a save-like operation:
// precopy (live), suspend, final round. On return without error the guest
// is suspended.
func (s *session) image(ctx context.Context, w io.Writer) error {
	if err := s.open(ctx, w); err != nil {
		return err
	}
	var pending []uint64
	if s.o.Live {
		var err error
		if pending, err = s.precopy(ctx); err != nil {
			return err
		}
	}
	if err := s.suspend(ctx); err != nil {
		return err
	}
	return s.final(ctx, pending, false)
}

// run is the frame of every save-like operation: the per-domain lock, a
// session, body, and the session's cleanup (which resumes a guest left
// suspended by a failure), then the final progress event.
func (c *Controller) run(ctx context.Context, op string, dom domctl.DomID, opts *SaveOptions, body func(*session) error) (*session, error) {
	release, err := c.acquire(dom)
	if err != nil {
		return nil, newOpError(op, dom, err)
	}
	defer release()
	s, err := c.newSession(ctx, op, dom, opts)
	if err != nil {
		return nil, newOpError(op, dom, err)
	}
	if err := s.close(ctx, body(s)); err != nil {
		return s, newOpError(op, dom, err)
	}
	s.o.emit(Progress{Domain: dom, Phase: PhaseDone, Pages: s.res.Pages, Bytes: s.res.Bytes, PauseTime: s.res.PauseTime})
	return s, nil
}

// Checkpoint writes an image of the running domain dom to w and lets the
// guest continue in the same domain (the suspend is cancelled with the
// guest's convention, see ResumeOptions). With opts.Live the guest is
// suspended only for the final round.
//
// On any failure the guest is resumed too, and the error carries the
// cause together with any failure of that cleanup. A guest that turns out
// to have no cancel convention (it must be suspended before its start_info
// can be read) while opts.Resume.SlowResume is false gives
// ErrNotCancellable; it is brought back with the slow resume all the same,
// since it must not stay suspended.
func (c *Controller) Checkpoint(ctx context.Context, dom domctl.DomID, w io.Writer, opts *SaveOptions) (*Result, error) {
	s, err := c.run(ctx, OpCheckpoint, dom, opts, func(s *session) error {
		if err := s.image(ctx, w); err != nil {
			return err
		}
		err := s.resumeGuest(context.WithoutCancel(ctx))
		if err != nil && !errors.Is(err, ErrNotCancellable) {
			s.suspended = false // resumeGuest failed: do not try twice
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &s.res, nil
}

// syncer is implemented by *os.File.
type syncer interface{ Sync() error }

// Save writes an image of dom to w and, once the whole image is written
// (and synced, when w has a Sync method like *os.File), destroys the
// domain. On any failure before that point the guest is resumed and keeps
// running.
func (c *Controller) Save(ctx context.Context, dom domctl.DomID, w io.Writer, opts *SaveOptions) (*Result, error) {
	s, err := c.run(ctx, OpSave, dom, opts, func(s *session) error {
		if err := s.image(ctx, w); err != nil {
			return err
		}
		if f, ok := w.(syncer); ok {
			if err := f.Sync(); err != nil {
				return fmt.Errorf("syncing image: %w", err)
			}
		}
		if err := ctx.Err(); err != nil {
			return err // last chance to back out
		}
		s.res.PauseTime = time.Since(s.suspendAt)
		bg := context.WithoutCancel(ctx)
		if err := c.hv.DestroyDomain(bg, dom); err != nil {
			return fmt.Errorf("destroying saved domain: %w", err)
		}
		s.suspended = false
		c.forget(bg, dom, s.susp.domPath)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &s.res, nil
}

// Suspend asks dom to suspend and waits until it is shut down with
// SHUTDOWN_suspend. It is the first half of a manual checkpoint; Resume is
// the second. On error the guest is not left suspended.
func (c *Controller) Suspend(ctx context.Context, dom domctl.DomID) error {
	release, err := c.acquire(dom)
	if err != nil {
		return newOpError(OpSuspend, dom, err)
	}
	defer release()
	s, err := c.newSuspender(ctx, dom)
	if err != nil {
		return newOpError(OpSuspend, dom, err)
	}
	err = s.suspend(ctx, func(ctx context.Context) error {
		_, err := c.resume(ctx, dom, &ResumeOptions{SlowResume: true}, true)
		return err
	})
	return newOpError(OpSuspend, dom, errors.Join(err, s.close()))
}

// forget removes a destroyed domain's xenstore directory, as libxl does;
// failures are logged only (the domain is gone either way).
func (c *Controller) forget(ctx context.Context, dom domctl.DomID, path string) {
	if err := c.xs.Remove(ctx, path); err != nil {
		c.log.DebugContext(ctx, "removing xenstore directory of destroyed domain", "domain", dom, "error", err)
	}
}
