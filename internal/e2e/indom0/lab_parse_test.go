//go:build xenckpt_dom0

package indom0

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestParseTicks runs on the host too (it needs no Xen): the console logs
// of a migrated guest merge by timestamp.
func TestParseTicks(t *testing.T) {
	main := []byte("[2026-11-27 15:50:01.100] DOMU: tick 1\n[2026-11-27 15:50:02.100] DOMU: tick 2\n" +
		"[2026-11-27 15:50:09.100] DOMU: tick 5\r\n[2026-11-27 15:50:10.100] other line\n")
	incoming := []byte("[2026-11-27 15:50:07.100] DOMU: tick 3\n[2026-11-27 15:50:08.100] DOMU: tick 4\n")
	assert.Equal(t, []int{1, 2, 3, 4, 5}, parseTicks(main, incoming))
	// A line xenconsoled did not stamp keeps its place.
	assert.Equal(t, []int{259, 260, 261}, parseTicks([]byte("[2026-11-27 16:05:42] DOMU: tick 259\nDOMU: tick 260\n[2026-11-27 16:05:46] DOMU: tick 261\n")))
	assert.Equal(t, []int{7, 8, 3}, parseTicks([]byte("DOMU: tick 7\nDOMU: tick 8\nDOMU: tick 3\n")), "without timestamps: file order")
	// One-second timestamps: the post-rename tick shares a second with the
	// last incoming one.
	assert.Equal(t, []int{1, 2, 3}, parseTicks([]byte("[2026-11-27 15:50:01] DOMU: tick 1\n[2026-11-27 15:50:03] DOMU: tick 3\n"),
		[]byte("[2026-11-27 15:50:03] DOMU: tick 2\n")))
}
