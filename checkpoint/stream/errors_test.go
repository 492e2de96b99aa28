package stream

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Raw builders for streams the Writer refuses to write.

func rawImageHeader(version uint32, options uint16) []byte {
	b := make([]byte, ImageHeaderSize)
	binary.BigEndian.PutUint64(b, imageMarker)
	binary.BigEndian.PutUint32(b[8:], imageID)
	binary.BigEndian.PutUint32(b[12:], version)
	binary.BigEndian.PutUint16(b[16:], options)
	return b
}

func rawDomainHeader(typ DomainType, shift uint16) []byte {
	b := make([]byte, DomainHeaderSize)
	le.PutUint32(b, uint32(typ))
	le.PutUint16(b[4:], shift)
	le.PutUint32(b[8:], 4)
	le.PutUint32(b[12:], 17)
	return b
}

func rawRec(typ uint32, body []byte) []byte {
	b := le.AppendUint32(nil, typ)
	b = le.AppendUint32(b, uint32(len(body)))
	b = append(b, body...)
	return append(b, make([]byte, padLen(uint32(len(body))))...)
}

func rawPages(entries ...uint64) []byte {
	b := le.AppendUint32(nil, uint32(len(entries)))
	b = le.AppendUint32(b, 0)
	n := 0
	for _, e := range entries {
		b = le.AppendUint64(b, e)
		if EntryType(e).HasData() {
			n++
		}
	}
	return append(b, make([]byte, n*PageSize)...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

var (
	hdrPV     = cat(rawImageHeader(3, 0), rawDomainHeader(DomainTypePV, 12))
	hdrHVM    = cat(rawImageHeader(3, 0), rawDomainHeader(DomainTypeHVM, 12))
	pvInfo    = rawRec(uint32(RecX86PVInfo), []byte{8, 4, 0, 0, 0, 0, 0, 0})
	sde       = rawRec(uint32(RecStaticDataEnd), nil)
	end       = rawRec(uint32(RecEnd), nil)
	vcpu0     = rawRec(uint32(RecX86PVVCPUBasic), make([]byte, 8+VCPUContextSize64))
	hvmCtx    = rawRec(uint32(RecHVMContext), []byte{1, 2, 3})
	onePage   = rawRec(uint32(RecPageData), rawPages(PFNEntry(3, PageNoTab)))
	libxlHdr  = cat([]byte("LibxlFmt"), []byte{0, 0, 0, 2, 0, 0, 0, 0})
	libxcCtx  = rawRec(uint32(LibxlLibxcContext), nil)
	libxlEnd  = rawRec(uint32(LibxlEnd), nil)
	validPV   = cat(hdrPV, pvInfo, sde, onePage, vcpu0, end)
	validHVM  = cat(hdrHVM, sde, onePage, hvmCtx, end)
	emuCtx    = rawRec(uint32(LibxlEmulatorContext), []byte{2, 0, 0, 0, 0, 0, 0, 0, 'q'})
	badPadded = func() []byte {
		r := rawRec(uint32(RecHVMContext), []byte{1, 2, 3})
		r[len(r)-1] = 1
		return r
	}()
)

func TestValidMinimalStreams(t *testing.T) {
	for name, b := range map[string][]byte{
		"pv": validPV, "hvm": validHVM,
		"libxl-hvm-emu": cat(libxlHdr, libxcCtx, validHVM, emuCtx, libxlEnd),
		"optional":      cat(hdrHVM, rawRec(0x80000123, []byte{1}), sde, onePage, hvmCtx, end),
		"v2-inferred":   cat(rawImageHeader(2, 0), rawDomainHeader(DomainTypeHVM, 12), onePage, hvmCtx, end),
	} {
		_, err := readAll(b, &ReaderOptions{MaxPFN: 3})
		assert.NoError(t, err, name)
	}
}

func TestReaderErrors(t *testing.T) {
	hugeLen := cat(hdrHVM, le.AppendUint32(le.AppendUint32(nil, uint32(RecHVMContext)), MaxRecordLength+1))
	for _, tc := range []struct {
		name   string
		b      []byte
		want   error
		record string
		offset int64
	}{
		{"empty", nil, ErrTruncated, "stream start", 0},
		{"garbage", []byte("not a stream at all"), ErrBadMagic, "stream start", 0},
		{"marker", cat([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 'X', 'E', 'N', 'G'}, make([]byte, 12)), ErrBadMagic, "image header", 0},
		{"version", cat(rawImageHeader(4, 0), validPV[24:]), ErrBadVersion, "image header", 0},
		{"version1", cat(rawImageHeader(1, 0), validPV[24:]), ErrBadVersion, "image header", 0},
		{"big-endian", cat(rawImageHeader(3, 1), validPV[24:]), ErrBigEndian, "image header", 0},
		{"options", cat(rawImageHeader(3, 4), validPV[24:]), ErrReserved, "image header", 0},
		{"domain type", cat(rawImageHeader(3, 0), rawDomainHeader(3, 12), end), ErrBadDomainType, "domain header", 24},
		{"page shift", cat(rawImageHeader(3, 0), rawDomainHeader(DomainTypePV, 13), end), ErrBadPageShift, "domain header", 24},
		{"too large", hugeLen, ErrRecordTooLarge, "HVM_CONTEXT", 40},
		{"padding", cat(hdrHVM, sde, onePage, badPadded, end), ErrBadPadding, "HVM_CONTEXT", 48 + int64(len(onePage))},
		{"page before SDE", cat(hdrHVM, onePage), ErrOrder, "PAGE_DATA", 40},
		{"second SDE", cat(hdrHVM, sde, sde), ErrOrder, "STATIC_DATA_END", 48},
		{"SDE in v2", cat(rawImageHeader(2, 0), rawDomainHeader(DomainTypeHVM, 12), sde), ErrUnexpectedRecord, "STATIC_DATA_END", 40},
		{"cpuid after SDE", cat(hdrHVM, sde, rawRec(uint32(RecX86CPUIDPolicy), make([]byte, 24))), ErrOrder, "X86_CPUID_POLICY", 48},
		{"p2m before pv info", cat(hdrPV, sde, rawRec(uint32(RecX86PVP2MFrames), make([]byte, 16))), ErrOrder, "X86_PV_P2M_FRAMES", 48},
		{"shinfo before pv info", cat(hdrPV, rawRec(uint32(RecSharedInfo), make([]byte, PageSize))), ErrOrder, "SHARED_INFO", 40},
		{"second pv info", cat(hdrPV, pvInfo, pvInfo), ErrOrder, "X86_PV_INFO", 56},
		{"pv info combo", cat(hdrPV, rawRec(uint32(RecX86PVInfo), []byte{8, 3, 0, 0, 0, 0, 0, 0})), ErrBadValue, "X86_PV_INFO", 40},
		{"p2m length", cat(hdrPV, pvInfo, sde, rawRec(uint32(RecX86PVP2MFrames), cat(le.AppendUint32(le.AppendUint32(nil, 0), 1023), make([]byte, 8)))), ErrBadLength, "X86_PV_P2M_FRAMES", 64},
		{"no vcpu0", cat(hdrPV, pvInfo, sde, onePage, end), ErrMissing, "END", 64 + int64(len(onePage))},
		{"vcpu size", cat(hdrPV, pvInfo, rawRec(uint32(RecX86PVVCPUBasic), make([]byte, 8+100))), ErrBadLength, "X86_PV_VCPU_BASIC", 56},
		{"no hvm context", cat(hdrHVM, sde, onePage, end), ErrMissing, "END", 48 + int64(len(onePage))},
		{"hvm record in pv", cat(hdrPV, hvmCtx), ErrUnexpectedRecord, "HVM_CONTEXT", 40},
		{"pv record in hvm", cat(hdrHVM, pvInfo), ErrUnexpectedRecord, "X86_PV_INFO", 40},
		{"toolstack", cat(hdrHVM, rawRec(uint32(RecToolstack), nil)), ErrUnexpectedRecord, "TOOLSTACK", 40},
		{"dirty pfn list", cat(hdrHVM, rawRec(uint32(RecCheckpointDirtyPFNList), nil)), ErrUnexpectedRecord, "CHECKPOINT_DIRTY_PFN_LIST", 40},
		{"checkpoint in plain", cat(hdrHVM, rawRec(uint32(RecCheckpoint), nil)), ErrUnexpectedRecord, "CHECKPOINT", 40},
		{"unknown", cat(hdrHVM, rawRec(0x13, nil)), ErrUnknownRecord, "RecordType(0x13)", 40},
		{"pfn range", cat(hdrHVM, sde, rawRec(uint32(RecPageData), rawPages(PFNEntry(4, PageNoTab)))), ErrBadPFN, "PAGE_DATA", 48},
		{"pfn reserved bits", cat(hdrHVM, sde, rawRec(uint32(RecPageData), rawPages(1<<55))), ErrReserved, "PAGE_DATA", 48},
		{"page type", cat(hdrHVM, sde, rawRec(uint32(RecPageData), rawPages(PFNEntry(1, 6)))), ErrBadPageType, "PAGE_DATA", 48},
		{"page count 0", cat(hdrHVM, sde, rawRec(uint32(RecPageData), make([]byte, 8))), ErrBadValue, "PAGE_DATA", 48},
		{"page length", cat(hdrHVM, sde, rawRec(uint32(RecPageData), rawPages(PFNEntry(1, PageXTab))[:16-0]), rawRec(uint32(RecPageData), cat(rawPages(PFNEntry(1, PageXTab)), make([]byte, 8)))), ErrBadLength, "PAGE_DATA", 72},
		{"tsc length", cat(hdrHVM, rawRec(uint32(RecX86TSCInfo), make([]byte, 16))), ErrBadLength, "X86_TSC_INFO", 40},
		{"hvm params length", cat(hdrHVM, rawRec(uint32(RecHVMParams), cat([]byte{2, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 16)))), ErrBadLength, "HVM_PARAMS", 40},
		{"end length", cat(hdrHVM, rawRec(uint32(RecEnd), []byte{0})), ErrBadLength, "END", 40},
		{"truncated record", validPV[:len(validPV)-3], ErrTruncated, "record header", int64(len(validPV) - 8)},
		{"truncated body", validPV[:100], ErrTruncated, "PAGE_DATA", 64},
		{"libxl ident", cat([]byte("LibxlFmX"), make([]byte, 8)), ErrBadMagic, "stream start", 0},
		{"libxl version", cat([]byte("LibxlFmt"), []byte{0, 0, 0, 3, 0, 0, 0, 0}), ErrBadVersion, "libxl header", 0},
		{"libxl checkpoint end outside", cat(libxlHdr, rawRec(uint32(LibxlCheckpointEnd), nil)), ErrOrder, "CHECKPOINT_END", 16},
		{"libxl second libxc", cat(libxlHdr, libxcCtx, validHVM, libxcCtx), ErrOrder, "LIBXC_CONTEXT", 24 + int64(len(validHVM))},
		{"libxl emulator for pv", cat(libxlHdr, libxcCtx, validPV, emuCtx), ErrUnexpectedRecord, "EMULATOR_CONTEXT", 24 + int64(len(validPV))},
		{"libxl emulator id", cat(libxlHdr, rawRec(uint32(LibxlEmulatorContext), []byte{9, 0, 0, 0, 0, 0, 0, 0})), ErrBadValue, "EMULATOR_CONTEXT", 16},
		{"libxl unknown", cat(libxlHdr, rawRec(6, nil)), ErrUnknownRecord, "LibxlRecordType(0x6)", 16},
		{"xenstore data", cat(libxlHdr, rawRec(uint32(LibxlEmulatorXenstoreData), []byte{2, 0, 0, 0, 0, 0, 0, 0, 'k', 0})), ErrBadValue, "EMULATOR_XENSTORE_DATA", 16},
		{"xl byte order", cat(xlMagic[:], []byte{1, 2, 3, 4}, make([]byte, 12)), ErrBigEndian, "xl header", 0},
		{"xl legacy", cat(xlMagic[:], []byte{4, 3, 2, 1, 1, 0, 0, 0}, make([]byte, 8)), ErrUnsupported, "xl header", 0},
		{"xl config length", cat(xlMagic[:], []byte{4, 3, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 5, 0, 0, 0}), ErrBadLength, "xl header", 0},
		{"xl config nul", cat(xlMagic[:], []byte{4, 3, 2, 1, 3, 0, 0, 0, 0, 0, 0, 0, 6, 0, 0, 0, 2, 0, 0, 0, '{', '}'}), ErrBadValue, "xl header", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.b, &ReaderOptions{MaxPFN: 3})
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.want)
			var fe *FormatError
			if assert.ErrorAs(t, err, &fe) {
				assert.Equal(t, tc.record, fe.Record, "%v", err)
				assert.Equal(t, tc.offset, fe.Offset, "%v", err)
			}
		})
	}
}

