package stream

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBackChannel(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, &WriterOptions{BackChannel: true})
	require.NoError(t, w.WriteCheckpointState(CheckpointStateSVMSuspended))
	assert.Equal(t, 16, buf.Len(), "back-channel records are flushed at once")
	require.NoError(t, w.WriteCheckpointDirtyPFNList([]uint64{1, 7, 0x1000}))
	require.NoError(t, w.WriteCheckpointState(CheckpointStateSVMReady))
	assert.ErrorIs(t, w.WriteEnd(), ErrUnexpectedRecord)
	assert.ErrorIs(t, w.WriteLibxlEnd(), ErrUnexpectedRecord)
	assert.ErrorIs(t, w.WriteImageHeader(), ErrOrder)

	opts := &ReaderOptions{Layer: LayerBackChannel, MaxPFN: 0x1000}
	recs, err := readAll(buf.Bytes(), opts)
	require.NoError(t, err, "a closed channel after whole records is a clean end")
	require.Len(t, recs, 3)
	s, err := recs[0].CheckpointState()
	require.NoError(t, err)
	assert.Equal(t, CheckpointStateSVMSuspended, s)
	pfns, err := recs[1].DirtyPFNs()
	require.NoError(t, err)
	assert.Equal(t, []uint64{1, 7, 0x1000}, pfns)
	assert.Equal(t, buf.Bytes(), rewriteBack(t, buf.Bytes(), opts))

	_, err = readAll(buf.Bytes()[:buf.Len()-3], opts)
	assert.ErrorIs(t, err, ErrTruncated)
	_, err = readAll(buf.Bytes(), &ReaderOptions{Layer: LayerBackChannel, MaxPFN: 0xfff})
	assert.ErrorIs(t, err, ErrBadPFN)
	_, err = readAll(cat(rawRec(uint32(RecCheckpoint), nil)), opts)
	assert.ErrorIs(t, err, ErrUnexpectedRecord)

	// The forward stream refuses the back channel's records.
	w = NewWriter(&bytes.Buffer{}, nil)
	require.NoError(t, w.WriteImageHeader())
	require.NoError(t, w.WriteDomainHeader(DomainHeader{Type: DomainTypeHVM}))
	assert.ErrorIs(t, w.WriteCheckpointDirtyPFNList([]uint64{1}), ErrUnexpectedRecord)
}

func rewriteBack(t *testing.T, b []byte, opts *ReaderOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, &WriterOptions{BackChannel: true})
	recs, err := readAll(b, opts)
	require.NoError(t, err)
	for _, rec := range recs {
		require.NoError(t, w.CopyRecord(nil, rec.Record))
	}
	return out.Bytes()
}
