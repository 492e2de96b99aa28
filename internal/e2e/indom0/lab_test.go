//go:build xenckpt_dom0

package indom0

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/xenckpt/xenckpt/internal/testutil"
)

// requireDom0 skips (fails in CI) unless the test runs in the lab's dom0.
func requireDom0(tb testing.TB) {
	tb.Helper()
	if os.Getenv("XENCKPT_IN_DOM0") != "1" {
		testutil.SkipOrFail(tb, "runs only inside the Xen lab's dom0 (XENCKPT_IN_DOM0=1)",
			"cd internal/e2e && go test -run TestXenLab . (boots the lab and runs these tests there)")
	}
}

// fullMode reports whether the lab runs its slower cases.
func fullMode() bool { return os.Getenv("XENCKPT_LAB_MODE") == "full" }

// outDir is where artefacts for the host go.
func outDir(tb testing.TB) string {
	d := os.Getenv("XENCKPT_LAB_OUT")
	if d == "" {
		d = tb.TempDir()
	}
	require.NoError(tb, os.MkdirAll(d, 0o755))
	return d
}

// imageDir holds save images; the host exports them in full mode.
const imageDir = "/tmp/lab-images"

// recordTiming appends one line to timings.tsv for the README comparison.
func recordTiming(tb testing.TB, tool, op, guest string, d time.Duration) {
	tb.Helper()
	tb.Logf("timing: %s %s %s %.2fs", tool, op, guest, d.Seconds())
	f, err := os.OpenFile(filepath.Join(outDir(tb), "timings.tsv"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Errorf("recording timing: %v", err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\t%s\t%s\t%.3f\n", tool, op, guest, d.Seconds())
}

// xl runs xl with a hard timeout and returns its standard output; the
// error carries the end of its standard error (progress and warnings).
func xl(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "xl", args...)
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("xl %s: %w\n%s", strings.Join(args, " "), err, lastLines(out.String()+errOut.String(), 15))
	}
	return out.String(), nil
}

// mustXL runs xl and fails the test naming the command on error.
func mustXL(tb testing.TB, timeout time.Duration, args ...string) (string, time.Duration) {
	tb.Helper()
	start := time.Now()
	out, err := xl(tb.Context(), timeout, args...)
	require.NoError(tb, err)
	return out, time.Since(start)
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// guest is one lab guest, tracked by name (restore and migration change the
// domain id).
type guest struct {
	Type string // "pv" or "pvh"
	Name string
}

func (g guest) cfg() string { return "/etc/xen/domU-" + g.Type + ".cfg" }

// logs are the console logs of the guest, including the one written while
// an incoming migration had the temporary name.
func (g guest) logs() []string {
	return []string{
		"/var/log/xen/console/guest-" + g.Name + ".log",
		"/var/log/xen/console/guest-" + g.Name + "--incoming.log",
	}
}

// xenconsoled runs with --timestamp=guest, so every log line starts with
// "[YYYY-MM-DD HH:MM:SS.mmm] ", which sorts chronologically as a string.
var tickRE = regexp.MustCompile(`(?m)^(\[[^\]]*\] )?.*DOMU: tick (\d+)`)

// parseTicks returns the ticks of console logs in time order: a migrated
// guest writes first to "<name>--incoming.log", then, once renamed, to
// "<name>.log" again, so the files must be merged by timestamp.
func parseTicks(logs ...[]byte) []int {
	type tick struct {
		ts string
		n  int
	}
	var all []tick
	for _, b := range logs {
		// xenconsoled stamps a line only when it saw the previous newline;
		// after a cancelled suspend a line can come without one, and then
		// carries the time of the line before it.
		ts := ""
		for _, m := range tickRE.FindAllSubmatch(b, -1) {
			if len(m[1]) > 0 {
				ts = string(m[1])
			}
			n, _ := strconv.Atoi(string(m[2]))
			all = append(all, tick{ts, n})
		}
	}
	// Timestamps may have one-second granularity: within one second, the
	// guest's counter orders the lines (a rollback takes seconds, so it
	// never falls inside one).
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].ts != all[j].ts || all[i].ts == "" {
			return all[i].ts < all[j].ts
		}
		return all[i].n < all[j].n
	})
	out := make([]int, len(all))
	for i, t := range all {
		out[i] = t.n
	}
	return out
}

