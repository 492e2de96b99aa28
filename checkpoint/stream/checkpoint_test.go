package stream

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// boundaryEnds returns the stream offsets just after each checkpoint
// boundary record of b (read unbuffered).
func boundaryEnds(t *testing.T, b []byte, libxl bool) []int64 {
	t.Helper()
	r := NewReader(bytes.NewReader(b), &ReaderOptions{Checkpoints: CheckpointsUnbuffered})
	var ends []int64
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return ends
		}
		require.NoError(t, err)
		if (!libxl && rec.Kind == KindLibxc && rec.Type == RecCheckpoint) ||
			(libxl && rec.Kind == KindLibxl && rec.LibxlType == LibxlCheckpointEnd) {
			ends = append(ends, r.Offset())
		}
	}
}

// TestCheckpointBuffering cuts checkpointed streams at many offsets and
// checks that the buffered Reader hands over only complete checkpoints.
func TestCheckpointBuffering(t *testing.T) {
	for _, name := range []string{"libxc-pv-checkpointed", "libxl-hvm-checkpointed"} {
		t.Run(name, func(t *testing.T) {
			im := images[name]
			libxl := im.layer != LayerLibxc
			b := imageBytes(t, im)
			ends := boundaryEnds(t, b, libxl)
			require.Len(t, ends, im.checkpoints)

			cuts := []int64{0, 1, 100}
			for c := int64(0); c < int64(len(b)); c += 1531 {
				cuts = append(cuts, c)
			}
			for _, e := range ends {
				cuts = append(cuts, e-1, e, e+1, e+9)
			}
			for _, cut := range cuts {
				cut = min(cut, int64(len(b))-1)
				r := NewReader(bytes.NewReader(b[:cut]), &ReaderOptions{Checkpoints: CheckpointsBuffered})
				var last Record
				var err error
				for {
					var rec Record
					rec, err = r.Next()
					if err != nil {
						break
					}
					last = rec
					if rec.Kind == KindLibxc && rec.Type == RecPageData {
						// Page data of buffered records is still readable.
						p, perr := r.Pages()
						if perr != nil {
							// Only possible before the first checkpoint,
							// which is not buffered (as in libxc).
							require.Zero(t, r.Checkpoints(), "cut %d", cut)
							err = perr
							break
						}
						require.Len(t, p, rec.DataPages*PageSize)
					}
				}
				if r.Checkpoints() > 0 || !errors.Is(err, ErrTruncated) {
					require.ErrorIs(t, err, ErrIncompleteCheckpoint, "cut %d", cut)
				}
				require.ErrorIs(t, err, ErrTruncated, "cut %d", cut)
				k := 0
				for _, e := range ends {
					if e <= cut {
						k++
					}
				}
				assert.Equal(t, k, r.Checkpoints(), "cut %d", cut)
				if k > 0 {
					// The last record handed over closes checkpoint k.
					if libxl {
						assert.Equal(t, LibxlCheckpointEnd, last.LibxlType, "cut %d", cut)
					} else {
						assert.Equal(t, RecCheckpoint, last.Type, "cut %d", cut)
					}
				}
			}
		})
	}
}

func TestCheckpointModesAgree(t *testing.T) {
	for _, name := range []string{"libxc-pv-checkpointed", "libxl-hvm-checkpointed"} {
		b := imageBytes(t, images[name])
		buffered, err := readAll(b, &ReaderOptions{Checkpoints: CheckpointsBuffered})
		require.NoError(t, err)
		unbuffered, err := readAll(b, &ReaderOptions{Checkpoints: CheckpointsUnbuffered})
		require.NoError(t, err)
		assert.Equal(t, unbuffered, buffered, name)

		_, err = readAll(b, nil)
		assert.ErrorIs(t, err, ErrUnexpectedRecord, "plain mode must refuse CHECKPOINT")
	}
}

func TestCheckpointTooLarge(t *testing.T) {
	b := imageBytes(t, images["libxc-pv-checkpointed"])
	_, err := readAll(b, &ReaderOptions{Checkpoints: CheckpointsBuffered, MaxCheckpointBytes: 64 << 10})
	assert.ErrorIs(t, err, ErrCheckpointTooLarge)
	assert.ErrorIs(t, err, ErrIncompleteCheckpoint)
}
