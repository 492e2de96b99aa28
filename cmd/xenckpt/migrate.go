package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
)

func (a *app) migrateCmd() *cobra.Command {
	var c common
	var s saveFlags
	var lf linkFlags
	cmd := &cobra.Command{
		Use:   "migrate DOMID HOST",
		Short: "Live-migrate a guest to another host",
		Long: `Migrate the guest to HOST, where "xenckpt receive" restores it. HOST:PORT
connects over TCP to "xenckpt receive --listen"; a bare HOST runs
"xenckpt receive" there through ssh (--ssh, --receive-command), like xl migrate.

The source is destroyed only after the receiver reports a complete domain and
is told to run it. A cut link, a receiver failure or Ctrl-C before that
cancels the suspend: the source keeps running (exit code 7 or 130).`,
		Args: domArgs(&c.sim, 1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runMigrate(cmd.Context(), &c, &s, &lf, args)
		},
	}
	c.register(cmd)
	s.register(cmd, true)
	lf.register(cmd, true)
	return cmd
}

func (a *app) runMigrate(ctx context.Context, c *common, s *saveFlags, lf *linkFlags, args []string) error {
	start := time.Now()
	peer := args[len(args)-1]
	h, dom, err := a.openDomain(ctx, c, args)
	if err != nil {
		return err
	}
	defer a.closeHost(h)
	res := &opResult{Operation: "migrate", Sim: h.sim != nil, Domain: int(dom), Peer: peer, Live: s.live}
	b := a.newBar("migrate", "pages")
	opts, err := a.saveOptions(ctx, c, s, b, h.totalPages(ctx, dom))
	if err != nil {
		return err
	}
	conn, err := a.dialPeer(ctx, peer, lf)
	if err != nil {
		res.SourceRunning = ptr(h.guestRunning(ctx, dom))
		return a.finish(res, start, transferError(err))
	}
	r, err := h.ctl.Migrate(ctx, dom, conn, opts)
	b.Done()
	if cerr := conn.Close(); err == nil && cerr != nil {
		a.log.Warn("closing link", "err", cerr)
	}
	res.fromResult(r)
	if err != nil && !errors.Is(err, checkpoint.ErrNotCancellable) {
		res.ResumedByCLI = a.ensureResumed(ctx, h, dom, opts.Resume, 3*time.Second)
	}
	res.SourceRunning = ptr(err != nil && h.guestRunning(ctx, dom))
	if err != nil {
		res.GuestCounter, res.GuestState = h.counterOf(dom), h.stateOf(dom)
	}
	return a.finish(res, start, transferError(res.leftSuspended(err, dom)))
}

