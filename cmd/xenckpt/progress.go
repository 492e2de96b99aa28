package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// bar draws one progress line on a terminal: what is done of total, the
// rate and an ETA, redrawn at most ten times a second. A nil *bar draws
// nothing, so callers need not check whether bars are enabled.
type bar struct {
	mu     sync.Mutex
	w      io.Writer
	label  string
	unit   string
	start  time.Time
	last   time.Time
	drawn  bool
	now    func() time.Time
	width  int
	status string
}

// newBar returns a bar on w, or nil when bars are off.
func (a *app) newBar(label, unit string) *bar {
	if !a.showProgress() {
		return nil
	}
	return &bar{w: a.stderr, label: label, unit: unit, start: time.Now(), now: time.Now, width: 30}
}

// Update redraws the bar for done of total units (total 0: unknown), with
// a free-form status such as "round 3".
func (b *bar) Update(done, total uint64, status string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if b.drawn && now.Sub(b.last) < 100*time.Millisecond && (total == 0 || done < total) {
		return
	}
	b.last, b.drawn, b.status = now, true, status
	fmt.Fprintf(b.w, "\r\033[K%s", b.line(done, total, now))
}

func (b *bar) line(done, total uint64, now time.Time) string {
	var s strings.Builder
	s.WriteString(b.label)
	elapsed := now.Sub(b.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed
	}
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		n := int(frac * float64(b.width))
		fmt.Fprintf(&s, " [%s%s] %3.0f%% %d/%d %s", strings.Repeat("=", n), strings.Repeat(" ", b.width-n), frac*100, done, total, b.unit)
		if rate > 0 && done < total {
			eta := time.Duration(float64(total-done) / rate * float64(time.Second))
			fmt.Fprintf(&s, " ETA %s", eta.Round(time.Second))
		}
	} else {
		fmt.Fprintf(&s, " %d %s", done, b.unit)
	}
	fmt.Fprintf(&s, " %.0f %s/s", rate, b.unit)
	if b.status != "" {
		fmt.Fprintf(&s, " %s", b.status)
	}
	return s.String()
}

// Done ends the line so that later output starts on a fresh one.
func (b *bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}
