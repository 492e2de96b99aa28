package checkpoint_test

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/xensim"
)

// TestRemusFailover: the backup applies complete checkpoints; when the
// link dies it fails over to the last one, whose guest continues. The
// primary keeps running throughout. The guest is PV64 with machine frames
// (xensim's default): the backup rewrites pages by mfn every epoch and
// pins the page tables once, at failover.
func TestRemusFailover(t *testing.T) {
	prim, back := newEnv(t, nil), newEnv(t, nil)
	g := prim.guest(t, xensim.GuestConfig{Pages: 256, DirtyRate: 2000})
	ctx := testCtx(t)
	a, b := net.Pipe()
	type bres struct {
		dom domctl.DomID
		err error
	}
	bdone := make(chan bres, 1)
	go func() {
		dom, err := back.c.RemusBackup(ctx, b, nil)
		bdone <- bres{dom, err}
	}()
	var epochs int
	var firstCounter uint64
	opts := &checkpoint.RemusOptions{
		Interval: 5 * time.Millisecond,
		Save: checkpoint.SaveOptions{Progress: func(p checkpoint.Progress) {
			if p.Phase == checkpoint.PhaseResumed {
				epochs++
				if epochs == 1 {
					firstCounter = g.Counter()
				}
				if epochs == 5 {
					a.Close() // the link dies after five checkpoints
				}
			}
		}},
	}
	res, err := prim.c.Remus(ctx, g.Domain(), a, opts)
	require.Error(t, err, "primary sees the broken link")
	require.NotNil(t, res)
	assert.Equal(t, 5, res.Checkpoints)
	prim.requireRunning(t, g)
	assert.GreaterOrEqual(t, g.Suspends(), uint64(5))

	br := <-bdone
	require.NoError(t, br.err)
	r := back.host.Guest(br.dom)
	assert.Equal(t, g.ID(), r.ID())
	require.NoError(t, r.WaitConnected(ctx))
	back.requireRunning(t, r)
	assert.GreaterOrEqual(t, r.Counter(), firstCounter, "backup continues from a later checkpoint")
}

// TestRemusOrderlyEnd: a bounded run ends the stream; the backup discards
// its replica.
func TestRemusOrderlyEnd(t *testing.T) {
	prim, back := newEnv(t, nil), newEnv(t, nil)
	g := prim.guest(t, xensim.GuestConfig{Convention: xensim.ConventionLinux})
	ctx := testCtx(t)
	a, b := net.Pipe()
	bdone := make(chan error, 1)
	go func() {
		dom, err := back.c.RemusBackup(ctx, b, nil)
		if err == nil && dom != 0 {
			err = assert.AnError
		}
		bdone <- err
	}()
	res, err := prim.c.Remus(ctx, g.Domain(), a, &checkpoint.RemusOptions{
		Interval: time.Millisecond, Checkpoints: 3, Save: checkpoint.SaveOptions{Resume: resumeOpts(xensim.ConventionLinux)},
	})
	require.NoError(t, err)
	assert.Equal(t, 3, res.Checkpoints)
	require.NoError(t, <-bdone)
	waitNoDomains(t, back)
	prim.requireRunning(t, g)
	assert.EqualValues(t, 1, g.LastSuspendReturn())
}

// TestRemusBrokenFirstCheckpoint: no complete checkpoint, nothing to fail
// over to.
func TestRemusBrokenFirstCheckpoint(t *testing.T) {
	prim, back := newEnv(t, nil), newEnv(t, nil)
	g := prim.guest(t, xensim.GuestConfig{Pages: 512})
	ctx := testCtx(t)
	a, b := net.Pipe()
	bdone := make(chan error, 1)
	go func() {
		_, err := back.c.RemusBackup(ctx, b, nil)
		bdone <- err
	}()
	_, err := prim.c.Remus(ctx, g.Domain(), &cutConn{Conn: a, limit: 100 << 10}, nil)
	a.Close()
	require.Error(t, err)
	require.ErrorIs(t, <-bdone, checkpoint.ErrNoCheckpoint)
	waitNoDomains(t, back)
	prim.requireRunning(t, g)
}

// TestRemusEventChannelLive: Remus of a guest with a suspend event channel,
// starting with live precopy; a bounded run keeps the primary running and
// releases the lock file.
func TestRemusEventChannelLive(t *testing.T) {
	prim, back := newEnv(t, nil), newEnv(t, nil)
	g := prim.guest(t, xensim.GuestConfig{SuspendEventChannel: true, DirtyRate: 5000, Pages: 512})
	ctx := testCtx(t)
	a, b := net.Pipe()
	bdone := make(chan error, 1)
	go func() {
		_, err := back.c.RemusBackup(ctx, b, nil)
		bdone <- err
	}()
	res, err := prim.c.Remus(ctx, g.Domain(), a, &checkpoint.RemusOptions{
		Interval: time.Millisecond, Checkpoints: 10, Save: checkpoint.SaveOptions{Live: true},
	})
	require.NoError(t, err)
	assert.Equal(t, 10, res.Checkpoints)
	require.NoError(t, <-bdone)
	prim.requireRunning(t, g)
	assert.EqualValues(t, 10, g.Suspends())
	ents, err := os.ReadDir(prim.cfg.LockDir)
	require.NoError(t, err)
	assert.Empty(t, ents)
}
