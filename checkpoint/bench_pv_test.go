package checkpoint_test

import (
	"io"
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

// snapshotLoop times full checkpoints of g to io.Discard against a memmove
// of size bytes in the same iterations, and reports x_memmove (memmove
// time / snapshot time), snapshot_ms and memmove_ms.
func snapshotLoop(b *testing.B, e *env, g *xensim.Guest, size uint64, opts *checkpoint.SaveOptions) {
	ctx := testCtx(b)
	src, dst := make([]byte, size), make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	// Fault dst in first: the baseline is the copy, not the kernel
	// zeroing fresh pages (at one iteration, as 1 GiB runs get, that
	// doubled memmove_ms).
	copy(dst, src)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	var snap, move time.Duration
	for b.Loop() {
		t0 := time.Now()
		_, err := e.c.Checkpoint(ctx, g.Domain(), io.Discard, opts)
		require.NoError(b, err)
		snap += time.Since(t0)
		t0 = time.Now()
		copy(dst, src)
		move += time.Since(t0)
	}
	b.ReportMetric(float64(move)/float64(snap), "x_memmove")
	b.ReportMetric(float64(snap.Microseconds())/float64(b.N)/1000, "snapshot_ms")
	b.ReportMetric(float64(move.Microseconds())/float64(b.N)/1000, "memmove_ms")
}
