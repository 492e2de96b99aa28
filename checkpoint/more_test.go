package checkpoint_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xensim"
)

// TestImagesPassVerifyStreamV2: Xen's own stream checker accepts the
// images of every guest kind, plain and live.
func TestImagesPassVerifyStreamV2(t *testing.T) {
	for _, k := range kinds {
		for _, live := range []bool{false, true} {
			name := k.String()
			if live {
				name += "/live"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, nil)
				g := e.guest(t, xensim.GuestConfig{Kind: k, DirtyRate: 1000})
				var img bytes.Buffer
				_, err := e.c.Checkpoint(testCtx(t), g.Domain(), &img, &checkpoint.SaveOptions{Live: live, Resume: optsFor(k, xensim.ConventionSeed)})
				require.NoError(t, err)
				verifyImage(t, img.Bytes())
			})
		}
	}
}

// recHooks records the hook calls and can fail one.
type recHooks struct {
	mu    sync.Mutex
	calls []string
	fail  string
}

var errHookFailed = errors.New("hook failed")

func (h *recHooks) hook(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, name)
	if h.fail == name {
		return errHookFailed
	}
	return nil
}

func (h *recHooks) PreSuspend(context.Context, domctl.DomID) error  { return h.hook("PreSuspend") }
func (h *recHooks) PostSuspend(context.Context, domctl.DomID) error { return h.hook("PostSuspend") }
func (h *recHooks) PreResume(context.Context, domctl.DomID) error   { return h.hook("PreResume") }
func (h *recHooks) PostRestore(context.Context, domctl.DomID) error { return h.hook("PostRestore") }

func TestHooks(t *testing.T) {
	for _, tc := range []struct {
		fail      string
		calls     []string
		suspended bool // the guest went through a suspend
	}{
		{"", []string{"PreSuspend", "PostSuspend", "PreResume", "PostRestore"}, true},
		{"PreSuspend", []string{"PreSuspend"}, false},
		{"PostSuspend", []string{"PreSuspend", "PostSuspend", "PreResume"}, true},
		{"PreResume", []string{"PreSuspend", "PostSuspend", "PreResume"}, true},
	} {
		t.Run("fail="+tc.fail, func(t *testing.T) {
			h := &recHooks{fail: tc.fail}
			cfg := testConfig(t)
			cfg.Hooks = h
			e := newEnv(t, &cfg)
			g := e.guest(t, xensim.GuestConfig{})
			ctx := testCtx(t)
			var img bytes.Buffer
			_, err := e.c.Checkpoint(ctx, g.Domain(), &img, nil)
			if tc.fail == "" {
				require.NoError(t, err)
				_, err = e.c.Restore(ctx, &img, &checkpoint.RestoreOptions{Paused: true})
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, errHookFailed)
			}
			assert.Equal(t, tc.calls, h.calls)
			e.requireRunning(t, g)
			if tc.suspended {
				assert.EqualValues(t, 1, g.Suspends())
			} else {
				assert.Zero(t, g.Suspends())
			}
		})
	}
}

// TestAlreadySuspended: a domain suspended by someone else is refused and
// left for its owner.
func TestAlreadySuspended(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{})
	ctx := testCtx(t)
	require.NoError(t, e.c.Suspend(ctx, g.Domain()))
	_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
	require.ErrorIs(t, err, checkpoint.ErrAlreadySuspended)
	_, err = e.c.Resume(ctx, g.Domain(), nil)
	require.NoError(t, err)
	e.requireRunning(t, g)
	assert.EqualValues(t, 0, g.LastSuspendReturn())
}

