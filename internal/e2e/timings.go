package e2e

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Timing is one line of the payload's timings.tsv.
type Timing struct {
	Tool, Op, Guest string
	Seconds         float64
}

// ParseTimings reads timings.tsv lines (tool, operation, guest, seconds).
func ParseTimings(tsv string) []Timing {
	var out []Timing
	for _, line := range strings.Split(tsv, "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			continue
		}
		s, err := strconv.ParseFloat(f[3], 64)
		if err != nil {
			continue
		}
		out = append(out, Timing{Tool: f[0], Op: f[1], Guest: f[2], Seconds: s})
	}
	return out
}

// comparable pairs the project's operations with xl's equivalent.
var comparable = []struct{ ours, xl string }{
	{"checkpoint", "save -c"},
	{"save", "save"},
	{"migrate", "migrate"},
}

// TimingReport formats the project-versus-xl comparison (medians of each
// operation per guest type) as a Markdown table for the README.
func TimingReport(ts []Timing) string {
	med := func(tool, op, guest string) (float64, int) {
		var v []float64
		for _, t := range ts {
			if t.Tool == tool && t.Op == op && t.Guest == guest {
				v = append(v, t.Seconds)
			}
		}
		if len(v) == 0 {
			return 0, 0
		}
		sort.Float64s(v)
		return v[len(v)/2], len(v)
	}
	var b strings.Builder
	b.WriteString("| operation | guest | xenckpt (s) | xl (s) | ratio |\n|---|---|---|---|---|\n")
	for _, c := range comparable {
		for _, g := range []string{"pv", "pvh"} {
			ours, n := med("xenckpt", c.ours, g)
			theirs, m := med("xl", c.xl, g)
			if n == 0 && m == 0 {
				continue
			}
			ratio := "n/a"
			if n > 0 && m > 0 && theirs > 0 {
				ratio = fmt.Sprintf("%.2f", ours/theirs)
			}
			fmt.Fprintf(&b, "| %s vs xl %s | %s | %s | %s | %s |\n", c.ours, c.xl, g, fmtSecs(ours, n), fmtSecs(theirs, m), ratio)
		}
	}
	return b.String()
}

func fmtSecs(s float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", s)
}
