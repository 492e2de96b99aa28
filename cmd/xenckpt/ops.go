package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
)

// opResult is the JSON document of every domain operation (checkpoint,
// save, restore, migrate, receive, replicate). Field names are stable;
// fields that do not apply to an operation are omitted.
type opResult struct {
	Operation string `json:"operation"`
	// Sim is true when the operation ran on the in-process simulator.
	Sim bool `json:"sim"`
	// Domain is the domain operated on: the source of a checkpoint, save,
	// migration or replication; the new domain of a restore or receive.
	Domain int    `json:"domain"`
	File   string `json:"file,omitempty"`
	Peer   string `json:"peer,omitempty"`
	Live   bool   `json:"live,omitempty"`
	// Pages and Bytes of page data moved (every precopy round included).
	Pages  uint64 `json:"pages"`
	Bytes  uint64 `json:"bytes"`
	Rounds int    `json:"rounds,omitempty"`
	// PrecopyStop is why live precopy stopped iterating (the library's
	// checkpoint.PrecopyStop): dirty-threshold, downtime,
	// dirty-rate-exceeds-bandwidth or max-iterations. Absent when no
	// precopy ran.
	PrecopyStop string `json:"precopy_stop,omitempty"`
	// PauseMS is how long the guest was suspended (the longest epoch for
	// replicate); TotalMS the whole operation.
	PauseMS float64 `json:"pause_ms"`
	TotalMS float64 `json:"total_ms"`
	// Convention is how the guest was resumed: seed, upstream, slow...
	Convention string `json:"convention,omitempty"`
	// SourceRunning: after checkpoint, a failed save or migration, or
	// replicate, whether the source guest is running (neither paused nor
	// suspended, and on the simulator still counting).
	SourceRunning *bool `json:"source_running,omitempty"`
	// ResumedByCLI is true when the library left the source suspended
	// after a failure and the command resumed it (a library bug, logged).
	ResumedByCLI bool `json:"resumed_by_cli,omitempty"`
	// GuestRunning: after restore or receive, whether the new guest runs.
	GuestRunning *bool `json:"guest_running,omitempty"`
	// GuestCounter is the simulated guest's tick counter at the end: a
	// restored guest continues from the count it had when saved.
	GuestCounter *uint64 `json:"guest_counter,omitempty"`
	// GuestState is the simulated guest's state at the end: running,
	// suspended, crashed, broken (resumed with the wrong convention), ...
	GuestState string `json:"guest_state,omitempty"`
	// DomainsLeft is how many guest domains the simulated host holds at
	// the end (a failed receive must leave none).
	DomainsLeft *int `json:"domains_left,omitempty"`
	// Checkpoints counts Remus checkpoints sent (replicate) or applied.
	Checkpoints int `json:"checkpoints,omitempty"`
	// FailedOver (receive --remus only) is true when the backup took over
	// from its last complete checkpoint, false when the primary ended
	// replication in order (the replica is then discarded).
	FailedOver *bool      `json:"failed_over,omitempty"`
	Error      *errorJSON `json:"error,omitempty"`
	// Hint is what the human output suggests after a refusal (not part
	// of the JSON document: the error class says it).
	Hint string `json:"-"`
}

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *opResult) setError(err error) {
	if err != nil {
		code := exitCode(err)
		r.Error = &errorJSON{Message: err.Error(), Class: exitNames[code], ExitCode: code}
	}
}

func (r *opResult) fromResult(res *checkpoint.Result) {
	if res == nil {
		return
	}
	r.Pages, r.Bytes, r.Rounds = res.Pages, res.Bytes, res.Rounds
	r.PrecopyStop = string(res.PrecopyStop)
	r.PauseMS = ms(res.PauseTime)
	if res.Convention != 0 {
		r.Convention = fmt.Sprint(res.Convention)
	}
}