// TestMigrateReceiverCuts cuts the receiver's side of the handshake at
// every byte of its messages. Whatever the cut, exactly one copy of the
// guest runs afterwards, unpaused, and nothing else is left on either
// host.
func TestMigrateReceiverCuts(t *testing.T) {
	src, dst := newEnv(t, nil), newEnv(t, nil)
	// Measure the receiver's messages once.
	probe := src.guest(t, xensim.GuestConfig{Pages: 16})
	total := receiverBytes(t, src, dst, probe.Domain(), -1)
	for _, d := range dst.domains() {
		require.NoError(t, dst.hv.DestroyDomain(testCtx(t), d))
	}
	waitNoDomains(t, dst)
	require.Greater(t, total, 50)

	g := src.guest(t, xensim.GuestConfig{Pages: 16})
	id := g.ID()
	for limit := 0; limit < total; limit++ {
		receiverBytes(t, src, dst, g.Domain(), limit)
		srcDoms, dstDoms := src.domains(), dst.domains()
		require.Equal(t, 1, len(srcDoms)+len(dstDoms), "cut at %d: src %v dst %v", limit, srcDoms, dstDoms)
		if len(dstDoms) == 1 {
			// The guest moved: continue from there.
			r := dst.host.Guest(dstDoms[0])
			require.Equal(t, id, r.ID())
			dst.requireRunning(t, r)
			return // later cuts land in the last message only: covered
		}
		src.requireRunning(t, g)
	}
}

// receiverBytes migrates dom with the receiver's writes cut after limit
// bytes (no cut when limit < 0) and returns how many bytes the receiver
// wrote.
func receiverBytes(t *testing.T, src, dst *env, dom domctl.DomID, limit int) int {
	t.Helper()
	ctx := testCtx(t)
	a, b := net.Pipe()
	var rconn io.ReadWriter
	cc := &countConn{Conn: b}
	rconn = cc
	if limit >= 0 {
		rconn = &cutConn{Conn: b, limit: limit}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer b.Close()
		_, _ = dst.c.Receive(ctx, rconn, nil)
	}()
	_, _ = src.c.Migrate(ctx, dom, a, nil)
	a.Close()
	<-done
	return cc.n
}

// TestCancelWhileWaiting: cancelling ctx stops the wait for an
// acknowledgement (the request is withdrawn) and the wait for the suspend
// (a guest that acknowledged but never suspends keeps running).
func TestCancelWhileWaiting(t *testing.T) {
	for _, b := range []xensim.Behaviour{xensim.NeverAcknowledge, xensim.AcknowledgeOnly} {
		t.Run(map[xensim.Behaviour]string{xensim.NeverAcknowledge: "ack", xensim.AcknowledgeOnly: "suspend"}[b], func(t *testing.T) {
			cfg := testConfig(t)
			cfg.AckTimeout, cfg.SuspendTimeout = time.Minute, 200*time.Millisecond
			// Cancel at the step under test, not after a fixed delay (a
			// guest slow to acknowledge under load turned the "suspend"
			// case into the "ack" one): once the request is out, or once
			// the guest has acknowledged it.
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			cfg.Logger = atStep("requested suspend", cancel)
			if b == xensim.AcknowledgeOnly {
				cfg.SuspendTimeout = time.Minute
				cfg.Logger = atStep("guest acknowledged suspend", cancel)
			}
			e := newEnv(t, &cfg)
			g := e.guest(t, xensim.GuestConfig{Behaviour: b})
			t0 := time.Now()
			_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
			require.ErrorIs(t, err, context.Canceled)
			assert.Less(t, time.Since(t0), 30*time.Second)
			if b == xensim.AcknowledgeOnly {
				// The guest may still suspend: a guard keeps the domain
				// busy, ready to resume it.
				_, err = e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, nil)
				require.ErrorIs(t, err, checkpoint.ErrBusy)
			}
			e.requireRunning(t, g)
			v, err := e.xs.Read(testCtx(t), "/local/domain/"+itoa(g.Domain())+"/control/shutdown")
			require.NoError(t, err)
			assert.Empty(t, string(v))
		})
	}
}

