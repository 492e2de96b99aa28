package xenstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xenckpt/xenckpt/internal/testutil"
	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/internal/xsdaemon"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

const (
	benchKeys      = 1000 // rotating keys, as in the C benchmark
	benchPipelined = 8    // goroutines sharing one Client
	benchRounds    = 7    // interleaved C/Go rounds per benchmark run
)

// BenchmarkVsC compares the Go client with libxenstore (testdata/xsbench.c)
// on one real cxenstored in the same run and placement. For each operation
// it times the same number of operations three ways, in interleaved
// rounds: the C client (one synchronous caller), the Go client with one
// synchronous caller, and the Go client with 8 goroutines pipelining on
// one connection. It reports the medians of each as ops/s and of the
// ratios Go/C; compare ratios, not absolute numbers, because the machine
// is shared and noisy. ns/op covers both Go runs.
func BenchmarkVsC(b *testing.B) {
	testutil.RequireFile(b, "/usr/include/xenstore.h", "apt-get install libxen-dev")
	d := xsdaemon.StartCXenstored(b)
	cbin := xsdaemon.BuildC(b, "xsbench", "-lxenstore")
	ctx := context.Background()
	c, err := xenstore.DialSocket(ctx, d.Socket, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	for _, op := range []string{"read", "write", "txn"} {
		b.Run(op, func(b *testing.B) {
			prefix := "/bench/go/" + op
			if op == "read" {
				for i := range benchKeys {
					if err := c.Write(ctx, key(prefix, i), value(i)); err != nil {
						b.Fatal(err)
					}
				}
			}
			// The machine is shared and noisy: interleave short rounds of
			// C, Go sync and Go pipelined, and report medians of the
			// per-round rates and ratios.
			rounds := 1
			if b.N >= 1000 {
				rounds = benchRounds
			}
			n := max(b.N/rounds, 1)
			var cRate, syncRate, pipeRate, syncRatio, pipeRatio []float64
			b.ResetTimer()
			for range rounds {
				b.StopTimer()
				cTime := runCBench(b, cbin, d.Socket, op, n, "/bench/c/"+op)
				b.StartTimer()
				start := time.Now()
				for i := range n {
					benchOp(b, c, op, prefix, i)
				}
				syncTime := time.Since(start)
				b.StopTimer()
				start = time.Now()
				var wg sync.WaitGroup
				for g := range benchPipelined {
					wg.Go(func() {
						p := prefix
						if op != "read" {
							p = fmt.Sprintf("%s/g%d", prefix, g) // no conflicts between goroutines
						}
						for i := g; i < n; i += benchPipelined {
							benchOp(b, c, op, p, i)
						}
					})
				}
				wg.Wait()
				pipeTime := time.Since(start)
				b.StartTimer()
				ops := float64(n)
				cRate = append(cRate, ops/cTime.Seconds())
				syncRate = append(syncRate, ops/syncTime.Seconds())
				pipeRate = append(pipeRate, ops/pipeTime.Seconds())
				syncRatio = append(syncRatio, float64(cTime)/float64(syncTime))
				pipeRatio = append(pipeRatio, float64(cTime)/float64(pipeTime))
			}
			b.ReportMetric(median(cRate), "c-ops/s")
			b.ReportMetric(median(syncRate), "go-sync-ops/s")
			b.ReportMetric(median(pipeRate), "go-pipelined-ops/s")
			b.ReportMetric(median(syncRatio), "sync-ratio")
			b.ReportMetric(median(pipeRatio), "pipelined-ratio")
		})
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func key(prefix string, i int) string { return prefix + "/k" + strconv.Itoa(i%benchKeys) }

func value(i int) []byte { return []byte("value-" + strconv.Itoa(i%benchKeys)) }

func benchOp(b *testing.B, c *xenstore.Client, op, prefix string, i int) {
	ctx := context.Background()
	switch op {
	case "read":
		v, err := c.Read(ctx, key(prefix, i))
		if err != nil || !bytes.Equal(v, value(i)) {
			b.Errorf("read %s = %q, %v", key(prefix, i), v, err)
		}
	case "write":
		if err := c.Write(ctx, key(prefix, i), value(i)); err != nil {
			b.Error(err)
		}
	case "txn":
		err := c.Transaction(ctx, func(tx *xenstore.Tx) error {
			return tx.Write(ctx, key(prefix, i), []byte("t"))
		})
		if err != nil {
			b.Error(err)
		}
	}
}

// runCBench runs the C benchmark for n operations and returns the
// duration of its timed loop, as it measured it.
func runCBench(b *testing.B, bin, sock, op string, n int, prefix string) time.Duration {
	cmd := exec.Command(bin, op, strconv.Itoa(n), strconv.Itoa(benchKeys), prefix)
	cmd.Env = append(os.Environ(), "XENSTORED_PATH="+sock)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("xsbench %s: %v: %s", op, err, stderr.String())
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		b.Fatalf("xsbench output %q: %v", out, err)
	}
	return time.Duration(max(ns, 1))
}

// BenchmarkClientEmbedded measures the client's own cost per call against
// the in-process server (no daemon scheduling noise), with allocations.
func BenchmarkClientEmbedded(b *testing.B) {
	srv := xenstoretest.NewServer(nil)
	defer srv.Close()
	c, err := srv.Client(0)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Write(ctx, "/bench/k", []byte("value")); err != nil {
		b.Fatal(err)
	}
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Read(ctx, "/bench/k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Write(ctx, "/bench/k", []byte("value")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Read(ctx, "/bench/k"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