func (a *app) receiveCmd() *cobra.Command {
	var sim, paused, remus bool
	var listen, name string
	var rf resumeFlags
	var lf linkFlags
	cmd := &cobra.Command{
		Use:   "receive",
		Short: "Receive a migrating (or replicated) guest",
		Long: `The receiving end of "xenckpt migrate" (and, with --remus, of "xenckpt
replicate"). Without --listen the stream is read from standard input and
replies go to standard output, so "ssh HOST xenckpt receive" works as
xl migrate-receive does; the result then goes to standard error. With
--listen ADDR it accepts one TCP connection.

A failed or cut migration destroys whatever was built here. A Remus backup
applies only complete checkpoints and fails over to the last one when the
primary's stream breaks.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			h, err := a.openHost(ctx, sim, nil)
			if err != nil {
				return err
			}
			defer a.closeHost(h)
			ro, err := rf.options(ctx, nil)
			if err != nil {
				return err
			}
			var conn io.ReadWriteCloser
			var peer string
			out := a
			if listen != "" {
				conn, peer, err = a.acceptPeer(ctx, listen, &lf)
				if err != nil {
					return err
				}
			} else {
				conn, peer = a.stdioLink(), "stdio"
				// stdout carries the protocol: results go to stderr.
				out = &app{stdin: a.stdin, stdout: a.stderr, stderr: a.stderr, jsonOut: a.jsonOut, log: a.log,
					events: a.events, progress: a.progress, start: a.start}
			}
			defer conn.Close()
			op := "receive"
			if remus {
				op = "receive-remus"
			}
			res := &opResult{Operation: op, Sim: sim, Peer: peer}
			b := out.newBar("receive", "pages")
			opts := &checkpoint.RestoreOptions{Paused: paused, Name: name, Resume: ro, Progress: out.restoreProgress(res, b)}
			var dom domctl.DomID
			if remus {
				dom, err = h.ctl.RemusBackup(ctx, conn, opts)
				res.FailedOver = ptr(err == nil && dom != 0)
			} else {
				dom, err = h.ctl.Receive(ctx, conn, opts)
			}
			b.Done()
			res.Domain = int(dom)
			out.afterRestore(ctx, h, res, dom, err, paused)
			return out.finish(res, start, errors.Join(transferError(err), simGuestError(res)))
		},
	}
	cmd.Flags().BoolVar(&sim, "sim", false, "receive into an in-process simulated Xen host")
	cmd.Flags().StringVar(&listen, "listen", "", "accept one TCP connection on ADDR (host:port) instead of using stdin/stdout")
	cmd.Flags().BoolVar(&paused, "paused", false, "leave the received domain paused")
	cmd.Flags().BoolVar(&remus, "remus", false, "be a Remus backup (the other end runs xenckpt replicate)")
	cmd.Flags().StringVar(&name, "name", "", "the received domain's name (default: the image's)")
	rf.register(cmd)
	lf.register(cmd, false)
	return cmd
}

func (a *app) replicateCmd() *cobra.Command {
	var c common
	var lf linkFlags
	var interval time.Duration
	var epochs int
	var live bool
	cmd := &cobra.Command{
		Use:   "replicate DOMID HOST",
		Short: "Replicate a guest to a backup host, Remus style",
		Long: `Checkpoint the guest every --interval and send each checkpoint (the pages
dirtied since the last one, plus register state) to HOST, where
"xenckpt receive --remus" keeps the last complete checkpoint and fails over to
it if this side stops. The primary is resumed (cancelled) after every epoch
and keeps running however replication ends. --epochs N stops after N
checkpoints (the backup then discards its copy); otherwise it runs until
Ctrl-C or a link failure.`,
		Args: domArgs(&c.sim, 1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			start := time.Now()
			peer := args[len(args)-1]
			h, dom, err := a.openDomain(ctx, &c, args)
			if err != nil {
				return err
			}
			defer a.closeHost(h)
			res := &opResult{Operation: "replicate", Sim: h.sim != nil, Domain: int(dom), Peer: peer, Live: live}
			ro, err := c.resume.options(ctx, &c.sim)
			if err != nil {
				return err
			}
			b := a.newBar("replicate", "checkpoints")
			opts := &checkpoint.RemusOptions{Interval: interval, Checkpoints: epochs,
				Save: checkpoint.SaveOptions{Live: live, Resume: ro}}
			var n uint64
			opts.Save.Progress = a.withEvents(func(p checkpoint.Progress) {
				if p.Phase == checkpoint.PhaseResumed {
					n++
					b.Update(n, uint64(max(epochs, 0)), fmt.Sprintf("pause %s", p.PauseTime.Round(time.Microsecond)))
				}
			})
			conn, err := a.dialPeer(ctx, peer, &lf)
			if err != nil {
				res.SourceRunning = ptr(h.guestRunning(ctx, dom))
				return a.finish(res, start, transferError(err))
			}
			r, err := h.ctl.Remus(ctx, dom, conn, opts)
			b.Done()
			_ = conn.Close()
			if r != nil {
				res.fromResult(&r.Result)
				res.Checkpoints = r.Checkpoints
				res.PauseMS = ms(r.MaxPause)
			}
			if err != nil && !errors.Is(err, checkpoint.ErrNotCancellable) {
				res.ResumedByCLI = a.ensureResumed(ctx, h, dom, ro, 3*time.Second)
			}
			res.SourceRunning = ptr(h.guestRunning(ctx, dom))
			res.GuestCounter, res.GuestState = h.counterOf(dom), h.stateOf(dom)
			res.Hint = a.refusalHint(ctx, h, dom, err, res.SourceRunning)
			err = res.leftSuspended(err, dom)
			// Ctrl-C is how an endless replication is stopped: not a
			// failure, as long as the primary runs on.
			if epochs == 0 && ctx.Err() != nil && res.Checkpoints > 0 && *res.SourceRunning {
				a.log.Info("replication stopped", "reason", err)
				err = nil
			}
			return a.finish(res, start, transferError(err))
		},
	}
	c.register(cmd)
	lf.register(cmd, true)
	cmd.Flags().DurationVar(&interval, "interval", checkpoint.DefaultRemusInterval, "time the primary runs between checkpoints")
	cmd.Flags().IntVar(&epochs, "epochs", 0, "stop after this many checkpoints (0: until Ctrl-C)")
	cmd.Flags().BoolVar(&live, "live", false, "send the first checkpoint with live precopy")
	return cmd
}
