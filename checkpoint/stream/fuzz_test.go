package stream

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// fuzzSeeds are real-shaped images: the Writer's own images, the raw
// streams of the error tests, and the fixtures derived from real xl images.
func fuzzSeeds(f *testing.F) [][]byte {
	seeds := [][]byte{validPV, validHVM, cat(libxlHdr, libxcCtx, validHVM, emuCtx, libxlEnd)}
	for _, im := range []image{
		{dom: DomainTypePV, layer: LayerXL, pages: 3},
		{dom: DomainTypeHVM, layer: LayerLibxl, pages: 3, emulator: true, xenstore: true},
		{dom: DomainTypePV, layer: LayerLibxc, pages: 2, checkpoints: 2},
		{dom: DomainTypeHVM, layer: LayerLibxl, pages: 2, checkpoints: 1, emulator: true},
		{dom: DomainTypePV, layer: LayerLibxc, pages: 2, version: 2},
	} {
		seeds = append(seeds, imageBytes(f, im))
	}
	var back bytes.Buffer
	bw := NewWriter(&back, &WriterOptions{BackChannel: true})
	if err := errors.Join(bw.WriteCheckpointState(CheckpointStateSVMSuspended),
		bw.WriteCheckpointDirtyPFNList([]uint64{1, 2, 3})); err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, back.Bytes())
	paths, _ := filepath.Glob("testdata/*.small")
	heads, _ := filepath.Glob("testdata/*.head")
	for _, p := range append(paths, heads...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzReaderNext feeds arbitrary bytes to the Reader in every checkpoint
// mode. Properties: no panic; Next returns a zero Record exactly when it
// returns an error; every error is a *FormatError; memory use is bounded by
// the input's size (nothing is allocated from an unchecked length); a
// stream read to its end is rewritten byte for byte.
func FuzzReaderNext(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		for _, mode := range []CheckpointMode{CheckpointsRefused, CheckpointsBuffered, CheckpointsUnbuffered} {
			fuzzRead(t, b, &ReaderOptions{Checkpoints: mode, MaxPFN: 1 << 20}, nil)
		}
		fuzzRead(t, b, &ReaderOptions{Layer: LayerBackChannel, MaxPFN: 1 << 20}, &WriterOptions{BackChannel: true})
		runtime.ReadMemStats(&ms)
		// Four passes, each holding the input at most a few times over
		// (bodies, owned copies of buffered checkpoints, page buffers),
		// plus fixed buffers (bufio, staging).
		if used, limit := ms.TotalAlloc-before, uint64(4*(16*len(b)+4<<20)); used > limit {
			t.Fatalf("allocated %d bytes for a %d-byte input (limit %d)", used, len(b), limit)
		}
	})
}

func fuzzRead(t *testing.T, b []byte, opts *ReaderOptions, wopts *WriterOptions) {
	r := NewReader(bytes.NewReader(b), opts)
	split := false
	for {
		rec, err := r.Next()
		if err != nil {
			if rec.Kind != 0 || rec.Body != nil || rec.PFNs != nil {
				t.Fatalf("non-zero record %v with error %v", rec, err)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T) is not a *FormatError", err, err)
			}
			return
		}
		if rec.Kind == 0 {
			t.Fatal("zero record without error")
		}
		if rec.Kind == KindLibxc && rec.Type == RecPageData {
			split = split || len(rec.PFNs) > MaxPagesPerRecord
			p, err := r.Pages()
			if err != nil {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("Pages error %v is not a *FormatError", err)
				}
				return
			}
			if len(p) != rec.DataPages*PageSize {
				t.Fatalf("Pages returned %d bytes for %d pages", len(p), rec.DataPages)
			}
		}
	}
	if split {
		return // the Writer splits records of more than 1024 pfns
	}
	var out bytes.Buffer
	w := NewWriter(&out, wopts)
	r2 := NewReader(bytes.NewReader(b), opts)
	for {
		rec, err := r2.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("second read failed: %v", err)
		}
		if err := w.CopyRecord(r2, rec); err != nil {
			t.Fatalf("rewriting %v: %v", rec, err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), b[:r2.Offset()]) {
		t.Fatalf("rewritten stream differs from input")
	}
}
