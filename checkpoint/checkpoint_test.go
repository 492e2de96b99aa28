package checkpoint_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xensim"
)

var (
	kinds       = []xensim.Kind{xensim.PV64, xensim.PV32, xensim.PVH}
	conventions = []xensim.Convention{xensim.ConventionSeed, xensim.ConventionLinux, xensim.ConventionLegacy}
)

// optsFor adds what a toolstack knows about a PVH seed guest: its magic[]
// is not reachable from dom0 (no start_info pointer in its registers), so
// the convention comes from the caller.
func optsFor(k xensim.Kind, conv xensim.Convention) checkpoint.ResumeOptions {
	o := resumeOpts(conv)
	if k == xensim.PVH && conv == xensim.ConventionSeed {
		o.Convention = magic.ConventionSeed
	}
	return o
}

// TestCheckpointConventions: after a checkpoint every guest continues in
// the same domain; seed guests see 0, Linux guests 1, legacy PV guests
// take the slow resume (they see 0 and reconnect). A legacy PVH guest is
// refused before it is touched: told 0 in its own domain an HVM guest
// takes the restore path and crashes (Linux panics in register_vcpu_info,
// seen on real Xen in the lab), so there is no slow resume for it.
func TestCheckpointConventions(t *testing.T) {
	forEachGuest(t, func(t *testing.T, e *env, g *xensim.Guest, k xensim.Kind, conv xensim.Convention) {
		ctx := testCtx(t)
		before := g.Counter()
		reconnects := g.Reconnects()
		var img bytes.Buffer
		res, err := e.c.Checkpoint(ctx, g.Domain(), &img, &checkpoint.SaveOptions{Resume: optsFor(k, conv)})
		if k == xensim.PVH && conv == xensim.ConventionLegacy {
			require.ErrorIs(t, err, checkpoint.ErrNotCancellable)
			assert.Zero(t, g.Suspends(), "refused before asking the guest to suspend")
			assert.Zero(t, img.Len())
			e.requireRunning(t, g)
			return
		}
		require.NoError(t, err)
		assert.Positive(t, img.Len())
		assert.EqualValues(t, 64, res.Pages)
		assert.Equal(t, uint64(1), g.Suspends())
		e.requireRunning(t, g)
		assert.GreaterOrEqual(t, g.Counter(), before)
		switch conv {
		case xensim.ConventionSeed:
			assert.Equal(t, magic.ConventionSeed, res.Convention)
			assert.EqualValues(t, 0, g.LastSuspendReturn())
			assert.Equal(t, reconnects, g.Reconnects())
		case xensim.ConventionLinux:
			assert.Equal(t, magic.ConventionUpstream, res.Convention)
			assert.EqualValues(t, 1, g.LastSuspendReturn())
			assert.Equal(t, reconnects, g.Reconnects())
		case xensim.ConventionLegacy:
			assert.Equal(t, magic.ConventionNone, res.Convention)
			assert.EqualValues(t, 0, g.LastSuspendReturn())
			assert.Equal(t, reconnects+1, g.Reconnects())
		}
		assert.Equal(t, xensim.GuestRunning, g.State())
		// A second checkpoint works too: XS_RESUME re-armed @releaseDomain.
		_, err = e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, &checkpoint.SaveOptions{Resume: optsFor(k, conv)})
		require.NoError(t, err)
		assert.Equal(t, uint64(2), g.Suspends())
		e.requireRunning(t, g)
	})
}

// forEachGuest runs f in parallel subtests on a fresh host with a running
// guest of every kind and convention.
func forEachGuest(t *testing.T, f func(*testing.T, *env, *xensim.Guest, xensim.Kind, xensim.Convention)) {
	for _, k := range kinds {
		for _, conv := range conventions {
			t.Run(k.String()+"/"+conv.String(), func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, nil)
				f(t, e, e.guest(t, xensim.GuestConfig{Kind: k, Convention: conv}), k, conv)
			})
		}
	}
}

// TestSlowResumeSMP: the slow resume of a multi-vCPU PV guest resets its
// secondary vCPUs and the guest carries on.
func TestSlowResumeSMP(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{Convention: xensim.ConventionLegacy, VCPUs: 4})
	res, err := e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, &checkpoint.SaveOptions{Resume: checkpoint.ResumeOptions{SlowResume: true}})
	require.NoError(t, err)
	assert.Equal(t, magic.ConventionNone, res.Convention)
	e.requireRunning(t, g)
	assert.EqualValues(t, 1, g.Reconnects())
}

