package e2e

import (
	"regexp"
	"strings"
)

// TestResult is one top-level test of the payload's `go test -v` output.
type TestResult struct {
	Name   string
	Status string // "PASS", "FAIL", "SKIP", or "" if it never finished
	Output []string
}

var (
	runRE = regexp.MustCompile(`^=== RUN\s+(\S+)$`)
	endRE = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+) \(`)
)

// ParseGoTest splits `go test -v` output into its top-level tests, in the
// order they started. Subtest lines stay in their parent's Output.
func ParseGoTest(out string) []TestResult {
	var (
		res []TestResult
		cur = -1
	)
	idx := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		if m := runRE.FindStringSubmatch(line); m != nil && !strings.Contains(m[1], "/") {
			idx[m[1]] = len(res)
			res = append(res, TestResult{Name: m[1]})
			cur = len(res) - 1
		}
		if m := endRE.FindStringSubmatch(line); m != nil && !strings.Contains(m[2], "/") {
			if i, ok := idx[m[2]]; ok {
				res[i].Status = m[1]
				res[i].Output = append(res[i].Output, line)
				cur = i
				continue
			}
		}
		if cur >= 0 {
			res[cur].Output = append(res[cur].Output, line)
		}
	}
	return res
}

// failLineRE matches the lines of a failing test that say why: t.Error and
// t.Fatal output (file:line:), testify's Error: lines and panics.
var failLineRE = regexp.MustCompile(`^\s*(\S+_test\.go:\d+:|Error:|panic:|--- FAIL:)`)

// Digest condenses the failing and unfinished tests of res into at most
// max lines: each test's name and the first lines that say why it failed.
// TestXenLab logs it last, so the end of a CI log (often all that is kept)
// names the first cause, not only the cascade of failures after it.
func Digest(res []TestResult, max int) string {
	var b strings.Builder
	n := 0
	add := func(s string) bool {
		if n >= max {
			return false
		}
		b.WriteString(s)
		b.WriteByte('\n')
		n++
		return true
	}
	for _, r := range res {
		if r.Status == "PASS" || r.Status == "SKIP" {
			continue
		}
		status := r.Status
		if status == "" {
			status = "UNFINISHED"
		}
		if !add(status + " " + r.Name) {
			break
		}
		why := 0
		for i, l := range r.Output {
			if why == 4 {
				break
			}
			if failLineRE.MatchString(l) && !strings.HasPrefix(strings.TrimSpace(l), "--- FAIL: "+r.Name+" ") {
				l = strings.TrimSpace(l)
				// testify puts the error itself on the line after
				// "Error: Received unexpected error:".
				if strings.HasSuffix(l, ":") && i+1 < len(r.Output) {
					l += " " + strings.TrimSpace(r.Output[i+1])
				}
				if len(l) > 200 {
					l = l[:200] + "…"
				}
				if !add("    " + l) {
					break
				}
				why++
			}
		}
		if status == "UNFINISHED" {
			for i := len(r.Output) - 1; i >= 0; i-- {
				if l := strings.TrimSpace(r.Output[i]); l != "" {
					add("    last: " + l)
					break
				}
			}
		}
	}
	return strings.TrimRight(b.String(), "\n")
}
