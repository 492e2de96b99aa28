package checkpoint_test

import (
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/xensim"
)

// BenchmarkSnapshotPV: BenchmarkSnapshot for guests whose frames are
// numbered as on real Xen. A PV guest with machine frames (MFN != PFN) is
// read through its p2m, page by page by MFN, and its page tables and vCPU
// frames are normalised into PFNs; a PVH guest is read by gfn, as every
// HVM guest. x_memmove is memmove time / snapshot time in the same run
// (1.0 = as fast as memmove); the pv64 and pvh rows differ by what the PV
// path costs.
func BenchmarkSnapshotPV(b *testing.B) {
	for _, kind := range []xensim.Kind{xensim.PV64, xensim.PV32, xensim.PVH} {
		for _, size := range benchSizes() {
			b.Run(kind.String()+"/"+sizeName(size), func(b *testing.B) {
				e := newEnvOn(b, &xensim.Config{PVFrames: xensim.PVFramesMachine}, nil)
				conv := xensim.ConventionLinux
				g := e.guest(b, xensim.GuestConfig{Kind: kind, Convention: conv, Pages: size / 4096, Tick: 50 * time.Millisecond})
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
