package xenstore_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/xenckpt/xenckpt/internal/testutil"
	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/internal/xsdaemon"
)

// BenchmarkCPUPerRead accounts where the time of a READ goes on one real
// cxenstored: CPU time per request of this process (getrusage) and of the
// daemon (/proc/PID/stat), and context switches per request of each, for
// one synchronous caller and for 8 goroutines pipelining on one Client
// (with the default SCHED_BATCH waits and with Config.PreemptingWaits).
// Run it pinned to one CPU, as BenchmarkVsC (docs/bench-xenstore.md);
// CPU times have the kernel's tick resolution, so use many operations
// (-benchtime=100000x).
func BenchmarkCPUPerRead(b *testing.B) {
	testutil.RequireFile(b, "/proc/self/stat", "a Linux /proc")
	d := xsdaemon.StartCXenstored(b)
	ctx := context.Background()
	for _, v := range []struct {
		name       string
		goroutines int
		cfg        *xenstore.Config
	}{
		{"sync", 1, nil},
		{"pipelined", benchPipelined, nil},
		{"pipelined-preempting", benchPipelined, &xenstore.Config{PreemptingWaits: true}},
	} {
		b.Run(v.name, func(b *testing.B) {
			c, err := xenstore.DialSocket(ctx, d.Socket, v.cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			prefix := "/bench/cpu"
			for i := range benchKeys {
				if err := c.Write(ctx, key(prefix, i), value(i)); err != nil {
					b.Fatal(err)
				}
			}
			dBefore, cBefore := procUsage(b, d.Pid()), selfUsage()
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for g := range v.goroutines {
				wg.Go(func() {
					for i := g; i < b.N; i += v.goroutines {
						benchOp(b, c, "read", prefix, i)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			elapsed := time.Since(start)
			dAfter, cAfter := procUsage(b, d.Pid()), selfUsage()
			n := float64(b.N)
			b.ReportMetric(n/elapsed.Seconds(), "ops/s")
			b.ReportMetric(float64(cAfter.cpu-cBefore.cpu)/1e3/n, "client-µs/op")
			b.ReportMetric(float64(dAfter.cpu-dBefore.cpu)/1e3/n, "daemon-µs/op")
			b.ReportMetric(float64(cAfter.switches-cBefore.switches)/n, "client-cs/op")
			b.ReportMetric(float64(dAfter.switches-dBefore.switches)/n, "daemon-cs/op")
		})
	}
}

type usage struct {
	cpu      time.Duration
	switches int64 // voluntary and involuntary context switches
}

func selfUsage() usage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return usage{time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw}
}

// procUsage reads a process's CPU time (utime+stime, in clock ticks of
// 1/100 s) and context switches from /proc.
func procUsage(b *testing.B, pid int) usage {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // from field 3 (state) on
	var u usage
	for _, f := range fields[11:13] { // utime, stime
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		u.cpu += time.Duration(t) * 10 * time.Millisecond
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.HasSuffix(k, "ctxt_switches") {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			u.switches += n
		}
	}
	return u
}
