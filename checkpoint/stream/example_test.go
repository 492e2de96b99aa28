package stream_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
)

// Writing the image `xl save` writes for a PVH guest: xl header with the
// domain config, libxl layer, libxc stream.
func ExampleWriter() {
	var img bytes.Buffer
	w := stream.NewWriter(&img, nil)
	page := make([]byte, stream.PageSize)
	err := errors.Join(
		w.WriteXLHeader([]byte(`{"c_info":{"type":"pvh"}}`)),
		w.WriteLibxlHeader(),
		w.WriteLibxcContext(),
		w.WriteImageHeader(),
		w.WriteDomainHeader(stream.DomainHeader{Type: stream.DomainTypeHVM, XenMajor: 4, XenMinor: 17}),
		w.WriteStaticDataEnd(),
		w.WritePageData([]uint64{
			stream.PFNEntry(0x100, stream.PageNoTab),
			stream.PFNEntry(0x101, stream.PageXTab), // a hole: no data
		}, [][]byte{page}),
		w.WriteTSCInfo(stream.TSCInfo{KHz: 2_000_000}),
		w.WriteHVMContext([]byte{0x86, 0x12, 0x38, 0x54}),
		w.WriteHVMParams([]stream.HVMParam{{Index: 1, Value: 0xfeffc}}),
		w.WriteEnd(),
		w.WriteLibxlEnd(), // flushes
	)
	fmt.Println(err, img.Len())
	// Output: <nil> 4374
}

// Reading a checkpointed (Remus) stream: only complete checkpoints are
// handed over; a cut inside one ends with ErrIncompleteCheckpoint.
func ExampleReader_checkpoints() {
	var img bytes.Buffer
	w := stream.NewWriter(&img, nil)
	_ = w.WriteImageHeader()
	_ = w.WriteDomainHeader(stream.DomainHeader{Type: stream.DomainTypeHVM})
	_ = w.WriteStaticDataEnd()
	for range 3 {
		_ = w.WritePageData([]uint64{stream.PFNEntry(1, stream.PageNoTab)}, [][]byte{make([]byte, stream.PageSize)})
		_ = w.WriteHVMContext([]byte{1})
		_ = w.WriteCheckpoint()
	}
	cut := img.Bytes()[:img.Len()-100] // the link breaks inside checkpoint 3

	r := stream.NewReader(bytes.NewReader(cut), &stream.ReaderOptions{Checkpoints: stream.CheckpointsBuffered})
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println("stopped:", errors.Is(err, stream.ErrIncompleteCheckpoint), "complete:", r.Checkpoints())
			break
		}
		if rec.Kind == stream.KindLibxc && rec.Type == stream.RecCheckpoint {
			fmt.Println("checkpoint complete")
		}
	}
	// Output:
	// checkpoint complete
	// checkpoint complete
	// stopped: true complete: 2
}
