package checkpoint_test

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/xensim"
)

// BenchmarkSnapshotPV: BenchmarkSnapshot by guest type and frame model.
// A PV guest with machine frames (MFN != PFN, xensim's default, as on real
// Xen) is read through its p2m, page by page by MFN, and its page tables
// and vCPU frames are normalised into PFNs; "identity" is the same guest
// with MFN == PFN (the simulator's model before machine frames, where
// translation is trivial); a PVH guest is read by gfn, as every HVM guest.
// x_memmove is memmove time / snapshot time in the same run (1.0 = as fast
// as memmove).
func BenchmarkSnapshotPV(b *testing.B) {
	for _, tc := range []struct {
		name   string
		kind   xensim.Kind
		frames xensim.PVFrames
	}{
		{"pv64", xensim.PV64, xensim.PVFramesMachine},
		{"pv64-identity", xensim.PV64, xensim.PVFramesIdentity},
		{"pv32", xensim.PV32, xensim.PVFramesMachine},
		{"pvh", xensim.PVH, xensim.PVFramesMachine},
	} {
		for _, size := range benchSizes() {
			b.Run(tc.name+"/"+sizeName(size), func(b *testing.B) {
				e := newEnvOn(b, &xensim.Config{PVFrames: tc.frames}, nil)
				conv := xensim.ConventionLinux
				g := e.guest(b, xensim.GuestConfig{Kind: tc.kind, Convention: conv, Pages: size / 4096, Tick: 50 * time.Millisecond})
				snapshotLoop(b, e, g, size, &checkpoint.SaveOptions{Resume: resumeOpts(conv)})
			})
		}
	}
}

// snapshotLoop times full checkpoints of g against a memmove of size bytes
// in the same iterations, and reports x_memmove (memmove time / snapshot
// time), snapshot_ms, memmove_ms and pause_ms (how long the guest stayed
// suspended, the copy's part of snapshot_ms; the rest is the suspend
// handshake and the resume). The image goes to a copySink, so
// every page byte is read and written once, as a memmove does; with
// XENCKPT_BENCH_SINK=discard it goes to io.Discard instead (the pages are
// then never touched, which measures the per-page overhead alone).
func snapshotLoop(b *testing.B, e *env, g *xensim.Guest, size uint64, opts *checkpoint.SaveOptions) {
	ctx := testCtx(b)
	src, dst := make([]byte, size), make([]byte, size)
	for i := range min(len(src), 4096) {
		src[i] = byte(i)
	}
	for n := 4096; n < len(src); n *= 2 {
		copy(src[n:], src[:n]) // the same bytes as src[i] = byte(i), faster
	}
	// Fault dst in first: the baseline is the copy, not the kernel
	// zeroing fresh pages (at one iteration, as 1 GiB runs get, that
	// doubled memmove_ms).
	copy(dst, src)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cs := &copySink{buf: make([]byte, size+size/8)}
	for i := 0; i < len(cs.buf); i += 4096 {
		cs.buf[i] = 1 // fault it in, as dst above
	}
	var sink io.Writer = cs
	if os.Getenv("XENCKPT_BENCH_SINK") == "discard" {
		sink = io.Discard
	}
	var snap, move, pause time.Duration
	for b.Loop() {
		t0 := time.Now()
		res, err := e.c.Checkpoint(ctx, g.Domain(), sink, opts)
		require.NoError(b, err)
		snap += time.Since(t0)
		pause += res.PauseTime
		t0 = time.Now()
		copy(dst, src)
		move += time.Since(t0)
	}
	b.ReportMetric(float64(move)/float64(snap), "x_memmove")
	b.ReportMetric(float64(snap.Microseconds())/float64(b.N)/1000, "snapshot_ms")
	b.ReportMetric(float64(move.Microseconds())/float64(b.N)/1000, "memmove_ms")
	b.ReportMetric(float64(pause.Microseconds())/float64(b.N)/1000, "pause_ms")
}

// copySink copies everything written to it into buf, wrapping at its end:
// the image lands in memory, as in a pipe or on tmpfs, without the cost of
// a system call. buf is faulted in before the timing starts.
type copySink struct {
	buf []byte
	off int
}

func (s *copySink) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if s.off == len(s.buf) {
			s.off = 0
		}
		c := copy(s.buf[s.off:], p)
		s.off += c
		p = p[c:]
	}
	return n, nil
}