// TestLegacyWithoutSlowResume: a guest with no convention is refused with
// ErrNotCancellable and, since it had to be suspended to find out, brought
// back with the slow resume anyway.
func TestLegacyWithoutSlowResume(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{Convention: xensim.ConventionLegacy})
	_, err := e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, nil)
	require.ErrorIs(t, err, checkpoint.ErrNotCancellable)
	e.requireRunning(t, g)
}

// TestRestoreConventions: a checkpoint image restores into a new domain
// whose guest continues from the snapshot (same kernel, counter carried
// over) and sees the restore value of its convention.
func TestRestoreConventions(t *testing.T) {
	forEachGuest(t, func(t *testing.T, e *env, g *xensim.Guest, k xensim.Kind, conv xensim.Convention) {
		ctx := testCtx(t)
		var img bytes.Buffer
		// A legacy PVH guest cannot continue after a checkpoint
		// (TestCheckpointConventions): image it with a save instead.
		inPlace := !(k == xensim.PVH && conv == xensim.ConventionLegacy)
		id := g.ID()
		var err error
		if inPlace {
			_, err = e.c.Checkpoint(ctx, g.Domain(), &img, &checkpoint.SaveOptions{Resume: optsFor(k, conv)})
		} else {
			_, err = e.c.Save(ctx, g.Domain(), &img, &checkpoint.SaveOptions{Resume: optsFor(k, conv)})
		}
		require.NoError(t, err)
		snapCounter := g.Counter()
		dom, err := e.c.Restore(ctx, bytes.NewReader(img.Bytes()), &checkpoint.RestoreOptions{Resume: optsFor(k, conv)})
		require.NoError(t, err)
		require.NotEqual(t, g.Domain(), dom)
		r := e.host.Guest(dom)
		assert.Equal(t, id, r.ID(), "same kernel")
		require.NoError(t, r.WaitConnected(ctx))
		e.requireRunning(t, r)
		assert.Equal(t, xensim.GuestRunning, r.State())
		if conv == xensim.ConventionSeed {
			assert.Positive(t, r.LastSuspendReturn())
		} else {
			assert.EqualValues(t, 0, r.LastSuspendReturn())
		}
		assert.Positive(t, r.Reconnects())
		if k == xensim.PVH {
			// The new HVM domain's reserved grant entry lets dom0's
			// xenstored map its store ring (xc_dom_gnttab_seed).
			store, err := e.hv.HVMParam(ctx, dom, abi.HVM_PARAM_STORE_PFN)
			require.NoError(t, err)
			ge, err := e.host.GrantEntry(dom, abi.GNTTAB_RESERVED_XENSTORE)
			require.NoError(t, err)
			assert.Equal(t, xensim.GrantEntry{Flags: abi.GTF_permit_access, Domain: 0, Frame: uint32(store)}, ge)
		}
		if inPlace {
			// The original keeps running too (it was a checkpoint).
			e.requireRunning(t, g)
			assert.GreaterOrEqual(t, g.Counter(), snapCounter)
		}
	})
}

// TestRestoreMemoryEqualsSnapshot: every page of a restored (paused)
// domain equals the page in the image, byte for byte.
//
// With identity PV frames, so that page tables compare as written; with
// machine frames they hold other MFNs after restore, which
// pv_restore_test.go checks by re-saving and comparing normalised images.
func TestRestoreMemoryEqualsSnapshot(t *testing.T) {
	e := newEnvOn(t, &xensim.Config{PVFrames: xensim.PVFramesIdentity}, nil)
	g := e.guest(t, xensim.GuestConfig{Pages: 256, DirtyRate: 5000})
	ctx := testCtx(t)
	var img bytes.Buffer
	_, err := e.c.Checkpoint(ctx, g.Domain(), &img, nil)
	require.NoError(t, err)
	pages := imagePages(t, img.Bytes())
	require.Len(t, pages, 256)
	dom, err := e.c.Restore(ctx, bytes.NewReader(img.Bytes()), &checkpoint.RestoreOptions{Paused: true})
	require.NoError(t, err)
	gfns := make([]uint64, 0, len(pages))
	for pfn := range pages {
		gfns = append(gfns, pfn)
	}
	m, err := e.hv.MapForeign(ctx, dom, domctl.ProtRead, gfns)
	require.NoError(t, err)
	defer m.Close()
	mem := m.Bytes()
	types := make([]uint32, len(gfns))
	require.NoError(t, e.hv.PageFrameTypes(ctx, dom, gfns, types))
	for i, pfn := range gfns {
		if pfn == simStartInfoPFN {
			// Restore gives the guest a new store event channel in its
			// start_info, as libxc's process_start_info does.
			continue
		}
		want, got := pages[pfn], mem[i*4096:(i+1)*4096]
		if types[i]&abi.XEN_DOMCTL_PFINFO_LTABTYPE_MASK == abi.XEN_DOMCTL_PFINFO_L4TAB {
			// Xen's L4 slots (256 to 271) are the hypervisor's, not the
			// guest's: restore leaves them empty and pinning the table
			// fills them with the new domain's entries.
			want, got = bytes.Clone(want), bytes.Clone(got)
			clear(want[256*8 : 272*8])
			clear(got[256*8 : 272*8])
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("pfn %d differs after restore", pfn)
		}
	}
	info, err := e.hv.DomainInfo(ctx, dom)
	require.NoError(t, err)
	assert.True(t, info.Paused())
}