func (r *opResult) text(w io.Writer) {
	where := ""
	if r.Sim {
		where = " (simulated host)"
	}
	switch {
	case r.Error != nil:
		fmt.Fprintf(w, "%s of domain %d FAILED%s: %s\n", r.Operation, r.Domain, where, r.Error.Message)
	default:
		fmt.Fprintf(w, "%s of domain %d done%s\n", r.Operation, r.Domain, where)
	}
	if r.File != "" {
		fmt.Fprintf(w, "  image: %s\n", r.File)
	}
	if r.Peer != "" {
		fmt.Fprintf(w, "  peer: %s\n", r.Peer)
	}
	fmt.Fprintf(w, "  %d pages, %d bytes", r.Pages, r.Bytes)
	if r.Rounds > 0 || r.PrecopyStop != "" {
		fmt.Fprintf(w, ", %d precopy rounds", r.Rounds)
	}
	if r.PrecopyStop != "" {
		fmt.Fprintf(w, " (stopped: %s)", r.PrecopyStop)
	}
	fmt.Fprintf(w, "; guest paused %.3f ms, total %.1f ms\n", r.PauseMS, r.TotalMS)
	if r.Checkpoints > 0 {
		fmt.Fprintf(w, "  %d checkpoints\n", r.Checkpoints)
	}
	if r.Convention != "" {
		fmt.Fprintf(w, "  resumed with the %s convention\n", r.Convention)
	}
	if r.SourceRunning != nil {
		fmt.Fprintf(w, "  source guest running: %v\n", *r.SourceRunning)
	}
	if r.GuestRunning != nil {
		fmt.Fprintf(w, "  new guest running: %v\n", *r.GuestRunning)
	}
	if r.GuestCounter != nil {
		fmt.Fprintf(w, "  simulated guest: %s, counter %d\n", r.GuestState, *r.GuestCounter)
	}
	if r.FailedOver != nil && *r.FailedOver {
		fmt.Fprintln(w, "  failed over to the last complete checkpoint")
	}
	if r.DomainsLeft != nil {
		fmt.Fprintf(w, "  guest domains on this host: %d\n", *r.DomainsLeft)
	}
	if r.Hint != "" {
		fmt.Fprintf(w, "  hint: %s\n", r.Hint)
	}
}

// finish prints r (with err in it) and returns err marked as printed.
func (a *app) finish(r *opResult, start time.Time, err error) error {
	r.TotalMS = ms(time.Since(start))
	r.setError(err)
	if perr := a.emit(r, r.text); perr != nil {
		return errors.Join(err, perr)
	}
	return printed(err)
}

// saveFlags are the precopy policy flags.
type saveFlags struct {
	live          bool
	maxIterations int
	threshold     uint64
	maxDowntime   time.Duration
}

func (s *saveFlags) register(cmd *cobra.Command, live bool) {
	f := cmd.Flags()
	f.BoolVar(&s.live, "live", live, "copy memory while the guest runs (log-dirty precopy), suspending it only for the last round")
	f.IntVar(&s.maxIterations, "max-iterations", 0, "precopy rounds after the first pass (0: 5)")
	f.Uint64Var(&s.threshold, "dirty-threshold", 0, "stop precopy when a round leaves at most this many dirty pages (0: 50)")
	f.DurationVar(&s.maxDowntime, "max-downtime", 0, "stop precopy when the rest is expected to take at most this long, or memory is dirtied as fast as it is sent (0: 10ms; negative: neither rule)")
}

// common are the flags shared by the domain commands.
type common struct {
	sim     simFlags
	resume  resumeFlags
	timeout timeoutFlags
}

func (c *common) register(cmd *cobra.Command) {
	c.sim.register(cmd)
	c.resume.register(cmd)
	c.timeout.register(cmd)
}

// openDomain opens the host and resolves the domain of a domain command.
func (a *app) openDomain(ctx context.Context, c *common, args []string) (*host, domctl.DomID, error) {
	h, err := a.openHost(ctx, c.sim.sim, &c.timeout)
	if err != nil {
		return nil, 0, err
	}
	dom, _, err := a.domainArg(ctx, h, &c.sim, args)
	if err != nil {
		h.close()
		return nil, 0, err
	}
	return h, dom, nil
}

// saveOptions builds checkpoint.SaveOptions with a progress bar.
func (a *app) saveOptions(ctx context.Context, c *common, s *saveFlags, b *bar, total uint64) (*checkpoint.SaveOptions, error) {
	ro, err := c.resume.options(ctx, &c.sim)
	if err != nil {
		return nil, err
	}
	o := &checkpoint.SaveOptions{
		Live: s.live, MaxIterations: s.maxIterations, DirtyPageThreshold: s.threshold, MaxDowntime: s.maxDowntime,
		Resume: ro,
	}
	o.Progress = a.withEvents(func(p checkpoint.Progress) {
		status := string(p.Phase)
		if p.Phase == checkpoint.PhasePrecopy || p.Phase == checkpoint.PhaseSuspended {
			status = fmt.Sprintf("%s, round %d", p.Phase, p.Round)
		}
		b.Update(p.Pages, total, status)
	})
	return o, nil
}

