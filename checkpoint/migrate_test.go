package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
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

// migrate runs Migrate on src's Controller and Receive on dst's over an
// in-memory connection; wrap may interpose on the sender's side.
func migrate(t *testing.T, src, dst *env, dom domctl.DomID, opts *checkpoint.SaveOptions, ropts *checkpoint.RestoreOptions,
	wrap func(net.Conn) io.ReadWriter) (*checkpoint.Result, error, domctl.DomID, error) {
	t.Helper()
	ctx := testCtx(t)
	a, b := net.Pipe()
	var sconn io.ReadWriter = a
	if wrap != nil {
		sconn = wrap(a)
	}
	var wg sync.WaitGroup
	var rdom domctl.DomID
	var rerr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer b.Close()
		rdom, rerr = dst.c.Receive(ctx, b, ropts)
	}()
	res, err := src.c.Migrate(ctx, dom, sconn, opts)
	a.Close()
	wg.Wait()
	return res, err, rdom, rerr
}

func TestMigrate(t *testing.T) {
	for _, k := range kinds {
		for _, live := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/live=%t", k, live), func(t *testing.T) {
				t.Parallel()
				src, dst := newEnv(t, nil), newEnv(t, nil)
				g := src.guest(t, xensim.GuestConfig{Kind: k, Convention: xensim.ConventionLinux, DirtyRate: 2000, Pages: 512})
				id := g.ID()
				ro := optsFor(k, xensim.ConventionLinux)
				res, err, dom, rerr := migrate(t, src, dst, g.Domain(), &checkpoint.SaveOptions{Live: live, Resume: ro},
					&checkpoint.RestoreOptions{Resume: ro}, nil)
				require.NoError(t, err)
				require.NoError(t, rerr)
				assert.Positive(t, res.Pages)
				assert.Empty(t, src.domains(), "source destroyed")
				r := dst.host.Guest(dom)
				ctx := testCtx(t)
				assert.Equal(t, id, r.ID())
				require.NoError(t, r.WaitConnected(ctx))
				dst.requireRunning(t, r)
				assert.EqualValues(t, 0, r.LastSuspendReturn(), "Linux guest sees 0 in the new domain")
			})
		}
	}
}

// cutConn fails every write once limit bytes have been written, and closes
// the connection, like a network drop.
type cutConn struct {
	net.Conn
	mu    sync.Mutex
	n     int
	limit int
}

var errCut = errors.New("connection cut")

func (c *cutConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= c.limit {
		return 0, errCut
	}
	if c.n+len(p) > c.limit {
		k := c.limit - c.n
		n, _ := c.Conn.Write(p[:k])
		c.n += n
		c.Conn.Close()
		return n, errCut
	}
	n, err := c.Conn.Write(p)
	c.n += n
	return n, err
}

// countConn counts what the sender writes.
type countConn struct {
	net.Conn
	n int
}

func (c *countConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n += n
	return n, err
}

// TestMigrateFaultInjection cuts the sender's stream at 120 points spread
// over the whole exchange: every time the source is resumed and keeps
// counting, and the receiver leaves no domain behind.
func TestMigrateFaultInjection(t *testing.T) {
	src, dst := newEnv(t, nil), newEnv(t, nil)
	g := src.guest(t, xensim.GuestConfig{Pages: 32})

	// Measure the whole exchange on a throwaway guest of the same shape.
	probe := src.guest(t, xensim.GuestConfig{Pages: 32})
	var cc *countConn
	_, err, _, rerr := migrate(t, src, dst, probe.Domain(), nil, nil, func(c net.Conn) io.ReadWriter {
		cc = &countConn{Conn: c}
		return cc
	})
	require.NoError(t, err)
	require.NoError(t, rerr)
	total := cc.n
	require.Greater(t, total, 100)
	for _, d := range dst.domains() {
		require.NoError(t, dst.hv.DestroyDomain(testCtx(t), d))
	}
	waitNoDomains(t, dst)

	const points = 120
	for i := range points {
		// Spread over [0, total): the last cut lands in the "go" line.
		limit := i * (total - 1) / (points - 1)
		before := g.Counter()
		_, err, _, rerr := migrate(t, src, dst, g.Domain(), nil, nil, func(c net.Conn) io.ReadWriter {
			return &cutConn{Conn: c, limit: limit}
		})
		require.Error(t, err, "cut at %d of %d", limit, total)
		require.Error(t, rerr, "cut at %d of %d", limit, total)
		src.requireRunning(t, g)
		require.GreaterOrEqual(t, g.Counter(), before)
		waitNoDomains(t, dst)
	}
	assert.Equal(t, []domctl.DomID{g.Domain()}, src.domains())
}

