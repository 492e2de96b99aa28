package e2e

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestParseGoTest(t *testing.T) {
	out := `=== RUN   TestA
    a_test.go:1: hello
--- PASS: TestA (0.10s)
=== RUN   TestB
=== RUN   TestB/sub
    b_test.go:9: boom
--- FAIL: TestB (1.00s)
    --- FAIL: TestB/sub (1.00s)
=== RUN   TestC
    c_test.go:3: not here
--- SKIP: TestC (0.00s)
=== RUN   TestD
panic: oops
FAIL
`
	got := ParseGoTest(out)
	var names, status []string
	for _, r := range got {
		names = append(names, r.Name)
		status = append(status, r.Status)
	}
	assert.Equal(t, []string{"TestA", "TestB", "TestC", "TestD"}, names)
	assert.Equal(t, []string{"PASS", "FAIL", "SKIP", ""}, status)
	assert.Contains(t, got[1].Output, "    b_test.go:9: boom")
	assert.Contains(t, got[1].Output, "    --- FAIL: TestB/sub (1.00s)")
	assert.Contains(t, got[3].Output, "panic: oops")
}

func TestVersionLess(t *testing.T) {
	assert.True(t, versionLess("/boot/vmlinuz-6.1.0-9-amd64", "/boot/vmlinuz-6.1.0-56-amd64"))
	assert.False(t, versionLess("/boot/vmlinuz-6.10.0-1-amd64", "/boot/vmlinuz-6.9.0-1-amd64"))
}

func TestTimingReport(t *testing.T) {
	ts := ParseTimings("xl\tsave -c\tpv\t2.000\nxenckpt\tcheckpoint\tpv\t1.000\nxenckpt\tcheckpoint\tpv\t3.000\nxenckpt\tcheckpoint\tpv\t1.500\nbad line\n")
	assert.Len(t, ts, 4)
	r := TimingReport(ts)
	assert.Contains(t, r, "| checkpoint vs xl save -c | pv | 1.50 | 2.00 | 0.75 |")
	assert.NotContains(t, r, "| pvh |")
}

func TestDigest(t *testing.T) {
	out := `=== RUN   TestA
--- PASS: TestA (0.10s)
=== RUN   TestB
=== RUN   TestB/sub
    b_test.go:9: boom
        	Error Trace:	x
        	Error:      	Received unexpected error:
        	            	EIO
--- FAIL: TestB (1.00s)
    --- FAIL: TestB/sub (1.00s)
=== RUN   TestD
    d_test.go:3: working
`
	d := Digest(ParseGoTest(out), 20)
	assert.Equal(t, "FAIL TestB\n    b_test.go:9: boom\n    Error:      \tReceived unexpected error: EIO\n    --- FAIL: TestB/sub (1.00s)\nUNFINISHED TestD\n    d_test.go:3: working\n    last: d_test.go:3: working", d)
	assert.Len(t, strings.Split(Digest(ParseGoTest(out), 2), "\n"), 2, "max bounds the lines")
}
