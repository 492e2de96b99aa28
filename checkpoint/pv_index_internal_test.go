package checkpoint

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFrameIndex: the p2m's inverse answers as a map built from it would,
// with the MFNs packed (a directory slice) and spread over the frame
// space (a map of blocks), holes and foreign frames answering false.
func TestFrameIndex(t *testing.T) {
	for name, mfnOf := range map[string]func(pfn uint64) uint64{
		"packed": func(pfn uint64) uint64 { return 0x100000 + pfn&^1023 | pfn*389&1023 },
		"spread": func(pfn uint64) uint64 { return 0x100000 + pfn%2*0x8000000 + pfn },
	} {
		t.Run(name, func(t *testing.T) {
			p2m := make([]uint64, 5000)
			want := map[uint64]uint64{}
			for pfn := range uint64(len(p2m)) {
				if pfn%7 == 3 {
					p2m[pfn] = invalidFrame
					continue
				}
				p2m[pfn] = mfnOf(pfn)
				want[p2m[pfn]] = pfn
			}
			p2m[4999] = p2m[11] // one MFN twice: the higher pfn wins
			want[p2m[11]] = 4999
			delete(want, mfnOf(4999))
			x := newFrameIndex(p2m)
			require.NotNil(t, x)
			assert.Equal(t, name == "spread", x.sparse != nil)
			for mfn, pfn := range want {
				got, ok := x.pfn(mfn)
				require.True(t, ok, "mfn %#x", mfn)
				require.Equal(t, pfn, got, "mfn %#x", mfn)
			}
			for _, mfn := range []uint64{0, mfnOf(3), mfnOf(4999), 0xFFFFF, 0x100000 + 1<<20, 1 << 50} {
				_, ok := x.pfn(mfn)
				assert.False(t, ok, "mfn %#x", mfn)
			}
		})
	}
	empty := newFrameIndex([]uint64{invalidFrame})
	_, ok := empty.pfn(0)
	assert.False(t, ok)
}