// simStartInfoPFN is where xensim's PV guests keep start_info.
const simStartInfoPFN = 1

// TestSaveThenRestore: Save destroys the source only after the image is
// on disk; the restored guest continues.
func TestSaveThenRestore(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{})
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "guest.xl")
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = e.c.Save(ctx, g.Domain(), f, nil)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	assert.Empty(t, e.domains(), "source destroyed")
	counter := g.Counter()

	f, err = os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	dom, err := e.c.Restore(ctx, f, nil)
	require.NoError(t, err)
	r := e.host.Guest(dom)
	require.NoError(t, r.WaitCounter(ctx, counter+5))
	e.requireRunning(t, r)
}

// TestSaveWriteFailureResumes: a failing writer leaves the guest running.
func TestSaveWriteFailureResumes(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{})
	_, err := e.c.Save(testCtx(t), g.Domain(), &failWriter{after: 50 << 10}, nil)
	require.ErrorIs(t, err, errDiskFull)
	e.requireRunning(t, g)
	assert.EqualValues(t, 0, g.LastSuspendReturn(), "seed guest saw the cancel value")
}

var errDiskFull = errors.New("disk full")

type failWriter struct{ n, after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n+len(p) > w.after {
		return 0, errDiskFull
	}
	w.n += len(p)
	return len(p), nil
}

// TestBadGuests: each misbehaviour gives its typed error and leaves the
// domain running and unpaused (or gone, for the guest that disappears).
func TestBadGuests(t *testing.T) {
	cases := []struct {
		name string
		b    xensim.Behaviour
		want error
	}{
		{"never-ack", xensim.NeverAcknowledge, checkpoint.ErrNotAcknowledged},
		{"ack-only", xensim.AcknowledgeOnly, checkpoint.ErrNotSuspended},
		{"disappear", xensim.Disappear, checkpoint.ErrDomainGone},
	}
	for _, tc := range cases {
		for _, evtchn := range []bool{false, true} {
			name := tc.name
			if evtchn {
				name += "/evtchn"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				// Short timeouts only for the wait this guest makes run
				// out: a slow acknowledgement under load must not turn
				// ack-only or disappear into never-ack.
				cfg := badGuestConfig(t)
				if tc.b != xensim.NeverAcknowledge {
					cfg.AckTimeout = testConfig(t).AckTimeout
				}
				if tc.b == xensim.Disappear {
					// @releaseDomain ends the wait at once; with an event
					// channel only the timeout's last look sees the domain
					// gone.
					cfg.SuspendTimeout = testConfig(t).SuspendTimeout
					if evtchn {
						cfg.SuspendTimeout = 2 * time.Second
					}
				}
				e := newEnv(t, cfg)
				g := e.guest(t, xensim.GuestConfig{Behaviour: tc.b, SuspendEventChannel: evtchn})
				_, err := e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, nil)
				want := tc.want
				if evtchn && tc.b == xensim.NeverAcknowledge {
					// An event-channel notification has no acknowledgement:
					// a guest that ignores it simply never suspends.
					want = checkpoint.ErrNotSuspended
				}
				require.ErrorIs(t, err, want)
				if tc.b == xensim.Disappear {
					assert.Empty(t, e.domains())
					return
				}
				e.requireRunning(t, g)
				if !evtchn {
					v, err := e.xs.Read(testCtx(t), "/local/domain/"+itoa(g.Domain())+"/control/shutdown")
					require.NoError(t, err)
					assert.Empty(t, string(v), "request withdrawn")
				}
			})
		}
	}
	t.Run("crash", func(t *testing.T) {
		e := newEnv(t, nil)
		g := e.guest(t, xensim.GuestConfig{Behaviour: xensim.CrashOnSuspend})
		_, err := e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, nil)
		var se *checkpoint.ShutdownError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, domctl.ShutdownCrash, se.Reason)
		assert.Equal(t, g.Domain(), se.Domain)
	})
	t.Run("corrupt-return", func(t *testing.T) {
		// The toolstack cannot see a guest mishandle the value it wrote;
		// the checkpoint itself succeeds and the guest runs on.
		e := newEnv(t, nil)
		g := e.guest(t, xensim.GuestConfig{Behaviour: xensim.CorruptReturn})
		_, err := e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, nil)
		require.NoError(t, err)
		e.requireRunning(t, g)
	})
	t.Run("feature-suspend-0", func(t *testing.T) {
		e := newEnv(t, nil)
		g := e.guest(t, xensim.GuestConfig{})
		ctx := testCtx(t)
		require.NoError(t, e.xs.Write(ctx, "/local/domain/"+itoa(g.Domain())+"/control/feature-suspend", []byte("0")))
		_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
		require.ErrorIs(t, err, checkpoint.ErrSuspendUnsupported)
		assert.Zero(t, g.Suspends())
		e.requireRunning(t, g)
	})
	t.Run("feature-suspend-empty", func(t *testing.T) {
		// As after xl restore or migrate: libxl re-creates the node empty
		// and Linux does not write it again. Empty means unknown, so the
		// request is made (and this guest honours it).
		e := newEnv(t, nil)
		g := e.guest(t, xensim.GuestConfig{})
		ctx := testCtx(t)
		require.NoError(t, e.xs.Write(ctx, "/local/domain/"+itoa(g.Domain())+"/control/feature-suspend", nil))
		_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
		require.NoError(t, err)
		assert.Equal(t, 1, int(g.Suspends()))
		e.requireRunning(t, g)
	})
}

