package stream

import (
	"bytes"
	"io"
	"net"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// vecRecorder is a BuffersWriter that remembers which buffers it was given.
type vecRecorder struct {
	bytes.Buffer
	calls int
	nbufs []int // buffers of each call
	bases map[*byte]bool
}

func (v *vecRecorder) WriteBuffers(bufs net.Buffers) (int64, error) {
	v.calls++
	v.nbufs = append(v.nbufs, len(bufs))
	for _, b := range bufs {
		if len(b) > 0 {
			v.bases[unsafe.SliceData(b)] = true
		}
	}
	return bufs.WriteTo(&v.Buffer)
}

// newHVMWriter returns a writer to dst past an HVM stream's headers.
func newHVMWriter(t *testing.T, dst io.Writer) *Writer {
	t.Helper()
	w := NewWriter(dst, nil)
	require.NoError(t, w.WriteImageHeader())
	require.NoError(t, w.WriteDomainHeader(DomainHeader{Type: DomainTypeHVM}))
	require.NoError(t, w.WriteStaticDataEnd())
	return w
}

// TestVectoredPageData checks that page slices reach a BuffersWriter as the
// caller's own memory (no copy), and that the bytes equal those of the
// copying path.
func TestVectoredPageData(t *testing.T) {
	entries := []uint64{PFNEntry(0, PageNoTab), PFNEntry(1, PageXTab), PFNEntry(2, PageNoTab)}
	pages := [][]byte{page(0, 0), page(2, 0)}
	contig := append(page(0, 1), page(2, 1)...)
	write := func(dst io.Writer) {
		w := newHVMWriter(t, dst)
		require.NoError(t, w.WritePageData(entries, pages))
		require.NoError(t, w.WritePageDataContiguous(entries, contig))
		require.NoError(t, w.WriteHVMContext([]byte{1}))
		require.NoError(t, w.WriteEnd())
	}
	var plain bytes.Buffer
	write(&plain)
	v := &vecRecorder{bases: map[*byte]bool{}}
	write(v)
	assert.Equal(t, plain.Bytes(), v.Bytes())
	assert.Equal(t, 2, v.calls, "one vectored write per PAGE_DATA record")
	for i, p := range pages {
		assert.True(t, v.bases[unsafe.SliceData(p)], "page %d was copied", i)
	}
	assert.True(t, v.bases[unsafe.SliceData(contig)], "contiguous pages were copied")

	// net.Conn destinations take the vectored path too.
	c1, c2 := net.Pipe()
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(c2)
		done <- b
	}()
	write(c1)
	require.NoError(t, c1.Close())
	assert.Equal(t, plain.Bytes(), <-done)
}

// TestVectoredPageRuns: pages that lie back to back in memory (a mapped
// batch) reach a BuffersWriter as one buffer, not one per page; a page
// elsewhere starts a new one.
func TestVectoredPageRuns(t *testing.T) {
	batch := make([]byte, 64*PageSize)
	other := page(9, 9)
	var pages [][]byte
	entries := make([]uint64, 0, 65)
	for i := range 64 {
		pages = append(pages, batch[i*PageSize:(i+1)*PageSize])
		entries = append(entries, PFNEntry(uint64(i), PageNoTab))
	}
	pages = append(pages[:32:32], append([][]byte{other}, pages[32:]...)...)
	entries = append(entries, PFNEntry(64, PageNoTab))
	for i := range batch {
		batch[i] = byte(i / PageSize)
	}
	write := func(dst io.Writer) {
		w := newHVMWriter(t, dst)
		require.NoError(t, w.WritePageData(entries, pages))
		require.NoError(t, w.Flush())
	}
	var plain bytes.Buffer
	write(&plain)
	v := &vecRecorder{bases: map[*byte]bool{}}
	write(v)
	assert.Equal(t, []int{4}, v.nbufs, "headers, pages 0-31, the page elsewhere, pages 32-63")
	assert.Greater(t, plain.Len(), 65*PageSize)
	assert.True(t, bytes.Equal(plain.Bytes(), v.Bytes()), "the same bytes as the copying path")
}

// shortWriter accepts at most n bytes in total, then fails.
type shortWriter struct{ n int }

func (s *shortWriter) Write(p []byte) (int, error) {
	if len(p) > s.n {
		k := s.n
		s.n = 0
		return k, io.ErrClosedPipe
	}
	s.n -= len(p)
	return len(p), nil
}

func TestWriterErrorsAreSticky(t *testing.T) {
	w := NewWriter(&shortWriter{n: 100}, nil)
	require.NoError(t, w.WriteImageHeader())
	require.NoError(t, w.WriteDomainHeader(DomainHeader{Type: DomainTypeHVM}))
	require.NoError(t, w.WriteStaticDataEnd())
	big := make([]byte, 2<<20)
	err := w.WritePageDataContiguous(make([]uint64, 512), big)
	assert.ErrorIs(t, err, io.ErrClosedPipe)
	assert.ErrorIs(t, w.WriteHVMContext([]byte{1}), io.ErrClosedPipe)
	assert.ErrorIs(t, w.Flush(), io.ErrClosedPipe)
}

func TestWriterOffset(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, nil)
	writeImage(t, w, images["xl-pv"])
	assert.Equal(t, int64(buf.Len()), w.Offset())
}

func TestContiguousRun(t *testing.T) {
	mem := make([]byte, 4*PageSize)
	p := func(i int) []byte { return mem[i*PageSize : (i+1)*PageSize] }
	assert.Equal(t, 4, contiguousRun([][]byte{p(0), p(1), p(2), p(3)}))
	assert.Equal(t, 2, contiguousRun([][]byte{p(0), p(1), p(3)}))
	assert.Equal(t, 1, contiguousRun([][]byte{p(1), p(0)}))
	// Adjacent memory beyond the first slice's capacity is not a run.
	assert.Equal(t, 1, contiguousRun([][]byte{mem[: PageSize : PageSize+1], p(1)}))
	assert.Equal(t, 1, contiguousRun([][]byte{page(0, 0), page(1, 0)}))
}

func TestLargeRecordIsNotStaged(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, &WriterOptions{BufferSize: 64 << 10})
	capBefore := cap(w.buf)
	blob := bytes.Repeat([]byte{7}, 4<<20+3)
	require.NoError(t, w.WriteLibxlHeader())
	require.NoError(t, w.WriteEmulatorContext(EmulatorQEMUUpstream, 0, blob))
	assert.Equal(t, capBefore, cap(w.buf), "staging buffer grew")
	require.NoError(t, w.WriteLibxlEnd())
	recs, err := readAll(buf.Bytes(), nil)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	emu, err := recs[1].Emulator()
	require.NoError(t, err)
	assert.Equal(t, Emulator{ID: EmulatorQEMUUpstream, Data: blob}, emu)
}
