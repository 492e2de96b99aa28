package checkpoint_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/checkpoint"
	"github.com/xenckpt/xenckpt/xensim"
)

// largeBench enables the 1 GiB sizes (too big for the CI smoke run).
var largeBench = os.Getenv("XENCKPT_BENCH_LARGE") == "1"

func benchSizes() []uint64 {
	s := []uint64{16 << 20}
	if largeBench {
		s = append(s, 256<<20, 1<<30)
	}
	return s
}

func sizeName(n uint64) string {
	if n >= 1<<30 {
		return strconv.FormatUint(n>>30, 10) + "GiB"
	}
	return strconv.FormatUint(n>>20, 10) + "MiB"
}

// BenchmarkSnapshot: a full (non-live) checkpoint to io.Discard, against
// a memmove of the same number of bytes in the same run. x_memmove is
// memmove time / snapshot time (1.0 = as fast as memmove).
func BenchmarkSnapshot(b *testing.B) {
	for _, size := range benchSizes() {
		b.Run(sizeName(size), func(b *testing.B) {
			e := newEnv(b, nil)
			g := e.guest(b, xensim.GuestConfig{Pages: size / 4096, Tick: 50 * time.Millisecond})
			snapshotLoop(b, e, g, size, nil)
		})
	}
}

// remusEpochs runs b.N+1 Remus checkpoints of g to w and returns the
// pause time and final-round page count of every epoch after the first
// (the first copies all memory), and the time those epochs took.
func remusEpochs(b *testing.B, e *env, g *xensim.Guest, w io.Writer, interval time.Duration) ([]time.Duration, []uint64, time.Duration) {
	var pauses []time.Duration
	var pages []uint64
	var start time.Time
	var last uint64
	_, err := e.c.Remus(testCtx(b), g.Domain(), w, &checkpoint.RemusOptions{
		Interval: interval, Checkpoints: b.N + 1,
		Save: checkpoint.SaveOptions{Progress: func(p checkpoint.Progress) {
			switch p.Phase {
			case checkpoint.PhaseSuspended:
				last = p.RoundPages
			case checkpoint.PhaseResumed:
				if start.IsZero() {
					start = time.Now()
					b.ResetTimer()
					return
				}
				pauses = append(pauses, p.PauseTime)
				pages = append(pages, last)
			}
		}},
	})
	require.NoError(b, err)
	return pauses, pages, time.Since(start)
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkCheckpointPause: how long a checkpoint pauses a guest that
// dirties about 1,000 pages between checkpoints (256 MiB guest with
// XENCKPT_BENCH_LARGE=1, else 16 MiB): the Remus epoch, which is exactly a
// log-dirty checkpoint. pause_ms is the median.
func BenchmarkCheckpointPause(b *testing.B) {
	size := uint64(16 << 20)
	if largeBench {
		size = 256 << 20
	}
	e := newEnv(b, nil)
	// 100,000 pages/s for 10 ms between checkpoints: ~1,000 dirty pages.
	g := e.guest(b, xensim.GuestConfig{Pages: size / 4096, DirtyRate: 100000})
	pauses, pages, _ := remusEpochs(b, e, g, io.Discard, 10*time.Millisecond)
	var sum uint64
	for _, p := range pages {
		sum += p
	}
	b.ReportMetric(float64(median(pauses).Microseconds())/1000, "pause_ms")
	b.ReportMetric(float64(sum)/float64(max(len(pages), 1)), "dirty_pages")
}

// BenchmarkRemus: checkpoints per second of back-to-back Remus epochs
// (no interval) to a backup over an in-memory connection.
func BenchmarkRemus(b *testing.B) {
	size := uint64(16 << 20)
	if largeBench {
		size = 256 << 20
	}
	prim, back := newEnv(b, nil), newEnv(b, nil)
	g := prim.guest(b, xensim.GuestConfig{Pages: size / 4096, DirtyRate: 10000})
	a, c := net.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := back.c.RemusBackup(testCtx(b), c, &checkpoint.RestoreOptions{Paused: true})
		done <- err
	}()
	pauses, _, el := remusEpochs(b, prim, g, a, time.Nanosecond)
	require.NoError(b, <-done)
	b.ReportMetric(float64(len(pauses))/el.Seconds(), "checkpoints/s")
	b.ReportMetric(float64(median(pauses).Microseconds())/1000, "pause_ms")
}

// throttle limits the bytes per second written through it, like a link.
type throttle struct {
	net.Conn
	rate  float64 // bytes per second
	start time.Time
	sent  float64
}

func (t *throttle) Write(p []byte) (int, error) {
	if t.start.IsZero() {
		t.start = time.Now()
	}
	n, err := t.Conn.Write(p)
	t.sent += float64(n)
	if ahead := time.Duration(t.sent/t.rate*float64(time.Second)) - time.Since(t.start); ahead > 0 {
		time.Sleep(ahead)
	}
	return n, err
}

// BenchmarkMigrateDowntime: live migration over a 200 MiB/s link of a guest
// that dirties memory at half that rate (25,600 pages/s); downtime_ms is
// the time the guest was suspended, with the default policy (MaxDowntime
// 10 ms).
func BenchmarkMigrateDowntime(b *testing.B) {
	const link = 200 << 20
	var down time.Duration
	var rounds int
	for b.Loop() {
		b.StopTimer()
		src, dst := newEnv(b, nil), newEnv(b, nil)
		g := src.guest(b, xensim.GuestConfig{Pages: 16384, DirtyRate: link / 2 / 4096})
		b.StartTimer()
		ctx := testCtx(b)
		a, c := net.Pipe()
		rdone := make(chan error, 1)
		go func() {
			_, err := dst.c.Receive(ctx, c, nil)
			rdone <- err
		}()
		res, err := src.c.Migrate(ctx, g.Domain(), &throttle{Conn: a, rate: link}, &checkpoint.SaveOptions{Live: true})
		require.NoError(b, err)
		require.NoError(b, <-rdone)
		down += res.PauseTime
		rounds += res.Rounds
	}
	b.ReportMetric(float64(down.Microseconds())/float64(b.N)/1000, "downtime_ms")
	b.ReportMetric(float64(rounds)/float64(b.N), "rounds")
}

// BenchmarkSaveRSS: growth of the process's peak RSS while saving a guest
// to a file (the guest's own memory lives in this process too and is not
// counted: it is resident before the save starts).
func BenchmarkSaveRSS(b *testing.B) {
	size := uint64(64 << 20)
	if largeBench {
		size = 1 << 30
	}
	var peak float64
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, nil)
		g := e.guest(b, xensim.GuestConfig{Pages: size / 4096, Tick: 50 * time.Millisecond})
		f, err := os.Create(b.TempDir() + "/img")
		require.NoError(b, err)
		base := resetPeakRSS()
		b.StartTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		_, err = e.c.Save(ctx, g.Domain(), f, nil)
		cancel()
		b.StopTimer()
		require.NoError(b, err)
		if hwm := statusKB("VmHWM"); hwm > 0 && base > 0 {
			peak = max(peak, float64(hwm-base)/1024)
		}
		f.Close()
		b.StartTimer()
	}
	b.ReportMetric(peak, "peak_rss_growth_MiB")
}

// resetPeakRSS resets VmHWM (Linux: clear_refs 5) and returns VmRSS in KiB.
func resetPeakRSS() int64 {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return statusKB("VmRSS")
}

func statusKB(key string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}