// TestBusy: a second operation on a domain is refused, not interleaved.
func TestBusy(t *testing.T) {
	// The first operation is known to hold the domain once it has
	// written its request: a loop of second attempts could itself win the
	// domain first, every time, on a loaded machine.
	cfg := badGuestConfig(t)
	started := make(chan struct{})
	cfg.Logger = atStep("requested suspend", func() { close(started) })
	e := newEnv(t, cfg)
	g := e.guest(t, xensim.GuestConfig{Behaviour: xensim.NeverAcknowledge})
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var firstErr error
	firstDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(firstDone)
		_, firstErr = e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
	}()
	select {
	case <-started:
	case <-firstDone:
		t.Fatalf("the first checkpoint ended before writing its request: %v", firstErr)
	}
	_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
	require.ErrorIs(t, err, checkpoint.ErrBusy)
	wg.Wait()
	require.ErrorIs(t, firstErr, checkpoint.ErrNotAcknowledged)
}

// TestSuspendEventChannel: the guest's suspend event channel is used, under
// the lock file, which is removed afterwards.
func TestSuspendEventChannel(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{SuspendEventChannel: true})
	ctx := testCtx(t)
	for range 3 {
		_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
		require.NoError(t, err)
	}
	assert.Equal(t, uint64(3), g.Suspends())
	e.requireRunning(t, g)
	ents, err := os.ReadDir(e.cfg.LockDir)
	require.NoError(t, err)
	assert.Empty(t, ents, "lock file released")
	// control/shutdown was never used.
	v, err := e.xs.Read(ctx, "/local/domain/"+itoa(g.Domain())+"/control/shutdown")
	require.NoError(t, err)
	assert.Empty(t, string(v))
}

// TestSuspendEventChannelLocked: another holder of the lock file makes the
// operation fail with ErrBusy before the guest is touched.
func TestSuspendEventChannelLocked(t *testing.T) {
	if !lockingWorks {
		t.Skip("no fcntl locks on this platform")
	}
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{SuspendEventChannel: true})
	release := holdLock(t, filepath.Join(e.cfg.LockDir, "suspend-evtchn-"+itoa(g.Domain())+".lock"))
	defer release()
	_, err := e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, nil)
	require.ErrorIs(t, err, checkpoint.ErrBusy)
	assert.Zero(t, g.Suspends())
	e.requireRunning(t, g)
}

// TestResumeNotSuspended: Resume refuses a running domain.
func TestResumeNotSuspended(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{})
	_, err := e.c.Resume(testCtx(t), g.Domain(), nil)
	require.ErrorIs(t, err, checkpoint.ErrNotSuspended)
	e.requireRunning(t, g)
}