// totalPages is dom's memory size for the progress bar (0 if unknown).
func (h *host) totalPages(ctx context.Context, dom domctl.DomID) uint64 {
	info, err := h.hv.DomainInfo(ctx, dom)
	if err != nil {
		return 0
	}
	return info.TotPages
}

// stateOf returns the simulated guest's state, or "" on a real host.
func (h *host) stateOf(dom domctl.DomID) string {
	if h.sim == nil {
		return ""
	}
	return h.sim.Guest(dom).State().String()
}

// counterOf returns the simulated guest's counter, or nil on a real host.
func (h *host) counterOf(dom domctl.DomID) *uint64 {
	if h.sim == nil {
		return nil
	}
	return ptr(h.sim.Guest(dom).Counter())
}

func (a *app) checkpointCmd() *cobra.Command {
	return a.saveLikeCmd("checkpoint", "Save a running guest's state to FILE and let it continue (suspend, snapshot, cancel)",
		`Suspend the guest, write its memory and state to FILE, then cancel the suspend
so that the guest continues in the same domain. The cancel convention is
negotiated (seed token in start_info.magic[], the kernel's ELF note given with
--kernel, or --convention); a PV guest with none is refused unless
--slow-resume, an HVM/PVH guest with none always (before it is suspended:
resumed in its own domain it would crash).
Any failure, and Ctrl-C, also cancels the suspend: the guest keeps running.`)
}

func (a *app) saveCmd() *cobra.Command {
	return a.saveLikeCmd("save", "Save a guest to FILE and destroy it once the image is safely written",
		`Suspend the guest, write its memory and state to FILE, sync the file, and only
then destroy the domain. If anything fails before that (a write error, a full
disk, Ctrl-C), the suspend is cancelled and the guest keeps running.`)
}

// saveLikeCmd builds checkpoint and save, which differ only in how they end.
func (a *app) saveLikeCmd(op, short, long string) *cobra.Command {
	var c common
	var s saveFlags
	var out string
	cmd := &cobra.Command{
		Use:   op + " DOMID -o FILE",
		Short: short,
		Long:  long,
		Args:  domArgs(&c.sim, 0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runSaveLike(cmd.Context(), op, &c, &s, out, args)
		},
	}
	c.register(cmd)
	s.register(cmd, false)
	cmd.Flags().StringVarP(&out, "output", "o", "", "image file to write (required)")
	return cmd
}

func (a *app) runSaveLike(ctx context.Context, op string, c *common, s *saveFlags, out string, args []string) error {
	if out == "" {
		return usageErrorf("-o FILE is required")
	}
	start := time.Now()
	h, dom, err := a.openDomain(ctx, c, args)
	if err != nil {
		return err
	}
	defer a.closeHost(h)
	res := &opResult{Operation: op, Sim: h.sim != nil, Domain: int(dom), File: out, Live: s.live}
	b := a.newBar(op, "pages")
	opts, err := a.saveOptions(ctx, c, s, b, h.totalPages(ctx, dom))
	if err != nil {
		return err
	}
	img, err := createImage(out)
	if err != nil {
		return err
	}
	var r *checkpoint.Result
	if op == "checkpoint" {
		r, err = h.ctl.Checkpoint(ctx, dom, img, opts)
	} else {
		r, err = h.ctl.Save(ctx, dom, img, opts)
	}
	b.Done()
	err = img.finish(err)
	res.fromResult(r)
	if err != nil && !errors.Is(err, checkpoint.ErrNotCancellable) {
		res.ResumedByCLI = a.ensureResumed(ctx, h, dom, opts.Resume, 3*time.Second)
	}
	if op == "checkpoint" || err != nil {
		res.SourceRunning = ptr(h.guestRunning(ctx, dom))
		res.GuestCounter, res.GuestState = h.counterOf(dom), h.stateOf(dom)
	}
	res.Hint = a.refusalHint(ctx, h, dom, err, res.SourceRunning)
	return a.finish(res, start, res.leftSuspended(err, dom))
}

