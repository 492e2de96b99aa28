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
