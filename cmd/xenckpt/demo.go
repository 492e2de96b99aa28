package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xensim"
)

func (a *app) demoCmd() *cobra.Command {
	var o demoOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole story on an in-process simulated Xen host",
		Long: `Boot a simulated Xen host with three guests (a seed-protocol PV guest, a
Linux-convention PVH guest that dirties memory, a legacy PV guest with no cancel
convention) and run, checking each outcome:

  1. capabilities: each guest's cancel convention and where it came from
  2. checkpoint with cancel: seed (guest sees 0) and Linux (guest sees 1);
     the legacy guest is refused, then slow-resumed
  3. save to a file, then restore: the guest continues its count
  4. live migration to a second simulated host over TCP on loopback
  5. a migration cut mid-way: the source keeps running, the receiver is clean
  6. Remus: checkpoints every interval; the primary is lost and the backup
     takes over from the last complete checkpoint

Pause times are measured. Exit code 0 when every step behaved as expected.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDemo(cmd.Context(), &o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.memMiB, "guest-mem", 32, "memory of each simulated guest in MiB")
	f.IntVar(&o.epochs, "epochs", 8, "Remus checkpoints before the primary is lost")
	f.DurationVar(&o.interval, "interval", 20*time.Millisecond, "Remus checkpoint interval")
	return cmd
}

type demoOptions struct {
	memMiB   int
	epochs   int
	interval time.Duration
}

// demoStep is one step of the demo in the JSON document.
type demoStep struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Summary string `json:"summary"`
	// Domain is the guest the step worked on (its new domain for restore,
	// migration and failover: see NewDomain).
	Domain           int    `json:"domain,omitempty"`
	NewDomain        int    `json:"new_domain,omitempty"`
	GuestType        string `json:"guest_type,omitempty"`
	Convention       string `json:"convention,omitempty"`
	ConventionSource string `json:"convention_source,omitempty"`
	// SuspendReturn is what the guest's suspend hypercall returned.
	SuspendReturn *int64  `json:"suspend_return,omitempty"`
	PauseMS       float64 `json:"pause_ms,omitempty"`
	Pages         uint64  `json:"pages,omitempty"`
	Bytes         uint64  `json:"bytes,omitempty"`
	Rounds        int     `json:"rounds,omitempty"`
	CounterBefore *uint64 `json:"counter_before,omitempty"`
	CounterAfter  *uint64 `json:"counter_after,omitempty"`
	SourceRunning *bool   `json:"source_running,omitempty"`
	GuestRunning  *bool   `json:"guest_running,omitempty"`
	// DomainsLeft counts guest domains on the receiving host afterwards.
	DomainsLeft *int `json:"domains_left,omitempty"`
	Checkpoints int  `json:"checkpoints,omitempty"`
	// EpochPausesMS are the Remus pause times, one per checkpoint.
	EpochPausesMS []float64 `json:"epoch_pauses_ms,omitempty"`
	// Error is the error the step provoked on purpose (or hit).
	Error      string  `json:"error,omitempty"`
	DurationMS float64 `json:"duration_ms"`
}

// demoResult is the JSON document of "demo".
type demoResult struct {
	OK      bool       `json:"ok"`
	Steps   []demoStep `json:"steps"`
	TotalMS float64    `json:"total_ms"`
}

// demo is one run: two simulated hosts and their toolstacks.
type demo struct {
	a     *app
	o     *demoOptions
	src   *host
	dst   *host
	dir   string
	res   demoResult
	seed  *xensim.Guest
	linux *xensim.Guest
	old   *xensim.Guest
}

func (a *app) runDemo(ctx context.Context, o *demoOptions) error {
	start := time.Now()
	d := &demo{a: a, o: o}
	var err error
	if d.dir, err = os.MkdirTemp("", "xenckpt-demo-"); err != nil {
		return err
	}
	defer os.RemoveAll(d.dir)
	tf := &timeoutFlags{ack: 5 * time.Second, suspend: 5 * time.Second}
	if d.src, err = a.openHost(ctx, true, tf); err != nil {
		return err
	}
	defer a.closeHost(d.src)
	if d.dst, err = a.openHost(ctx, true, tf); err != nil {
		return err
	}
	defer a.closeHost(d.dst)

	steps := []struct {
		name string
		fn   func(context.Context, *demoStep) error
	}{
		{"boot", d.boot},
		{"capabilities", d.capabilities},
		{"checkpoint-seed", func(ctx context.Context, s *demoStep) error { return d.checkpoint(ctx, s, d.seed, "pv", 0) }},
		{"checkpoint-linux", func(ctx context.Context, s *demoStep) error { return d.checkpoint(ctx, s, d.linux, "pvh", 1) }},
		{"checkpoint-legacy", d.checkpointLegacy},
		{"save-restore", d.saveRestore},
		{"live-migration", d.liveMigration},
		{"cut-migration", d.cutMigration},
		{"remus", d.remus},
	}
	for i, st := range steps {
		s := demoStep{Name: st.name}
		t0 := time.Now()
		err := st.fn(ctx, &s)
		s.DurationMS = ms(time.Since(t0))
		s.OK = err == nil
		if err != nil && s.Error == "" {
			s.Error = err.Error()
		}
		d.res.Steps = append(d.res.Steps, s)
		if !a.jsonOut {
			mark := "ok  "
			if !s.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(a.stdout, "%d. [%s] %-18s %s\n", i+1, mark, s.Name, s.Summary)
			if !s.OK {
				fmt.Fprintf(a.stdout, "   error: %s\n", s.Error)
			}
		}
		if ctx.Err() != nil {
			break
		}
		if err != nil && i < 2 {
			break // nothing to demonstrate without guests
		}
	}
	d.res.OK = len(d.res.Steps) == len(steps)
	for _, s := range d.res.Steps {
		d.res.OK = d.res.OK && s.OK
	}
	d.res.TotalMS = ms(time.Since(start))
	if a.jsonOut {
		if err := a.writeJSON(d.res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(a.stdout, d.pauseSummary())
		verdict := "every step behaved as expected"
		if !d.res.OK {
			verdict = "SOME STEPS FAILED"
		}
		fmt.Fprintf(a.stdout, "demo finished in %.0f ms: %s\n", d.res.TotalMS, verdict)
	}
	if ctx.Err() != nil {
		return printed(ctx.Err())
	}
	if !d.res.OK {
		return printed(errors.New("demo: some steps did not behave as expected"))
	}
	return nil
}

func (d *demo) pages() uint64 { return uint64(d.o.memMiB) << 20 / xensim.PageSize }

func (d *demo) boot(ctx context.Context, s *demoStep) error {
	var err error
	mk := func(name string, kind xensim.Kind, conv xensim.Convention, rate int) (*xensim.Guest, error) {
		return d.src.sim.CreateGuest(ctx, xensim.GuestConfig{Name: name, Kind: kind, Convention: conv, Pages: d.pages(), DirtyRate: rate})
	}
	if d.seed, err = mk("seed-pv", xensim.PV64, xensim.ConventionSeed, 200); err != nil {
		return err
	}
	if d.linux, err = mk("linux-pvh", xensim.PVH, xensim.ConventionLinux, 2000); err != nil {
		return err
	}
	if d.old, err = mk("legacy-pv", xensim.PV64, xensim.ConventionLegacy, 0); err != nil {
		return err
	}
	for _, g := range []*xensim.Guest{d.seed, d.linux, d.old} {
		if err := g.WaitCounter(ctx, 2); err != nil {
			return err
		}
	}
	s.Summary = fmt.Sprintf("simulated Xen 4.17 host: seed-pv (dom %d, seed protocol), linux-pvh (dom %d, Linux convention), legacy-pv (dom %d, no cancel); %d MiB each, counting",
		d.seed.Domain(), d.linux.Domain(), d.old.Domain(), d.o.memMiB)
	return nil
}

// linuxNotes is what a toolstack knows of a Linux kernel: its
// XEN_ELFNOTE_SUSPEND_CANCEL note.
func linuxNotes() *magic.Notes {
	return &magic.Notes{SuspendCancel: 1, Raw: []magic.Note{{Type: magic.NoteSuspendCancel, Desc: []byte{1, 0, 0, 0}}}}
}

func (d *demo) capabilities(ctx context.Context, s *demoStep) error {
	var parts []string
	for _, g := range []struct {
		g     *xensim.Guest
		name  string
		notes *magic.Notes
		want  magic.Convention
	}{
		{d.seed, "seed-pv", nil, magic.ConventionSeed},
		{d.linux, "linux-pvh", linuxNotes(), magic.ConventionUpstream},
		{d.old, "legacy-pv", nil, magic.ConventionNone},
	} {
		c, err := negotiateSim(ctx, d.src, g.g.Domain(), g.notes)
		if err != nil {
			return fmt.Errorf("%s: %w", g.name, err)
		}
		parts = append(parts, fmt.Sprintf("%s: %s (from %s)", g.name, c.Convention, c.ConventionSource))
		if c.Convention != g.want.String() {
			return fmt.Errorf("%s negotiated %s, want %s", g.name, c.Convention, g.want)
		}
	}
	s.Summary = strings.Join(parts, "; ")
	return nil
}

// checkpoint checkpoints g (suspend, snapshot, cancel) and checks that the
// guest saw the cancel value of its convention and kept counting.
func (d *demo) checkpoint(ctx context.Context, s *demoStep, g *xensim.Guest, kind string, want int64) error {
	s.Domain, s.GuestType = int(g.Domain()), kind
	ro := checkpoint.ResumeOptions{}
	if want == 1 {
		ro.Notes = linuxNotes()
	}
	before := g.Counter()
	f, err := os.Create(filepath.Join(d.dir, "ckpt-"+kind+".img"))
	if err != nil {
		return err
	}
	defer f.Close()
	// Live: memory is copied while the guest runs; it is suspended only
	// for the last dirty pages.
	r, err := d.src.ctl.Checkpoint(ctx, g.Domain(), f, &checkpoint.SaveOptions{Live: true, Resume: ro})
	if err != nil {
		return err
	}
	// A tick after Checkpoint returned comes after the guest's suspend
	// hypercall returned (the simulated kernel ticks and suspends in one
	// loop): only then does it hold the value the guest saw. The live
	// copy may have let the counter pass before+5 before the suspend.
	if err := g.WaitCounter(ctx, max(before+5, g.Counter())); err != nil {
		return fmt.Errorf("guest stopped counting after the checkpoint: %w", err)
	}
	ret := g.LastSuspendReturn()
	s.SuspendReturn, s.Convention = &ret, r.Convention.String()
	s.PauseMS, s.Pages, s.Bytes = ms(r.PauseTime), r.Pages, r.Bytes
	s.CounterBefore, s.CounterAfter = ptr(before), ptr(g.Counter())
	s.SourceRunning = ptr(d.src.guestRunning(ctx, g.Domain()))
	s.Rounds = r.Rounds
	s.Summary = fmt.Sprintf("dom %d (%s): live, %d pages to an image, paused %.2f ms, cancelled with the %s convention: the guest's suspend returned %d and it continues (counter %d -> %d)",
		g.Domain(), kind, r.Pages, s.PauseMS, r.Convention, ret, before, *s.CounterAfter)
	if ret != want {
		return fmt.Errorf("guest's suspend returned %d, want %d", ret, want)
	}
	if !*s.SourceRunning {
		return errors.New("guest not running after the checkpoint")
	}
	return nil
}

func (d *demo) checkpointLegacy(ctx context.Context, s *demoStep) error {
	g := d.old
	s.Domain, s.GuestType = int(g.Domain()), "pv"
	_, err := d.src.ctl.Checkpoint(ctx, g.Domain(), io.Discard, nil)
	if !errors.Is(err, checkpoint.ErrNotCancellable) {
		return fmt.Errorf("checkpoint of a guest without a convention: got %v, want ErrNotCancellable", err)
	}
	if !d.src.guestRunning(ctx, g.Domain()) {
		return errors.New("legacy guest not running after the refusal")
	}
	rec := g.Reconnects()
	r, err := d.src.ctl.Checkpoint(ctx, g.Domain(), io.Discard, &checkpoint.SaveOptions{Resume: checkpoint.ResumeOptions{SlowResume: true}})
	if err != nil {
		return err
	}
	if err := g.WaitState(ctx, xensim.GuestRunning); err != nil {
		return err
	}
	s.Convention, s.PauseMS = r.Convention.String(), ms(r.PauseTime)
	s.SourceRunning = ptr(d.src.guestRunning(ctx, g.Domain()))
	s.Summary = fmt.Sprintf("dom %d: refused without a convention (%s); with --slow-resume it is resumed as after a restore (reconnects %d -> %d), paused %.2f ms",
		g.Domain(), checkpoint.ErrNotCancellable, rec, g.Reconnects(), s.PauseMS)
	if !*s.SourceRunning {
		return errors.New("legacy guest not running after the slow resume")
	}
	return nil
}

func (d *demo) saveRestore(ctx context.Context, s *demoStep) error {
	g := d.seed
	s.Domain, s.GuestType = int(g.Domain()), "pv"
	path := filepath.Join(d.dir, "seed.img")
	img, err := createImage(path)
	if err != nil {
		return err
	}
	saved := g.Counter() // the guest counts on until it suspends
	r, err := d.src.ctl.Save(ctx, g.Domain(), img, nil)
	if err = img.finish(err); err != nil {
		return err
	}
	if _, err := d.src.hv.DomainInfo(ctx, g.Domain()); !errors.Is(err, domctl.ErrNoDomain) {
		return fmt.Errorf("source domain still exists after save (%v)", err)
	}
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	dom, err := d.src.ctl.Restore(ctx, in, &checkpoint.RestoreOptions{Name: "seed-pv"})
	if err != nil {
		return err
	}
	ng := d.src.sim.Guest(dom)
	if err := ng.WaitConnected(ctx); err != nil {
		return fmt.Errorf("restored guest did not reconnect: %w", err)
	}
	if err := ng.WaitCounter(ctx, saved+5); err != nil {
		return fmt.Errorf("restored guest does not count on: %w", err)
	}
	d.seed = ng
	ret := ng.LastSuspendReturn()
	s.NewDomain, s.SuspendReturn, s.PauseMS, s.Pages = int(dom), &ret, ms(r.PauseTime), r.Pages
	s.CounterBefore, s.CounterAfter = ptr(saved), ptr(ng.Counter())
	s.GuestRunning = ptr(d.src.guestRunning(ctx, dom))
	fi, _ := os.Stat(path)
	s.Summary = fmt.Sprintf("dom %d saved (%d pages, %d-byte image) and destroyed; restored as dom %d, which sees %d (restored) and counts on (%d before the save, %d now)",
		g.Domain(), r.Pages, fi.Size(), dom, ret, saved, *s.CounterAfter)
	if ret <= 0 {
		return fmt.Errorf("a restored seed guest must see a positive value, saw %d", ret)
	}
	return nil
}

// loopback is a TCP connection pair on 127.0.0.1.
func loopback(ctx context.Context) (client, server net.Conn, err error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	type accepted struct {
		c   net.Conn
		err error
	}
	ch := make(chan accepted, 1)
	go func() {
		c, err := ln.Accept()
		ch <- accepted{c, err}
	}()
	var dl net.Dialer
	client, err = dl.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return nil, nil, err
	}
	acc := <-ch
	if acc.err != nil {
		client.Close()
		return nil, nil, acc.err
	}
	return client, acc.c, nil
}

// migrate moves g from src to dst over a loopback TCP connection; wrap
// may interpose on the sender's side of the link.
func (d *demo) migrate(ctx context.Context, g *xensim.Guest, opts *checkpoint.SaveOptions, wrap func(net.Conn) io.ReadWriter) (*checkpoint.Result, domctl.DomID, error, error) {
	client, server, err := loopback(ctx)
	if err != nil {
		return nil, 0, err, nil
	}
	defer client.Close()
	defer server.Close()
	var wg sync.WaitGroup
	var rdom domctl.DomID
	var rerr error
	wg.Go(func() {
		rdom, rerr = d.dst.ctl.Receive(ctx, server, nil)
		server.Close()
	})
	var conn io.ReadWriter = client
	if wrap != nil {
		conn = wrap(client)
	}
	r, err := d.src.ctl.Migrate(ctx, g.Domain(), conn, opts)
	client.Close()
	wg.Wait()
	return r, rdom, err, rerr
}

func (d *demo) liveMigration(ctx context.Context, s *demoStep) error {
	g := d.linux
	s.Domain, s.GuestType = int(g.Domain()), "pvh"
	before := g.Counter()
	r, rdom, err, rerr := d.migrate(ctx, g, &checkpoint.SaveOptions{Live: true, Resume: checkpoint.ResumeOptions{Notes: linuxNotes()}}, nil)
	if err != nil || rerr != nil {
		return errors.Join(err, rerr)
	}
	ng := d.dst.sim.Guest(rdom)
	if err := ng.WaitConnected(ctx); err != nil {
		return fmt.Errorf("migrated guest did not reconnect: %w", err)
	}
	if err := ng.WaitCounter(ctx, before+5); err != nil {
		return fmt.Errorf("migrated guest does not count on: %w", err)
	}
	d.linux = ng
	s.NewDomain, s.PauseMS, s.Pages, s.Bytes, s.Rounds = int(rdom), ms(r.PauseTime), r.Pages, r.Bytes, r.Rounds
	s.CounterBefore, s.CounterAfter = ptr(before), ptr(ng.Counter())
	s.GuestRunning = ptr(d.dst.guestRunning(ctx, rdom))
	_, serr := d.src.hv.DomainInfo(ctx, g.Domain())
	s.SourceRunning = ptr(serr == nil)
	s.Summary = fmt.Sprintf("dom %d -> host B dom %d over TCP (loopback): %d precopy rounds, %d pages (%d MiB) while it dirtied memory; downtime %.2f ms; source destroyed, guest counts on (%d -> %d)",
		g.Domain(), rdom, r.Rounds, r.Pages, r.Bytes>>20, s.PauseMS, before, *s.CounterAfter)
	if *s.SourceRunning {
		return errors.New("source domain still exists after a completed migration")
	}
	return nil
}

// cutConn fails every write once limit bytes were written, and closes the
// connection: a link that drops mid-transfer.
type cutConn struct {
	net.Conn
	mu      sync.Mutex
	limit   int64
	written int64
}

func (c *cutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.written+int64(len(p)) > c.limit {
		n := int(max(c.limit-c.written, 0))
		_, _ = c.Conn.Write(p[:n])
		c.written = c.limit
		c.Conn.Close()
		return n, fmt.Errorf("link cut after %d bytes: %w", c.limit, net.ErrClosed)
	}
	n, err := c.Conn.Write(p)
	c.written += int64(n)
	return n, err
}

func (d *demo) cutMigration(ctx context.Context, s *demoStep) error {
	g := d.seed
	s.Domain, s.GuestType = int(g.Domain()), "pv"
	limit := int64(d.pages()) * xensim.PageSize / 2
	before := g.Counter()
	_, _, err, rerr := d.migrate(ctx, g, &checkpoint.SaveOptions{Live: true}, func(c net.Conn) io.ReadWriter {
		return &cutConn{Conn: c, limit: limit}
	})
	if err == nil {
		return errors.New("a migration over a cut link succeeded")
	}
	s.Error = err.Error()
	if err := g.WaitCounter(ctx, before+5); err != nil {
		return fmt.Errorf("source guest stopped after the cut: %w", err)
	}
	s.CounterBefore, s.CounterAfter = ptr(before), ptr(g.Counter())
	s.SourceRunning = ptr(d.src.guestRunning(ctx, g.Domain()))
	s.DomainsLeft = ptr(d.dst.guestDomains() - 1) // minus the guest migrated before
	s.Summary = fmt.Sprintf("dom %d: link cut after %d MiB of the stream; the source was resumed and counts on (%d -> %d); host B destroyed its half-built domain (%d left); receiver: %s",
		g.Domain(), limit>>20, before, *s.CounterAfter, *s.DomainsLeft, oneLine(rerr))
	if !*s.SourceRunning || *s.DomainsLeft != 0 {
		return errors.New("the cut migration left the source stopped or a domain on the receiver")
	}
	return nil
}

func (d *demo) remus(ctx context.Context, s *demoStep) error {
	g := d.seed
	s.Domain, s.GuestType = int(g.Domain()), "pv"
	client, server, err := loopback(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	defer server.Close()
	rctx, lose := context.WithCancel(ctx)
	defer lose()
	var pauses []float64
	var mu sync.Mutex
	opts := &checkpoint.RemusOptions{Interval: d.o.interval, Save: checkpoint.SaveOptions{
		Live: true, // the first, full checkpoint is copied while the guest runs
		Progress: func(p checkpoint.Progress) {
			if p.Phase != checkpoint.PhaseResumed {
				return
			}
			mu.Lock()
			pauses = append(pauses, ms(p.PauseTime))
			if len(pauses) >= d.o.epochs {
				lose() // the primary's link is lost after this epoch
			}
			mu.Unlock()
		}}}
	var wg sync.WaitGroup
	var bdom domctl.DomID
	var berr error
	wg.Go(func() {
		bdom, berr = d.dst.ctl.RemusBackup(ctx, server, nil)
	})
	r, perr := d.src.ctl.Remus(rctx, g.Domain(), client, opts)
	client.Close()
	wg.Wait()
	if berr != nil {
		return fmt.Errorf("backup: %w", berr)
	}
	if perr != nil && !errors.Is(perr, context.Canceled) {
		return fmt.Errorf("primary: %w", perr)
	}
	// Losing the link mid-epoch must leave the primary running; should the
	// library not have resumed it, the command does (and says so).
	if d.a.ensureResumed(ctx, d.src, g.Domain(), checkpoint.ResumeOptions{}, 3*time.Second) {
		s.Error = "the primary was left suspended after its link was lost; resumed by the command"
	}
	mu.Lock()
	s.EpochPausesMS = append([]float64(nil), pauses...)
	mu.Unlock()
	s.Checkpoints, s.NewDomain = r.Checkpoints, int(bdom)
	s.PauseMS = ms(r.MaxPause)
	s.SourceRunning = ptr(d.src.guestRunning(ctx, g.Domain()))
	s.GuestRunning = ptr(bdom != 0 && d.dst.guestRunning(ctx, bdom))
	sorted := append([]float64(nil), s.EpochPausesMS...)
	sort.Float64s(sorted)
	median := 0.0
	if len(sorted) > 0 {
		median = sorted[len(sorted)/2]
	}
	s.Summary = fmt.Sprintf("dom %d replicated to host B every %s: %d checkpoints, pause median %.2f ms, max %.2f ms; primary link lost -> backup failed over to dom %d (running: %v); primary resumed after every epoch (running: %v)",
		g.Domain(), d.o.interval, r.Checkpoints, median, s.PauseMS, bdom, *s.GuestRunning, *s.SourceRunning)
	if !*s.GuestRunning || !*s.SourceRunning || r.Checkpoints < 1 {
		return errors.New("remus did not end with a running backup and a running primary")
	}
	return nil
}

// oneLine flattens a (multi-)error into one line.
func oneLine(err error) string {
	if err == nil {
		return "ok"
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "* ", "")), " ")
}

// pauseSummary lists the measured guest pause times of the run.
func (d *demo) pauseSummary() string {
	var parts []string
	for _, s := range d.res.Steps {
		if !s.OK || s.PauseMS == 0 {
			continue
		}
		switch s.Name {
		case "checkpoint-seed", "checkpoint-linux":
			parts = append(parts, fmt.Sprintf("%s %.2f ms", s.Name, s.PauseMS))
		case "save-restore":
			parts = append(parts, fmt.Sprintf("save (stop-and-copy) %.2f ms", s.PauseMS))
		case "live-migration":
			parts = append(parts, fmt.Sprintf("migration downtime %.2f ms", s.PauseMS))
		case "remus":
			sorted := append([]float64(nil), s.EpochPausesMS...)
			sort.Float64s(sorted)
			if len(sorted) > 0 {
				parts = append(parts, fmt.Sprintf("Remus epoch median %.2f ms (max %.2f)", sorted[len(sorted)/2], sorted[len(sorted)-1]))
			}
		}
	}
	return "guest pause times: " + strings.Join(parts, ", ")
}
