package checkpoint_test

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/xensim"
)

// slowLink is an image destination that sends perSec bytes per second.
// It takes page data with vectored writes (stream.BuffersWriter), as a
// network connection does, so every batch reaches it unbuffered.
type slowLink struct {
	buf    bytes.Buffer
	perSec int
}

func (w *slowLink) delay(n int) {
	time.Sleep(time.Duration(n) * time.Second / time.Duration(w.perSec))
}

func (w *slowLink) Write(p []byte) (int, error) {
	w.delay(len(p))
	return w.buf.Write(p)
}

func (w *slowLink) WriteBuffers(bufs net.Buffers) (int64, error) {
	var n int64
	for _, b := range bufs {
		m, _ := w.buf.Write(b)
		n += int64(m)
	}
	w.delay(int(n))
	return n, nil
}

// TestPrecopyDiverging: a guest that dirties all of its memory faster than
// the link sends it makes more precopy rounds pointless. The policy stops
// as soon as a dirty round measures it (the dirty rate reaches the
// bandwidth), long before MaxIterations, says so in the Result, and the
// image restores to a guest that counts on.
func TestPrecopyDiverging(t *testing.T) {
	e := newEnv(t, nil)
	// Every tick rewrites every data page: whatever a round sends is dirty
	// again by its end, so the next round's dirty rate equals its send
	// rate.
	g := e.guest(t, xensim.GuestConfig{Pages: 64, DirtyRate: 200_000})
	ctx := testCtx(t)
	link := &slowLink{perSec: 2 << 20} // 64 pages: about 125 ms a pass
	var rounds []checkpoint.Progress
	res, err := e.c.Checkpoint(ctx, g.Domain(), link, &checkpoint.SaveOptions{
		Live: true, MaxIterations: 30, DirtyPageThreshold: 1, MaxDowntime: time.Millisecond,
		Progress: func(p checkpoint.Progress) {
			if p.Phase == checkpoint.PhasePrecopy {
				rounds = append(rounds, p)
			}
		},
	})
	require.NoError(t, err)
	assert.Equal(t, checkpoint.StopDiverging, res.PrecopyStop)
	assert.Equal(t, 1, res.Rounds, "the first dirty round measures the divergence")
	require.Len(t, rounds, res.Rounds+1, "full pass plus the dirty rounds")
	e.requireRunning(t, g)

	at := g.Counter()
	dom, err := e.c.Restore(ctx, bytes.NewReader(link.buf.Bytes()), nil)
	require.NoError(t, err)
	rg := e.host.Guest(dom)
	require.NoError(t, rg.WaitCounter(ctx, at+2), "the restored guest counts on")
	e.requireRunning(t, rg)
}

// TestPrecopyStopReasons: the other stop rules report themselves too.
func TestPrecopyStopReasons(t *testing.T) {
	for _, tc := range []struct {
		name string
		rate int
		o    checkpoint.SaveOptions
		want checkpoint.PrecopyStop
	}{
		// An idle guest leaves (nearly) nothing dirty after the full pass.
		{"threshold", 0, checkpoint.SaveOptions{DirtyPageThreshold: 50}, checkpoint.StopDirtyThreshold},
		// Without the downtime rules and with a threshold nothing meets,
		// only MaxIterations ends it.
		{"max-iterations", 200_000, checkpoint.SaveOptions{MaxIterations: 2, DirtyPageThreshold: 1, MaxDowntime: -1}, checkpoint.StopMaxIterations},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			g := e.guest(t, xensim.GuestConfig{Pages: 64, DirtyRate: tc.rate})
			o := tc.o
			o.Live = true
			// A slow link: the guest ticks (and dirties) during each pass.
			res, err := e.c.Checkpoint(testCtx(t), g.Domain(), &slowLink{perSec: 4 << 20}, &o)
			require.NoError(t, err)
			assert.Equal(t, tc.want, res.PrecopyStop)
			if tc.want == checkpoint.StopMaxIterations {
				assert.Equal(t, 2, res.Rounds)
			}
			e.requireRunning(t, g)
		})
	}
}
