package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"slices"
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

// msgLog is a slog.Handler that records every message the Controller logs.
type msgLog struct {
	mu   *sync.Mutex
	msgs *[]string
}

func newMsgLog() (*slog.Logger, func() []string) {
	h := msgLog{mu: new(sync.Mutex), msgs: new([]string)}
	return slog.New(h), func() []string {
		h.mu.Lock()
		defer h.mu.Unlock()
		return slices.Clone(*h.msgs)
	}
}

func (h msgLog) Enabled(context.Context, slog.Level) bool { return true }

func (h msgLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	*h.msgs = append(*h.msgs, r.Message)
	h.mu.Unlock()
	return nil
}

func (h msgLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h msgLog) WithGroup(string) slog.Handler      { return h }

// TestEvtchnSuspendWatchesReleaseDomain: after notifying the suspend event
// channel the wait also follows @releaseDomain, as the xenstore path does,
// so a guest that crashes or vanishes instead of suspending (Xen then
// raises VIRQ_DOM_EXC, not the suspend channel) is reported with its typed
// error at once, not after SuspendTimeout. The timeout here outlasts the
// test's ctx: without the watch the error would be the ctx's.
func TestEvtchnSuspendWatchesReleaseDomain(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    xensim.Behaviour
		kind xensim.Kind
	}{
		{"crash", xensim.CrashOnSuspend, xensim.PV64},
		{"crash/pvh", xensim.CrashOnSuspend, xensim.PVH},
		{"disappear", xensim.Disappear, xensim.PV64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.SuspendTimeout = 10 * time.Minute
			e := newEnv(t, &cfg)
			g := e.guest(t, xensim.GuestConfig{Kind: tc.kind, Behaviour: tc.b, SuspendEventChannel: true})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, &checkpoint.SaveOptions{Resume: optsFor(tc.kind, xensim.ConventionSeed)})
			require.Error(t, err)
			require.NotErrorIs(t, err, context.DeadlineExceeded, "the wait missed @releaseDomain")
			if tc.b == xensim.Disappear {
				require.ErrorIs(t, err, checkpoint.ErrDomainGone)
				return
			}
			var se *checkpoint.ShutdownError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, domctl.ShutdownCrash, se.Reason)
		})
	}
}

// TestEvtchnTimeoutLeavesGuestRunning: a notification on the suspend event
// channel cannot be withdrawn. When the wait for SHUTDOWN_suspend times
// out, the operation fails with ErrNotSuspended and a guard keeps the
// domain busy; a guest that suspends late is resumed by it.
func TestEvtchnTimeoutLeavesGuestRunning(t *testing.T) {
	cfg := testConfig(t)
	cfg.SuspendTimeout = 300 * time.Millisecond
	e := newEnv(t, &cfg)
	// A PVH guest that ignores the notification (it is suspended late
	// below by a remote shutdown: registers stay as they are). It has a
	// cancel convention: an HVM guest without one is refused up front.
	g := e.guest(t, xensim.GuestConfig{Kind: xensim.PVH, Convention: xensim.ConventionLinux, Behaviour: xensim.NeverAcknowledge, SuspendEventChannel: true})
	ctx := testCtx(t)
	opts := &checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)}
	_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, opts)
	require.ErrorIs(t, err, checkpoint.ErrNotSuspended)
	_, err = e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, opts)
	require.ErrorIs(t, err, checkpoint.ErrBusy, "the guard holds the domain")

	// The guest suspends after all: the guard resumes it.
	require.NoError(t, e.hv.RemoteShutdown(ctx, g.Domain(), domctl.ShutdownSuspend))
	require.NoError(t, e.c.Wait(ctx))
	e.requireRunning(t, g)
	_, err = e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, opts)
	require.ErrorIs(t, err, checkpoint.ErrNotSuspended, "the guard released the domain")
	require.NoError(t, e.c.Wait(ctx))
}

// TestEvtchnCancel: ctx ends while waiting after the notification; the call
// returns the ctx's error and the guest keeps running.
func TestEvtchnCancel(t *testing.T) {
	cfg := testConfig(t)
	cfg.SuspendTimeout = time.Minute
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	cfg.Logger = atStep("notified suspend event channel", cancel)
	e := newEnv(t, &cfg)
	g := e.guest(t, xensim.GuestConfig{Behaviour: xensim.NeverAcknowledge, SuspendEventChannel: true})
	t0 := time.Now()
	_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(t0), 30*time.Second)
	e.requireRunning(t, g)
}