// TestSuspendResume: the two halves by hand.
func TestSuspendResume(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{Convention: xensim.ConventionLinux})
	ctx := testCtx(t)
	require.NoError(t, e.c.Suspend(ctx, g.Domain()))
	info, err := e.hv.DomainInfo(ctx, g.Domain())
	require.NoError(t, err)
	require.True(t, info.Suspended())
	_, err = e.c.Resume(ctx, g.Domain(), nil)
	require.ErrorIs(t, err, checkpoint.ErrNotCancellable, "no evidence for a Linux guest without its ELF note")
	conv, err := e.c.Resume(ctx, g.Domain(), &checkpoint.ResumeOptions{Notes: &magic.Notes{SuspendCancel: 1}})
	require.NoError(t, err)
	assert.Equal(t, magic.ConventionUpstream, conv)
	e.requireRunning(t, g)
	assert.EqualValues(t, 1, g.LastSuspendReturn())
}

// TestLiveCheckpointDirtyGuest: a live checkpoint of a guest dirtying
// memory runs precopy rounds and reports progress.
func TestLiveCheckpointDirtyGuest(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{Pages: 2048, DirtyRate: 20000})
	var events []checkpoint.Progress
	res, err := e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, &checkpoint.SaveOptions{
		Live: true, MaxDowntime: -1, DirtyPageThreshold: 1, MaxIterations: 3,
		Progress: func(p checkpoint.Progress) { events = append(events, p) },
	})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, res.Pages, uint64(2048))
	assert.Positive(t, res.Rounds)
	assert.LessOrEqual(t, res.Rounds, 3, "MaxIterations bounds the rounds")
	require.NotEmpty(t, events)
	assert.Equal(t, checkpoint.PhaseDone, events[len(events)-1].Phase)
	var phases []checkpoint.Phase
	for _, ev := range events {
		phases = append(phases, ev.Phase)
	}
	assert.Contains(t, phases, checkpoint.PhasePrecopy)
	assert.Contains(t, phases, checkpoint.PhaseSuspended)
	assert.Contains(t, phases, checkpoint.PhaseResumed)
	e.requireRunning(t, g)
}

// TestPVHWithoutCallbackIRQ: a PVH guest is asked to suspend (no device
// model, no remote shutdown) and so is always inside its suspend
// hypercall, even when HVM_PARAM_CALLBACK_IRQ is 0, as a Linux using
// per-vCPU upcall vectors may leave it: the cancel value is written. For an
// HVM guest (libxl type "hvm") with the IRQ 0 there is no hypercall to
// return from: it is suspended by remote shutdown and its rax, whatever it
// holds, is left alone.
func TestPVHWithoutCallbackIRQ(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{Kind: xensim.PVH, Convention: xensim.ConventionLinux})
	ctx := testCtx(t)
	dom := g.Domain()
	require.NoError(t, e.xs.Write(ctx, "/libxl/"+itoa(dom)+"/type", []byte("pvh")))
	require.NoError(t, e.hv.SetHVMParam(ctx, dom, abi.HVM_PARAM_CALLBACK_IRQ, 0))
	opts := resumeOpts(xensim.ConventionLinux)

	res, err := e.c.Checkpoint(ctx, dom, &bytes.Buffer{}, &checkpoint.SaveOptions{Resume: opts})
	require.NoError(t, err)
	e.requireRunning(t, g)
	assert.EqualValues(t, 1, g.Suspends(), "xenstore path: the guest made the suspend hypercall")
	assert.EqualValues(t, 1, g.LastSuspendReturn(), "the Linux cancel value, whatever the callback IRQ")
	assert.Equal(t, magic.ConventionUpstream, res.Convention)

	// The same guest as libxl type "hvm": suspended by remote shutdown,
	// resumed by resumedomain alone; rax keeps what it holds.
	require.NoError(t, e.xs.Write(ctx, "/libxl/"+itoa(dom)+"/type", []byte("hvm")))
	const marker = 0x5eed
	require.NoError(t, e.c.Suspend(ctx, dom))
	assert.EqualValues(t, 1, g.Suspends(), "remote shutdown: no hypercall made")
	vc, err := e.hv.VCPUContext(ctx, dom, 0, 8)
	require.NoError(t, err)
	vc.SetRAX(marker)
	require.NoError(t, e.hv.SetVCPUContext(ctx, dom, 0, vc))
	_, err = e.c.Resume(ctx, dom, &opts)
	require.NoError(t, err)
	e.requireRunning(t, g)
	vc, err = e.hv.VCPUContext(ctx, dom, 0, 8)
	require.NoError(t, err)
	assert.EqualValues(t, marker, vc.RAX(), "resume left rax alone")
}