func waitNoDomains(t *testing.T, e *env) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(e.domains()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("receiver still has domains %v", e.domains())
		}
		time.Sleep(time.Millisecond)
	}
}

// failHooks fails one hook.
type failHooks struct {
	checkpoint.NopHooks
	postRestore error
}

func (h failHooks) PostRestore(context.Context, domctl.DomID) error { return h.postRestore }

// TestMigrateReceiverFailures: the receiver fails in each phase; the source
// is resumed each time, the receiver keeps nothing.
func TestMigrateReceiverFailures(t *testing.T) {
	errHook := errors.New("hook refused")
	phases := []struct {
		name   string
		dstCfg func(*checkpoint.Config)
		ropts  *checkpoint.RestoreOptions
		wrap   func(net.Conn) io.ReadWriter
		want   error
	}{
		{
			name:   "post-restore hook",
			dstCfg: func(c *checkpoint.Config) { c.Hooks = failHooks{postRestore: errHook} },
			want:   checkpoint.ErrRemote,
		},
		{
			name:  "too little memory",
			ropts: &checkpoint.RestoreOptions{MaxMemKB: 4},
			want:  checkpoint.ErrRemote,
		},
	}
	for _, ph := range phases {
		t.Run(ph.name, func(t *testing.T) {
			cfg := testConfig(t)
			if ph.dstCfg != nil {
				ph.dstCfg(&cfg)
			}
			src, dst := newEnv(t, nil), newEnv(t, &cfg)
			g := src.guest(t, xensim.GuestConfig{})
			_, err, _, rerr := migrate(t, src, dst, g.Domain(), nil, ph.ropts, ph.wrap)
			require.ErrorIs(t, err, ph.want)
			require.Error(t, rerr)
			src.requireRunning(t, g)
			waitNoDomains(t, dst)
			// Nor any xenstore directory of the half-built domain.
			doms, err := dst.xs.List(testCtx(t), "/local/domain")
			if err == nil {
				for _, d := range doms {
					assert.Equal(t, "0", d, "leftover xenstore directory")
				}
			}
		})
	}
	// One side's ctx is cancelled once 64 KiB of the image have crossed.
	for _, side := range []string{"receiver", "sender"} {
		t.Run(side+" cancelled", func(t *testing.T) {
			src, dst := newEnv(t, nil), newEnv(t, nil)
			g := src.guest(t, xensim.GuestConfig{Pages: 2048})
			ctx := testCtx(t)
			cctx, cancel := context.WithCancel(ctx)
			sctx, rctx := ctx, ctx
			if side == "sender" {
				sctx = cctx
			} else {
				rctx = cctx
			}
			a, b := net.Pipe()
			done := make(chan error, 1)
			go func() {
				defer b.Close()
				_, err := dst.c.Receive(rctx, &cancelAfter{Conn: b, n: 64 << 10, cancel: cancel}, nil)
				done <- err
			}()
			_, err := src.c.Migrate(sctx, g.Domain(), a, nil)
			a.Close()
			rerr := <-done
			require.Error(t, err)
			require.Error(t, rerr)
			if side == "sender" {
				require.ErrorIs(t, err, context.Canceled)
			} else {
				require.ErrorIs(t, rerr, context.Canceled)
			}
			src.requireRunning(t, g)
			waitNoDomains(t, dst)
		})
	}
}

// cancelAfter calls cancel once n bytes have been read.
type cancelAfter struct {
	net.Conn
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n -= n
	if c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// TestLiveMigrateFaultInjection: cuts of a live migration of a dirtying
// guest, spread over the whole exchange: the source runs on every time
// with log-dirty mode switched off again, and no foreign mapping is left.
func TestLiveMigrateFaultInjection(t *testing.T) {
	src, dst := newEnv(t, nil), newEnv(t, nil)
	g := src.guest(t, xensim.GuestConfig{Pages: 128, DirtyRate: 20000})
	opts := &checkpoint.SaveOptions{Live: true, MaxIterations: 2}
	ctx := testCtx(t)
	const points = 40
	const total = 128 * 4096 // the first full pass alone is longer
	for i := range points {
		limit := 1 + i*total/points
		_, err, _, rerr := migrate(t, src, dst, g.Domain(), opts, nil, func(c net.Conn) io.ReadWriter {
			return &cutConn{Conn: c, limit: limit}
		})
		if err == nil && rerr == nil {
			t.Fatalf("migration cut at %d succeeded", limit)
		}
		require.Error(t, err, "cut at %d", limit)
		src.requireRunning(t, g)
		_, perr := src.hv.PeekDirty(ctx, g.Domain(), make([]uint64, 4))
		require.Error(t, perr, "log-dirty still on after the cut at %d", limit)
		waitNoDomains(t, dst)
	}
}