// TestXLConfig: a caller's domain config goes into the xl header as is,
// and Restore takes the domain's name from it; a non-JSON config is
// refused before the guest is touched.
func TestXLConfig(t *testing.T) {
	e := newEnv(t, nil)
	g := e.guest(t, xensim.GuestConfig{})
	ctx := testCtx(t)
	cfg := []byte(`{"c_info":{"type":"pv","name":"web1"},"b_info":{"max_vcpus":1,"max_memkb":256,"target_memkb":256},"disks":[]}`)
	var img bytes.Buffer
	_, err := e.c.Checkpoint(ctx, g.Domain(), &img, &checkpoint.SaveOptions{XLConfig: cfg})
	require.NoError(t, err)
	assert.True(t, bytes.Contains(img.Bytes(), cfg), "config stored verbatim")
	dom, err := e.c.Restore(ctx, &img, &checkpoint.RestoreOptions{Paused: true})
	require.NoError(t, err)
	name, err := e.xs.Read(ctx, "/local/domain/"+itoa(dom)+"/name")
	require.NoError(t, err)
	assert.Equal(t, "web1", string(name))

	_, err = e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, &checkpoint.SaveOptions{XLConfig: []byte("name = 'web1'")})
	require.ErrorIs(t, err, checkpoint.ErrBadConfig)
	assert.EqualValues(t, 1, g.Suspends(), "the bad config was refused before suspending")
	e.requireRunning(t, g)
}

// TestMinimalConfig: without XLConfig the xl header carries a config in
// libxl's JSON shape, with the build-info union key libxl reads the type
// from, and PVH told apart from HVM by libxl's /libxl/<domid>/type.
func TestMinimalConfig(t *testing.T) {
	for _, tc := range []struct {
		kind      xensim.Kind
		libxlType string
		want      string
	}{
		{xensim.PV64, "", `"type.pv":{}`},
		{xensim.PVH, "", `"type.hvm":{}`},
		{xensim.PVH, "pvh", `"type.pvh":{}`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			e := newEnv(t, nil)
			g := e.guest(t, xensim.GuestConfig{Kind: tc.kind, VCPUs: 2})
			ctx := testCtx(t)
			if tc.libxlType != "" {
				require.NoError(t, e.xs.Write(ctx, "/libxl/"+itoa(g.Domain())+"/type", []byte(tc.libxlType)))
			}
			var img bytes.Buffer
			_, err := e.c.Checkpoint(ctx, g.Domain(), &img, &checkpoint.SaveOptions{Resume: optsFor(tc.kind, xensim.ConventionSeed)})
			require.NoError(t, err)
			head := string(img.Bytes()[:min(img.Len(), 1024)])
			assert.Contains(t, head, tc.want)
			assert.Contains(t, head, `"avail_vcpus":[0,1]`)
		})
	}
}

// TestWaitDrainsGuards: after an operation cancelled once the guest had
// acknowledged, Wait blocks while the late-suspend guard runs (ctx bounds
// it) and returns once the guard has finished, releasing the domain.
func TestWaitDrainsGuards(t *testing.T) {
	cfg := testConfig(t)
	cfg.AckTimeout, cfg.SuspendTimeout = time.Minute, 500*time.Millisecond
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	cfg.Logger = atStep("guest acknowledged suspend", cancel)
	e := newEnv(t, &cfg)
	g := e.guest(t, xensim.GuestConfig{Behaviour: xensim.AcknowledgeOnly})
	_, err := e.c.Checkpoint(ctx, g.Domain(), &bytes.Buffer{}, nil)
	require.ErrorIs(t, err, context.Canceled)

	short, cancelShort := context.WithTimeout(testCtx(t), 10*time.Millisecond)
	defer cancelShort()
	require.ErrorIs(t, e.c.Wait(short), context.DeadlineExceeded, "the guard is still running")
	require.NoError(t, e.c.Wait(testCtx(t)))
	_, err = e.c.Checkpoint(testCtx(t), g.Domain(), &bytes.Buffer{}, nil)
	require.Error(t, err)
	assert.NotErrorIs(t, err, checkpoint.ErrBusy, "the guard released the domain")
	e.requireRunning(t, g)
}