func TestReaderDomainType(t *testing.T) {
	_, err := readAll(validPV, &ReaderOptions{DomainType: DomainTypeHVM, MaxPFN: 3})
	assert.ErrorIs(t, err, ErrBadDomainType)
	_, err = readAll(validPV, &ReaderOptions{DomainType: DomainTypePV, MaxPFN: 3})
	assert.NoError(t, err)
}

func TestWriterRefusesBadStreams(t *testing.T) {
	newHVM := func() (*Writer, *bytes.Buffer) {
		var buf bytes.Buffer
		w := NewWriter(&buf, nil)
		require.NoError(t, w.WriteImageHeader())
		require.NoError(t, w.WriteDomainHeader(DomainHeader{Type: DomainTypeHVM}))
		return w, &buf
	}
	w, _ := newHVM()
	err := w.WritePageData([]uint64{PFNEntry(0, PageNoTab)}, [][]byte{make([]byte, PageSize)})
	assert.ErrorIs(t, err, ErrOrder, "PAGE_DATA before STATIC_DATA_END")
	require.NoError(t, w.WriteStaticDataEnd(), "a refused call leaves the Writer usable")
	assert.ErrorIs(t, w.WritePageData([]uint64{PFNEntry(0, PageNoTab)}, [][]byte{make([]byte, 100)}), ErrBadLength)
	assert.ErrorIs(t, w.WritePageData([]uint64{PFNEntry(0, PageNoTab)}, nil), ErrBadValue)
	assert.ErrorIs(t, w.WritePageData([]uint64{PFNEntry(0, 7)}, nil), ErrBadPageType)
	assert.ErrorIs(t, w.WritePageData(nil, nil), ErrBadValue)
	assert.ErrorIs(t, w.WriteX86PVInfo(X86PVInfo{GuestWidth: 8, PTLevels: 4}), ErrUnexpectedRecord)
	assert.ErrorIs(t, w.WriteEnd(), ErrMissing, "HVM stream without HVM_CONTEXT")
	assert.ErrorIs(t, w.WriteRecord(RecPageData, nil), ErrOrder)
	assert.ErrorIs(t, w.WriteVCPU(RecEnd, VCPU{}), ErrBadValue)
	assert.ErrorIs(t, w.WriteLibxlEnd(), ErrOrder)
	require.NoError(t, w.WriteHVMContext([]byte{1}))
	require.NoError(t, w.WriteEnd())
	assert.ErrorIs(t, w.WriteEnd(), ErrOrder, "after the outermost END")

	var buf bytes.Buffer
	w = NewWriter(&buf, &WriterOptions{Version: 2})
	require.NoError(t, w.WriteImageHeader())
	require.NoError(t, w.WriteDomainHeader(DomainHeader{Type: DomainTypePV}))
	assert.ErrorIs(t, w.WriteStaticDataEnd(), ErrUnexpectedRecord)
	assert.ErrorIs(t, w.WriteCPUIDPolicy(nil), ErrUnexpectedRecord)
}

