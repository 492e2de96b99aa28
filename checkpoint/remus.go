package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
)

// DefaultRemusInterval is xl's default checkpoint interval.
const DefaultRemusInterval = 200 * time.Millisecond

// RemusOptions configure Remus-style replication.
type RemusOptions struct {
	// Interval is the time the primary runs between checkpoints. Zero
	// means DefaultRemusInterval.
	Interval time.Duration
	// Checkpoints stops replication after this many checkpoints; zero
	// replicates until ctx is done.
	Checkpoints int
	// Save holds the resume convention, the progress callback and, with
	// Save.Live, live precopy for the first checkpoint.
	Save SaveOptions
}

// RemusResult summarises a replication run.
type RemusResult struct {
	Result
	// Checkpoints is the number of complete checkpoints sent.
	Checkpoints int
	// MaxPause is the longest suspension of the primary in one epoch.
	MaxPause time.Duration
}

// Remus replicates dom to w as a checkpointed stream: the first checkpoint
// holds all memory, every following one the pages dirtied since the last
// plus the register state. The primary is suspended only for the copy of
// each epoch and then resumed with its cancel convention.
//
// Remus returns when opts.Checkpoints checkpoints were sent (the stream
// is then ended with END, and a backup discards its copy), or when ctx is
// done or a write fails (the stream is left cut, and a backup fails over
// to the last complete checkpoint). The primary keeps running in every
// case.
func (c *Controller) Remus(ctx context.Context, dom domctl.DomID, w io.Writer, opts *RemusOptions) (*RemusResult, error) {
	var o RemusOptions
	if opts != nil {
		o = *opts
	}
	if o.Interval <= 0 {
		o.Interval = DefaultRemusInterval
	}
	res := &RemusResult{}
	s, err := c.run(ctx, OpRemus, dom, &o.Save, func(s *session) error {
		err := s.remus(ctx, w, &o, res)
		res.Result = s.res
		return err
	})
	if s == nil {
		return nil, err
	}
	return res, err
}

func (s *session) remus(ctx context.Context, w io.Writer, o *RemusOptions, res *RemusResult) error {
	if err := s.open(ctx, w); err != nil {
		return err
	}
	var pending []uint64
	var err error
	if s.o.Live {
		if pending, err = s.precopy(ctx); err != nil {
			return err
		}
	} else {
		if err := s.c.hv.EnableLogDirty(ctx, s.dom); err != nil {
			return fmt.Errorf("enabling log-dirty: %w", err)
		}
		s.logDirty = true
		// The first (suspended) round sends everything.
		pending = make([]uint64, (s.sh.MaxGPFN+1+63)/64)
		for i := range pending {
			pending[i] = ^uint64(0)
		}
		if tail := (s.sh.MaxGPFN + 1) % 64; tail != 0 {
			pending[len(pending)-1] = 1<<tail - 1
		}
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		if err := s.suspend(ctx); err != nil {
			return err
		}
		if err := s.final(ctx, pending, true); err != nil {
			return err
		}
		pending = nil
		if err := s.resumeGuest(context.WithoutCancel(ctx)); err != nil {
			if !errors.Is(err, ErrNotCancellable) {
				s.suspended = false
			}
			return err
		}
		res.Checkpoints++
		res.MaxPause = max(res.MaxPause, s.res.PauseTime)
		if o.Checkpoints > 0 && res.Checkpoints >= o.Checkpoints {
			if err := s.sink.end(); err != nil {
				return fmt.Errorf("ending stream: %w", err)
			}
			return nil
		}
		timer.Reset(o.Interval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// RemusBackup is the backup side of Remus: it reads the checkpointed
// stream from r into a new paused domain, applying only complete
// checkpoints. When the stream breaks (the primary or the link failed) it
// fails over: the domain is completed from the last complete checkpoint,
// connected to xenstore and unpaused (unless opts.Paused), and its id
// returned. When the primary ends the stream cleanly (replication stopped,
// primary alive) the replica is destroyed and RemusBackup returns 0 and a
// nil error. A break before the first complete checkpoint gives
// ErrNoCheckpoint and destroys the replica.
func (c *Controller) RemusBackup(ctx context.Context, r io.Reader, opts *RestoreOptions) (domctl.DomID, error) {
	rs := c.newRestorer(r, opts, stream.CheckpointsBuffered)
	var lastComplete int
	for {
		if err := ctx.Err(); err != nil {
			return 0, newOpError(OpBackup, rs.dom, rs.abort(ctx, err))
		}
		rec, err := rs.r.Next()
		if err == io.EOF {
			// Orderly end: the primary lives on; the replica is not needed.
			return 0, newOpError(OpBackup, rs.dom, rs.discard(ctx))
		}
		if err != nil {
			if lastComplete == 0 {
				return 0, newOpError(OpBackup, rs.dom, rs.abort(ctx, fmt.Errorf("%w: %w", ErrNoCheckpoint, err)))
			}
			c.log.InfoContext(ctx, "replication stream broke, failing over", "domain", rs.dom,
				"checkpoints", lastComplete, "cause", err)
			if ferr := rs.finish(ctx, !rs.o.Paused); ferr != nil {
				return 0, newOpError(OpBackup, rs.dom, rs.abort(ctx, ferr))
			}
			return rs.dom, nil
		}
		if err := rs.apply(ctx, rec); err != nil {
			if lastComplete == 0 {
				// Only the first checkpoint is applied as it streams in.
				err = fmt.Errorf("%w: %w", ErrNoCheckpoint, err)
			}
			return 0, newOpError(OpBackup, rs.dom, rs.abort(ctx, err))
		}
		if rec.Kind == stream.KindLibxl && rec.LibxlType == stream.LibxlCheckpointEnd {
			lastComplete++
		}
	}
}

// discard destroys the replica after an orderly end of replication.
func (rs *restorer) discard(ctx context.Context) error {
	if !rs.made {
		return nil
	}
	rs.made = false
	if err := rs.c.hv.DestroyDomain(context.WithoutCancel(ctx), rs.dom); err != nil && !isGone(err) {
		return fmt.Errorf("destroying replica: %w", err)
	}
	return nil
}