// ticks returns every tick the guest has printed, in time order.
func (g guest) ticks() []int {
	var logs [][]byte
	for _, p := range g.logs() {
		if b, err := os.ReadFile(p); err == nil {
			logs = append(logs, b)
		}
	}
	return parseTicks(logs...)
}

// mark returns the number of ticks logged so far; ticksSince(mark) returns
// the ones logged after it.
func (g guest) mark() int { return len(g.ticks()) }

func (g guest) ticksSince(mark int) []int {
	t := g.ticks()
	if mark > len(t) {
		return nil
	}
	return t[mark:]
}

// waitTick waits until a tick appears after mark and returns it.
func (g guest) waitTick(tb testing.TB, mark int, timeout time.Duration) int {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if t := g.ticksSince(mark); len(t) > 0 {
			return t[0]
		}
		if err := tb.Context().Err(); err != nil {
			tb.Fatalf("waiting for a tick of %s: %v", g.Name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tb.Fatalf("%s printed no tick within %v after mark %d (last ticks %v)", g.Name, timeout, mark, lastInts(g.ticks(), 5))
	return 0
}

// tickWait bounds a wait for the guest's next tick after an operation.
// The guests tick every second; the bound is generous because CI machines
// under TCG can be several times slower than a developer's, and a wait
// ends as soon as the tick appears.
const tickWait = 3 * time.Minute

// livenessWait bounds ensureGuest's check that an existing guest still runs.
const livenessWait = 45 * time.Second

// alive reports whether the guest prints a tick within timeout.
func (g guest) alive(tb testing.TB, timeout time.Duration) bool {
	m := g.mark()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && tb.Context().Err() == nil {
		if len(g.ticksSince(m)) > 0 {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// freshTick waits for a new tick and returns it together with the mark
// after it.
func (g guest) freshTick(tb testing.TB) (tick, mark int) {
	tb.Helper()
	m := g.mark()
	g.waitTick(tb, m, tickWait)
	t := g.ticks()
	return t[len(t)-1], len(t)
}

func lastInts(v []int, n int) []int {
	if len(v) > n {
		return v[len(v)-n:]
	}
	return v
}

// exists reports whether a domain with the guest's name exists (by exit
// status: xl's error text contains the name).
func (g guest) exists(ctx context.Context) bool {
	_, err := xl(ctx, 30*time.Second, "domid", g.Name)
	return err == nil
}

// domid returns the guest's current domain id.
func (g guest) domid(tb testing.TB) uint32 {
	tb.Helper()
	out, _ := mustXL(tb, 30*time.Second, "domid", g.Name)
	n, err := strconv.ParseUint(strings.TrimSpace(out), 10, 32)
	require.NoError(tb, err, "parsing xl domid output %q", out)
	return uint32(n)
}

// ensureGuest returns the running guest of type typ, creating it (and
// waiting for its first tick) if it does not exist.
func ensureGuest(tb testing.TB, typ string) guest {
	tb.Helper()
	g := guest{Type: typ, Name: "domU-" + typ}
	if g.exists(tb.Context()) {
		if g.mark() == 0 {
			// Created by an earlier test that gave up waiting: it may
			// still be booting.
			g.waitTick(tb, 0, 8*time.Minute)
			return g
		}
		if g.alive(tb, livenessWait) {
			return g
		}
		// An earlier test failed and left it paused, suspended or
		// crashed: that test has failed already; start this one from a
		// fresh guest instead of failing it too.
		tb.Logf("%s exists but printed no tick within %v: destroying and re-creating it", g.Name, livenessWait)
		mustXL(tb, time.Minute, "destroy", g.Name)
	}
	m := g.mark()
	_, d := mustXL(tb, 3*time.Minute, "create", g.cfg())
	recordTiming(tb, "xl", "create", typ, d)
	start := time.Now()
	g.waitTick(tb, m, 8*time.Minute)
	recordTiming(tb, "xl", "create-to-first-tick", typ, d+time.Since(start))
	return g
}

// destroyGuest removes the guest if it exists.
func destroyGuest(tb testing.TB, g guest) {
	tb.Helper()
	if g.exists(tb.Context()) {
		mustXL(tb, time.Minute, "destroy", g.Name)
	}
}

// guestTypes lists the guest types to test.
var guestTypes = []string{"pv", "pvh"}