// TestSuspendWithoutPVDrivers: an HVM guest without PV drivers
// (HVM_PARAM_CALLBACK_IRQ 0, no control/feature-suspend, deaf to
// control/shutdown) is suspended by SCHEDOP_remote_shutdown, as libxl does,
// and so is one in an ACPI sleep state even with an event channel. The
// guest is never asked (control/shutdown untouched), no acknowledgement is
// reported, no cancel convention is needed, and it runs on. A PVH guest
// (libxl type "pvh") is never suspended that way: it gets the xenstore
// request, which this deaf guest ignores.
func TestSuspendWithoutPVDrivers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		irq      uint64
		sleep    uint64
		evtchn   bool
		pvh      bool
		wantErr  error
		features bool
	}{
		{name: "no-callback-irq", irq: 0},
		{name: "acpi-sleep", irq: 1, sleep: 3, evtchn: true, features: true},
		{name: "pvh", irq: 0, pvh: true, wantErr: checkpoint.ErrNotAcknowledged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(t)
			cfg.RequireFeatureSuspend = !tc.features && tc.wantErr == nil // the guest is not asked
			log, msgs := newMsgLog()
			cfg.Logger = log
			if tc.wantErr != nil {
				cfg.AckTimeout = 200 * time.Millisecond
			}
			e := newEnv(t, &cfg)
			gc := xensim.GuestConfig{Kind: xensim.PVH, Behaviour: xensim.NeverAcknowledge, SuspendEventChannel: tc.evtchn}
			var opts *checkpoint.SaveOptions
			if tc.pvh {
				// A PVH guest is always in its hypercall once suspended,
				// so it needs a convention to be checkpointed at all.
				gc.Convention = xensim.ConventionLinux
				opts = &checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)}
			}
			g := e.guest(t, gc)
			ctx := testCtx(t)
			dom := g.Domain()
			dp := "/local/domain/" + itoa(dom)
			require.NoError(t, e.hv.SetHVMParam(ctx, dom, abi.HVM_PARAM_CALLBACK_IRQ, tc.irq))
			require.NoError(t, e.hv.SetHVMParam(ctx, dom, abi.HVM_PARAM_ACPI_S_STATE, tc.sleep))
			if !tc.features {
				require.NoError(t, e.xs.Remove(ctx, dp+"/control/feature-suspend"))
			}
			if tc.pvh {
				require.NoError(t, e.xs.Write(ctx, "/libxl/"+itoa(dom)+"/type", []byte("pvh")))
			}
			var img bytes.Buffer
			res, err := e.c.Checkpoint(ctx, dom, &img, opts)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				e.requireRunning(t, g)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, magic.ConventionNone, res.Convention, "nothing in the guest reads a return value")
			assert.Zero(t, g.Suspends(), "the guest made no suspend hypercall")
			assert.Contains(t, msgs(), "suspended by remote shutdown (no PV drivers)")
			assert.NotContains(t, msgs(), "guest acknowledged suspend")
			assert.NotContains(t, msgs(), "requested suspend")
			v, err := e.xs.Read(ctx, dp+"/control/shutdown")
			if !errors.Is(err, fs.ErrNotExist) {
				require.NoError(t, err)
				assert.Empty(t, string(v), "control/shutdown untouched")
			}
			e.requireRunning(t, g)
			if tc.name != "no-callback-irq" {
				return
			}
			// The image restores, and the guest counts on from where the
			// snapshot left it.
			at := g.Counter()
			rdom, err := e.c.Restore(ctx, bytes.NewReader(img.Bytes()), nil)
			require.NoError(t, err)
			rg := e.host.Guest(rdom)
			require.NoError(t, rg.WaitCounter(ctx, at+2))
		})
	}
}

// TestSuspendDomainGoneBeforeRequest: a guest destroyed between the
// Controller's first look and its request gives ErrDomainGone on every
// path, not an untyped hypervisor error.
func TestSuspendDomainGoneBeforeRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kind   xensim.Kind
		evtchn bool
		irq    uint64
	}{
		{"xenstore", xensim.PV64, false, 1},
		{"evtchn", xensim.PV64, true, 1},
		{"remote", xensim.PVH, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			g := e.guest(t, xensim.GuestConfig{Kind: tc.kind, SuspendEventChannel: tc.evtchn})
			ctx := testCtx(t)
			dom := g.Domain()
			if tc.kind == xensim.PVH {
				require.NoError(t, e.hv.SetHVMParam(ctx, dom, abi.HVM_PARAM_CALLBACK_IRQ, tc.irq))
			}
			// The hook runs after the Controller's checks and before the
			// request: the domain goes away in between.
			e.c = checkpoint.New(e.hv, e.xs, &checkpoint.Config{
				AckTimeout: e.cfg.AckTimeout, SuspendTimeout: e.cfg.SuspendTimeout, LockDir: e.cfg.LockDir,
				Hooks: destroyHook{e: e},
			})
			err := e.c.Suspend(ctx, dom)
			require.ErrorIs(t, err, checkpoint.ErrDomainGone)
		})
	}
}

// destroyHook destroys the domain from PreSuspend.
type destroyHook struct {
	checkpoint.NopHooks
	e *env
}

func (h destroyHook) PreSuspend(ctx context.Context, dom domctl.DomID) error {
	return h.e.hv.DestroyDomain(ctx, dom)
}

// TestCrashWhileAwaitingAck: a guest that crashes while the suspend
// request is pending is reported with its reason at once (through
// @releaseDomain), not as ErrNotAcknowledged after AckTimeout, and the
// request is withdrawn.
func TestCrashWhileAwaitingAck(t *testing.T) {
	cfg := testConfig(t)
	cfg.AckTimeout = 10 * time.Minute // outlasts the test's ctx
	var e *env
	var dom domctl.DomID
	cfg.Logger = atStep("requested suspend", func() {
		require.NoError(t, e.hv.RemoteShutdown(context.Background(), dom, domctl.ShutdownCrash))
	})
	e = newEnv(t, &cfg)
	g := e.guest(t, xensim.GuestConfig{Behaviour: xensim.NeverAcknowledge})
	dom = g.Domain()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := e.c.Suspend(ctx, dom)
	var se *checkpoint.ShutdownError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, domctl.ShutdownCrash, se.Reason)
	v, err := e.xs.Read(testCtx(t), "/local/domain/"+itoa(dom)+"/control/shutdown")
	require.NoError(t, err)
	assert.Empty(t, string(v), "request withdrawn")
}