func TestDecodersOnWrongRecords(t *testing.T) {
	short := Record{Kind: KindLibxc, Type: RecX86TSCInfo, Body: make([]byte, 4)}
	_, err := short.TSCInfo()
	assert.ErrorIs(t, err, ErrBadLength)
	_, err = Record{Kind: KindLibxc, Type: RecX86PVVCPUBasic}.VCPU()
	assert.ErrorIs(t, err, ErrBadLength)
	_, err = Record{Kind: KindLibxl, LibxlType: LibxlEmulatorContext}.Emulator()
	assert.ErrorIs(t, err, ErrBadLength)
	_, err = Record{Kind: KindLibxl, LibxlType: LibxlCheckpointState}.CheckpointState()
	assert.ErrorIs(t, err, ErrBadLength)
	for _, f := range []func(Record) error{
		func(r Record) error { _, err := r.X86PVInfo(); return err },
		func(r Record) error { _, err := r.P2MFrames(); return err },
		func(r Record) error { _, err := r.VCPU(); return err },
		func(r Record) error { _, err := r.TSCInfo(); return err },
		func(r Record) error { _, err := r.HVMParams(); return err },
		func(r Record) error { _, err := r.CPUIDPolicy(); return err },
		func(r Record) error { _, err := r.MSRPolicy(); return err },
		func(r Record) error { _, err := r.Emulator(); return err },
		func(r Record) error { _, err := r.CheckpointState(); return err },
		func(r Record) error { _, err := r.DirtyPFNs(); return err },
	} {
		assert.ErrorIs(t, f(Record{Kind: KindLibxc, Type: RecEnd}), ErrUnexpectedRecord)
	}
}