func (a *app) restoreCmd() *cobra.Command {
	var sim bool
	var paused bool
	var name string
	var rf resumeFlags
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a guest from a save image into a new domain",
		Long: `Create a new domain and load FILE into it (our images, or xl save images of
guests this host can run), then unpause it unless --paused. With --sim the
domain is created on an in-process simulated host and, for a simulated
guest, its continued counter is reported. A failed restore destroys what it
built.`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			start := time.Now()
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			h, err := a.openHost(ctx, sim, nil)
			if err != nil {
				return err
			}
			defer a.closeHost(h)
			ro, err := rf.options(ctx, nil)
			if err != nil {
				return err
			}
			res := &opResult{Operation: "restore", Sim: sim, File: args[0]}
			b := a.newBar("restore", "pages")
			opts := &checkpoint.RestoreOptions{Paused: paused, Name: name, Resume: ro, Progress: a.restoreProgress(res, b)}
			dom, err := h.ctl.Restore(ctx, f, opts)
			b.Done()
			res.Domain = int(dom)
			a.afterRestore(ctx, h, res, dom, err, paused)
			return a.finish(res, start, errors.Join(err, simGuestError(res)))
		},
	}
	cmd.Flags().BoolVar(&sim, "sim", false, "restore into an in-process simulated Xen host")
	cmd.Flags().BoolVar(&paused, "paused", false, "leave the restored domain paused")
	cmd.Flags().StringVar(&name, "name", "", "the restored domain's name (default: the image's, else restored-DOMID)")
	rf.register(cmd)
	return cmd
}

// restoreProgress counts pages into res and draws the bar.
func (a *app) restoreProgress(res *opResult, b *bar) func(checkpoint.Progress) {
	return a.withEvents(func(p checkpoint.Progress) {
		res.Pages, res.Bytes = p.Pages, p.Bytes
		b.Update(p.Pages, 0, string(p.Phase))
	})
}

// progressEvent is one line of --events: a library progress event.
type progressEvent struct {
	Event     string  `json:"event"` // always "progress"
	Domain    int     `json:"domain"`
	Phase     string  `json:"phase"` // precopy, suspended, resumed, done, restore
	Round     int     `json:"round"`
	Pages     uint64  `json:"pages"`
	Bytes     uint64  `json:"bytes"`
	RoundPgs  uint64  `json:"round_pages"`
	DirtyRate float64 `json:"dirty_rate"` // pages per second
	Bandwidth float64 `json:"bandwidth"`  // bytes per second
	PauseMS   float64 `json:"pause_ms"`
	TimeMS    float64 `json:"time_ms"` // since the command started
}

// withEvents adds --events output to a progress callback.
func (a *app) withEvents(f func(checkpoint.Progress)) func(checkpoint.Progress) {
	if !a.events {
		return f
	}
	var mu sync.Mutex
	enc := json.NewEncoder(a.stderr)
	return func(p checkpoint.Progress) {
		f(p)
		mu.Lock()
		defer mu.Unlock()
		_ = enc.Encode(progressEvent{Event: "progress", Domain: int(p.Domain), Phase: string(p.Phase), Round: p.Round,
			Pages: p.Pages, Bytes: p.Bytes, RoundPgs: p.RoundPages, DirtyRate: p.DirtyRate, Bandwidth: p.Bandwidth,
			PauseMS: ms(p.PauseTime), TimeMS: ms(time.Since(a.start))})
	}
}

// simGuestError reports a simulated guest that the library restored but
// that does not run (for example a seed-protocol PVH guest restored without
// --convention seed: it took the restore for a cancel and is broken).
func simGuestError(res *opResult) error {
	if res.GuestState == "" || res.GuestRunning == nil || *res.GuestRunning {
		return nil
	}
	return withCode(exitGuest, fmt.Errorf("the restored simulated guest is not running (state %s); a seed-protocol PVH guest needs --convention seed", res.GuestState))
}

// afterRestore fills in the state of a restored or received domain.
func (a *app) afterRestore(ctx context.Context, h *host, res *opResult, dom domctl.DomID, err error, paused bool) {
	if err == nil && dom != 0 && !paused {
		if h.sim != nil {
			// A simulated guest runs once its kernel has acted on its
			// suspend return value and reconnected to xenstore.
			g := h.sim.Guest(dom)
			wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			if werr := g.WaitConnected(wctx); werr != nil {
				a.log.Warn("restored guest did not reconnect", "domain", dom, "state", g.State())
			}
			cancel()
		}
		res.GuestRunning = ptr(h.guestRunning(ctx, dom))
		res.GuestCounter, res.GuestState = h.counterOf(dom), h.stateOf(dom)
	}
	if h.sim != nil {
		res.DomainsLeft = ptr(h.guestDomains())
	}
}
