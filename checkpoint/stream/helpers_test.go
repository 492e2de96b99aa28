package stream

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// image describes a synthetic stream for the tests.
type image struct {
	dom         DomainType
	layer       Layer // outermost: LayerXL, LayerLibxl or LayerLibxc
	checkpoints int   // number of CHECKPOINT rounds before END
	xenstore    bool  // non-empty EMULATOR_XENSTORE_DATA (HVM, libxl)
	emulator    bool  // EMULATOR_CONTEXT (HVM, libxl)
	pages       int   // pfns per memory round
	version     uint32
}

// page returns deterministic content for pfn in round.
func page(pfn uint64, round int) []byte {
	p := make([]byte, PageSize)
	for i := range p {
		p[i] = byte(uint64(i)*7 + pfn*13 + uint64(round))
	}
	return p
}

var testConfig = []byte(`{"c_info": {"type": "pv", "name": "t"}}`)

// writeImage writes im through w and returns nothing; failures stop t.
func writeImage(t testing.TB, w *Writer, im image) {
	t.Helper()
	ok := func(err error) {
		t.Helper()
		require.NoError(t, err)
	}
	if im.layer == LayerXL {
		ok(w.WriteXLHeader(testConfig))
	}
	if im.layer != LayerLibxc {
		ok(w.WriteLibxlHeader())
		ok(w.WriteLibxcContext())
	}
	ok(w.WriteImageHeader())
	ok(w.WriteDomainHeader(DomainHeader{Type: im.dom, XenMajor: 4, XenMinor: 17}))
	pv := im.dom == DomainTypePV
	if pv {
		ok(w.WriteX86PVInfo(X86PVInfo{GuestWidth: 8, PTLevels: 4}))
	}
	if im.version != 2 {
		ok(w.WriteCPUIDPolicy([]CPUIDLeaf{{Leaf: 0, Subleaf: 0xffffffff, A: 0xd, B: 0x756e6547}, {Leaf: 1, A: 0x306c3}}))
		ok(w.WriteMSRPolicy([]MSREntry{{Index: 0xce, Value: 1 << 31}}))
		ok(w.WriteStaticDataEnd())
	}
	n := max(im.pages, 1)
	if pv {
		// 512 p2m entries per frame at width 8.
		frames := make([]uint64, uint64(n-1)/512+1)
		for i := range frames {
			frames[i] = uint64(n + i)
		}
		ok(w.WriteP2MFrames(P2MFrames{StartPFN: 0, EndPFN: uint32(n - 1), Frames: frames}))
	}
	for round := 0; round <= im.checkpoints; round++ {
		var entries []uint64
		var pages [][]byte
		for pfn := uint64(0); pfn < uint64(n); pfn++ {
			typ := PageNoTab
			switch {
			case pfn%17 == 5:
				typ = PageXTab
			case pv && pfn == 1:
				typ = PageL4TabPin
			case pv && pfn == 2:
				typ = PageL1Tab
			}
			entries = append(entries, PFNEntry(pfn, typ))
			if typ.HasData() {
				pages = append(pages, page(pfn, round))
			}
		}
		ok(w.WritePageData(entries, pages))
		ok(w.WriteTSCInfo(TSCInfo{Mode: 0, KHz: 2_000_000, Nsec: 123456789, Incarnation: uint32(round)}))
		if pv {
			ok(w.WriteSharedInfo(page(999, round)))
			ok(w.WriteVCPU(RecX86PVVCPUBasic, VCPU{ID: 0, Context: bytes.Repeat([]byte{byte(round + 1)}, VCPUContextSize64)}))
			ok(w.WriteVCPU(RecX86PVVCPUExtended, VCPU{ID: 0, Context: make([]byte, 128)}))
			ok(w.WriteVCPU(RecX86PVVCPUXSave, VCPU{ID: 0, Context: make([]byte, 24)}))
			ok(w.WriteVCPU(RecX86PVVCPUMSRs, VCPU{ID: 0, Context: make([]byte, 32)}))
		} else {
			ok(w.WriteHVMContext(bytes.Repeat([]byte{0x86, 0x12, 0x38, 0x54, byte(round)}, 501)))
			ok(w.WriteHVMParams([]HVMParam{{Index: 1, Value: 0xfeffc}, {Index: 17, Value: 0xfeffd}}))
		}
		if round < im.checkpoints {
			ok(w.WriteCheckpoint())
			if im.layer != LayerLibxc {
				im.writeEmulator(t, w, round)
				ok(w.WriteCheckpointEnd())
			}
		}
	}
	ok(w.WriteEnd())
	if im.layer != LayerLibxc {
		im.writeEmulator(t, w, im.checkpoints)
		ok(w.WriteLibxlEnd())
	}
	ok(w.Flush())
}

func (im image) writeEmulator(t testing.TB, w *Writer, round int) {
	t.Helper()
	if im.xenstore {
		require.NoError(t, w.WriteEmulatorXenstoreData(EmulatorQEMUUpstream, 0, []string{"physmap/1/size", "1000", "state", "running"}))
	}
	if im.emulator {
		require.NoError(t, w.WriteEmulatorContext(EmulatorQEMUUpstream, 0, bytes.Repeat([]byte{'Q', byte(round)}, 333)))
	}
}

// imageBytes returns the bytes of im.
func imageBytes(t testing.TB, im image) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, &WriterOptions{Version: im.version})
	writeImage(t, w, im)
	return buf.Bytes()
}

// readAll reads every record of b, returning them (with owned copies of
// bodies and page data) or the first error.
type readRec struct {
	Record
	pages []byte
}

func readAll(b []byte, opts *ReaderOptions) ([]readRec, error) {
	r := NewReader(bytes.NewReader(b), opts)
	var out []readRec
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		rr := readRec{Record: rec}
		rr.Body = bytes.Clone(rec.Body)
		rr.PFNs = append([]uint64(nil), rec.PFNs...)
		if rec.Kind == KindLibxc && rec.Type == RecPageData {
			p, err := r.Pages()
			if err != nil {
				return out, err
			}
			rr.pages = bytes.Clone(p)
		}
		out = append(out, rr)
	}
}

// rewrite reads b and writes it again through CopyRecord.
func rewrite(t testing.TB, b []byte, opts *ReaderOptions) []byte {
	t.Helper()
	var out bytes.Buffer
	w := NewWriter(&out, nil)
	r := NewReader(bytes.NewReader(b), opts)
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.NoError(t, w.CopyRecord(r, rec))
	}
	require.NoError(t, w.Flush())
	return out.Bytes()
}
