package stream

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
)

// BuffersWriter is implemented by destinations that write several buffers
// in one call, as writev(2) does. The Writer hands PAGE_DATA records to it
// as one vector (staged headers and pfns, then the caller's page slices), so
// page bytes are never copied. net.Conn values get the same treatment
// through net.Buffers.
type BuffersWriter interface {
	WriteBuffers(bufs net.Buffers) (int64, error)
}

// WriterOptions configures a Writer. A nil *WriterOptions means the zero
// value.
type WriterOptions struct {
	// Version is the libxc stream version written in the image header.
	// Zero means 3 (what Xen 4.17 writes); 2 is allowed, and then
	// STATIC_DATA_END and the CPUID/MSR policy records are refused.
	Version uint32
	// BackChannel makes the Writer write COLO's secondary-to-primary back
	// channel: no headers, only WriteCheckpointState and
	// WriteCheckpointDirtyPFNList, each flushed at once.
	BackChannel bool
	// BufferSize is the size of the staging buffer that collects small
	// records, and page data for destinations without vectored writes, into
	// large writes. Zero means 1 MiB; it is raised to at least 64 KiB.
	BufferSize int
}

// Writer writes a migration stream: optionally xl's header, optionally the
// libxl layer, and the libxc stream, record by record, validating each
// call with the same rules the Reader enforces.
//
// Writes are buffered: call Flush (or write the outermost END, which
// flushes) before relying on the bytes having reached the destination.
// CHECKPOINT and CHECKPOINT_END flush too, so a receiver sees each
// checkpoint whole. The first error is sticky.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	vec func(net.Buffers) (int64, error)
	buf []byte
	vbf net.Buffers
	off int64
	err error
	ver uint32
	chk checker
}

// NewWriter returns a Writer that writes to w. If w implements
// BuffersWriter or net.Conn, page data is written with vectored writes.
func NewWriter(w io.Writer, opts *WriterOptions) *Writer {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.Version == 0 {
		o.Version = 3
	}
	if o.BufferSize == 0 {
		o.BufferSize = 1 << 20
	}
	o.BufferSize = max(o.BufferSize, 64<<10)
	wr := &Writer{w: w, buf: make([]byte, 0, o.BufferSize), ver: o.Version, chk: newChecker(MaxPFN, true)}
	if o.BackChannel {
		wr.chk.st, wr.chk.outer = stBack, LayerBackChannel
	}
	switch d := w.(type) {
	case BuffersWriter:
		wr.vec = d.WriteBuffers
	case net.Conn:
		wr.vec = func(b net.Buffers) (int64, error) { return b.WriteTo(d) }
	}
	return wr
}

// Offset returns the number of bytes written so far, including bytes still
// buffered.
func (w *Writer) Offset() int64 { return w.off + int64(len(w.buf)) }

// Flush writes buffered bytes to the destination.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	n, err := w.w.Write(w.buf)
	w.off += int64(n)
	if err == nil && n != len(w.buf) {
		err = io.ErrShortWrite
	}
	w.buf = w.buf[:0]
	if err != nil {
		w.err = fmt.Errorf("stream: writing: %w", err)
	}
	return w.err
}

// fail records a format error for a rejected call. Format errors are not
// sticky: the stream so far is intact and the caller may continue.
func (w *Writer) fail(layer Layer, what string, err error) error {
	return &FormatError{Layer: layer, Record: what, Offset: w.Offset(), Err: err}
}

// reserve makes room for n more bytes in the staging buffer, flushing it if
// needed, and returns the n bytes to fill. n may exceed the buffer size.
func (w *Writer) reserve(n int) []byte {
	if len(w.buf)+n > cap(w.buf) {
		if w.Flush() != nil {
			return nil
		}
		if n > cap(w.buf) {
			w.buf = make([]byte, 0, n)
		}
	}
	l := len(w.buf)
	w.buf = w.buf[:l+n]
	return w.buf[l : l+n]
}

// appendBytes stages b, or writes it directly when it is large, so a big
// record (an emulator context, say) neither grows the staging buffer nor is
// copied.
func (w *Writer) appendBytes(b []byte) { w.writeData(b) }

// recordHeader stages a record header for a body of n bytes and returns the
// padding the body needs.
func (w *Writer) recordHeader(typ uint32, n int) int {
	if d := w.reserve(RecordHeaderSize); d != nil {
		le.PutUint32(d, typ)
		le.PutUint32(d[4:], uint32(n))
	}
	return int(padLen(uint32(n)))
}

// record stages a whole small record: header, body parts, padding.
func (w *Writer) record(typ uint32, parts ...[]byte) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	pad := w.recordHeader(typ, n)
	for _, p := range parts {
		w.appendBytes(p)
	}
	if d := w.reserve(pad); d != nil {
		clear(d)
	}
}

// WriteXLHeader writes xl's 48-byte save-file header followed by config,
// the domain's libxl_domain_config JSON (a NUL terminator is added). A nil
// config writes no optional data. The libxl header must follow.
func (w *Writer) WriteXLHeader(config []byte) error {
	h := XLHeader{MandatoryFlags: XLMandatoryStreamV2, Config: config}
	if config != nil {
		h.MandatoryFlags |= XLMandatoryJSON
	}
	return w.writeXLHeader(h)
}

func (w *Writer) writeXLHeader(h XLHeader) error {
	if w.err != nil {
		return w.err
	}
	config := h.Config
	if err := w.chk.xlHeader(&h); err != nil {
		return w.fail(LayerXL, "xl header", err)
	}
	optLen := 0
	if config != nil {
		optLen = 4 + len(config) + 1
	}
	d := w.reserve(XLHeaderSize)
	if d == nil {
		return w.err
	}
	copy(d, xlMagic[:])
	le.PutUint32(d[32:], xlByteOrder)
	le.PutUint32(d[36:], h.MandatoryFlags)
	le.PutUint32(d[40:], h.OptionalFlags)
	le.PutUint32(d[44:], uint32(optLen))
	if config != nil {
		w.appendBytes(le.AppendUint32(nil, uint32(len(config)+1)))
		w.appendBytes(config)
		w.appendBytes([]byte{0})
	}
	return w.err
}

// WriteLibxlHeader writes the libxl stream header (version 2). It starts
// the stream, or follows WriteXLHeader.
func (w *Writer) WriteLibxlHeader() error { return w.writeLibxlHeader(LibxlHeader{Version: 2}) }

func (w *Writer) writeLibxlHeader(h LibxlHeader) error {
	if w.err != nil {
		return w.err
	}
	if err := w.chk.libxlHeader(&h); err != nil {
		return w.fail(LayerLibxl, "libxl header", err)
	}
	if d := w.reserve(LibxlHeaderSize); d != nil {
		binary.BigEndian.PutUint64(d, libxlIdent)
		binary.BigEndian.PutUint32(d[8:], h.Version)
		binary.BigEndian.PutUint32(d[12:], h.Options)
	}
	return w.err
}

// WriteLibxlRecord writes a libxl record with the given body. The typed
// helpers below are preferred; this one exists for copying records.
// LIBXC_CONTEXT switches to the libxc layer: WriteImageHeader comes next.
func (w *Writer) WriteLibxlRecord(t LibxlRecordType, body []byte) error {
	if w.err != nil {
		return w.err
	}
	if err := w.chk.libxlBefore(t); err != nil {
		return w.fail(LayerLibxl, t.String(), err)
	}
	if len(body) > MaxRecordLength {
		return w.fail(LayerLibxl, t.String(), errf(ErrRecordTooLarge, "length %d", len(body)))
	}
	if err := w.chk.libxlBody(t, body); err != nil {
		return w.fail(LayerLibxl, t.String(), err)
	}
	w.record(uint32(t), body)
	if t == LibxlEnd || t == LibxlCheckpointEnd || w.chk.st == stBack {
		return w.Flush()
	}
	return w.err
}

// WriteLibxcContext writes the libxl LIBXC_CONTEXT record: the libxc stream
// (WriteImageHeader ...) follows.
func (w *Writer) WriteLibxcContext() error { return w.WriteLibxlRecord(LibxlLibxcContext, nil) }

// WriteEmulatorXenstoreData writes EMULATOR_XENSTORE_DATA: kv alternates
// keys (relative to the device model's xenstore directory) and values.
//
// Debian 4.17's verify-stream-v2 rejects any non-empty record of this type
// (a Python 3 bug); libxl restore accepts it.
func (w *Writer) WriteEmulatorXenstoreData(id EmulatorID, index uint32, kv []string) error {
	if len(kv)%2 != 0 {
		return w.fail(LayerLibxl, LibxlEmulatorXenstoreData.String(), errf(ErrBadValue, "odd number of xenstore strings"))
	}
	var data []byte
	for _, s := range kv {
		data = append(append(data, s...), 0)
	}
	return w.writeEmulator(LibxlEmulatorXenstoreData, id, index, data)
}

// WriteEmulatorContext writes EMULATOR_CONTEXT: the device model's saved
// state (QEMU's migration blob).
func (w *Writer) WriteEmulatorContext(id EmulatorID, index uint32, data []byte) error {
	return w.writeEmulator(LibxlEmulatorContext, id, index, data)
}

func (w *Writer) writeEmulator(t LibxlRecordType, id EmulatorID, index uint32, data []byte) error {
	body := make([]byte, 8, 8+len(data))
	le.PutUint32(body, uint32(id))
	le.PutUint32(body[4:], index)
	return w.WriteLibxlRecord(t, append(body, data...))
}

// WriteCheckpointEnd writes the libxl CHECKPOINT_END record that closes the
// libxl part of a checkpoint (after libxc's CHECKPOINT); libxc records
// follow. It flushes.
func (w *Writer) WriteCheckpointEnd() error { return w.WriteLibxlRecord(LibxlCheckpointEnd, nil) }

// WriteCheckpointState writes the libxl CHECKPOINT_STATE record (COLO),
// inside a checkpoint or on the back channel.
func (w *Writer) WriteCheckpointState(s CheckpointState) error {
	return w.WriteLibxlRecord(LibxlCheckpointState, le.AppendUint32(nil, uint32(s)))
}

// WriteLibxlEnd writes the libxl END record and flushes.
func (w *Writer) WriteLibxlEnd() error { return w.WriteLibxlRecord(LibxlEnd, nil) }

// WriteImageHeader writes the libxc image header (big-endian, little-endian
// stream option, version from WriterOptions). It starts a libxc-only
// stream, or follows WriteLibxcContext.
func (w *Writer) WriteImageHeader() error {
	if w.err != nil {
		return w.err
	}
	h := ImageHeader{Version: w.ver}
	if err := w.chk.imageHeader(&h); err != nil {
		return w.fail(LayerLibxc, "image header", err)
	}
	if d := w.reserve(ImageHeaderSize); d != nil {
		binary.BigEndian.PutUint64(d, imageMarker)
		binary.BigEndian.PutUint32(d[8:], imageID)
		binary.BigEndian.PutUint32(d[12:], h.Version)
		clear(d[16:])
	}
	return w.err
}

// WriteDomainHeader writes the libxc domain header. A zero PageShift is
// written as 12.
func (w *Writer) WriteDomainHeader(h DomainHeader) error {
	if w.err != nil {
		return w.err
	}
	if h.PageShift == 0 {
		h.PageShift = PageShift
	}
	if err := w.chk.domainHeader(&h); err != nil {
		return w.fail(LayerLibxc, "domain header", err)
	}
	if d := w.reserve(DomainHeaderSize); d != nil {
		le.PutUint32(d, uint32(h.Type))
		le.PutUint16(d[4:], h.PageShift)
		le.PutUint16(d[6:], 0)
		le.PutUint32(d[8:], h.XenMajor)
		le.PutUint32(d[12:], h.XenMinor)
	}
	return w.err
}

// WriteRecord writes a libxc record other than PAGE_DATA from its body.
// The typed helpers build the bodies; WriteRecord exists for copying.
func (w *Writer) WriteRecord(t RecordType, body []byte) error {
	return w.writeRecordParts(t, body)
}

func (w *Writer) writeRecordParts(t RecordType, parts ...[]byte) error {
	if w.err != nil {
		return w.err
	}
	if t == RecPageData {
		return w.fail(LayerLibxc, t.String(), errf(ErrOrder, "use WritePageData for PAGE_DATA"))
	}
	if err := w.chk.libxcBefore(t); err != nil {
		return w.fail(LayerLibxc, t.String(), err)
	}
	body := parts[0]
	if len(parts) > 1 {
		body = nil
		for _, p := range parts {
			body = append(body, p...)
		}
	}
	if len(body) > MaxRecordLength {
		return w.fail(LayerLibxc, t.String(), errf(ErrRecordTooLarge, "length %d", len(body)))
	}
	saved := w.chk
	if err := w.chk.libxcBody(t, body); err != nil {
		w.chk = saved
		return w.fail(LayerLibxc, t.String(), err)
	}
	w.record(uint32(t), body)
	if t == RecCheckpoint || (t == RecEnd && w.chk.st == stDone) || w.chk.st == stBack {
		return w.Flush()
	}
	return w.err
}

// WriteX86PVInfo writes X86_PV_INFO. It must precede the P2M frames, the
// shared info and the vCPU records.
func (w *Writer) WriteX86PVInfo(info X86PVInfo) error {
	return w.WriteRecord(RecX86PVInfo, []byte{info.GuestWidth, info.PTLevels, 0, 0, 0, 0, 0, 0})
}

// WriteP2MFrames writes X86_PV_P2M_FRAMES. len(p.Frames) must match the
// pfn range for the guest width given in X86_PV_INFO.
func (w *Writer) WriteP2MFrames(p P2MFrames) error {
	b := make([]byte, 8, 8+8*len(p.Frames))
	le.PutUint32(b, p.StartPFN)
	le.PutUint32(b[4:], p.EndPFN)
	for _, f := range p.Frames {
		b = le.AppendUint64(b, f)
	}
	return w.WriteRecord(RecX86PVP2MFrames, b)
}

// WriteVCPU writes one of the X86_PV_VCPU_{BASIC,EXTENDED,XSAVE,MSRS}
// records. A BASIC context must be VCPUContextSize64 (or, for 32-bit
// guests, VCPUContextSize32) bytes.
func (w *Writer) WriteVCPU(t RecordType, v VCPU) error {
	switch t {
	case RecX86PVVCPUBasic, RecX86PVVCPUExtended, RecX86PVVCPUXSave, RecX86PVVCPUMSRs:
	default:
		return w.fail(LayerLibxc, t.String(), errf(ErrBadValue, "%v is not a vCPU record", t))
	}
	var h [8]byte
	le.PutUint32(h[:], v.ID)
	return w.writeRecordParts(t, h[:], v.Context)
}

// WriteSharedInfo writes SHARED_INFO: the guest's shared info page.
func (w *Writer) WriteSharedInfo(page []byte) error { return w.WriteRecord(RecSharedInfo, page) }

// WriteTSCInfo writes X86_TSC_INFO.
func (w *Writer) WriteTSCInfo(t TSCInfo) error {
	b := make([]byte, 24)
	le.PutUint32(b, t.Mode)
	le.PutUint32(b[4:], t.KHz)
	le.PutUint64(b[8:], t.Nsec)
	le.PutUint32(b[16:], t.Incarnation)
	return w.WriteRecord(RecX86TSCInfo, b)
}

// WriteHVMContext writes HVM_CONTEXT: the blob of XEN_DOMCTL_gethvmcontext.
func (w *Writer) WriteHVMContext(blob []byte) error { return w.WriteRecord(RecHVMContext, blob) }

// WriteHVMParams writes HVM_PARAMS. An empty list writes nothing, as libxc
// does.
func (w *Writer) WriteHVMParams(params []HVMParam) error {
	if len(params) == 0 {
		return w.err
	}
	b := make([]byte, 8, 8+16*len(params))
	le.PutUint32(b, uint32(len(params)))
	for _, p := range params {
		b = le.AppendUint64(b, p.Index)
		b = le.AppendUint64(b, p.Value)
	}
	return w.WriteRecord(RecHVMParams, b)
}

// WriteCPUIDPolicy writes X86_CPUID_POLICY (v3, before STATIC_DATA_END).
func (w *Writer) WriteCPUIDPolicy(leaves []CPUIDLeaf) error {
	b := make([]byte, 0, 24*len(leaves))
	for _, l := range leaves {
		for _, v := range [...]uint32{l.Leaf, l.Subleaf, l.A, l.B, l.C, l.D} {
			b = le.AppendUint32(b, v)
		}
	}
	return w.WriteRecord(RecX86CPUIDPolicy, b)
}

// WriteMSRPolicy writes X86_MSR_POLICY (v3, before STATIC_DATA_END).
func (w *Writer) WriteMSRPolicy(msrs []MSREntry) error {
	b := make([]byte, 0, 16*len(msrs))
	for _, m := range msrs {
		b = le.AppendUint32(b, m.Index)
		b = le.AppendUint32(b, m.Flags)
		b = le.AppendUint64(b, m.Value)
	}
	return w.WriteRecord(RecX86MSRPolicy, b)
}

// WriteStaticDataEnd writes STATIC_DATA_END (v3): it must come before any
// PAGE_DATA or P2M frames.
func (w *Writer) WriteStaticDataEnd() error { return w.WriteRecord(RecStaticDataEnd, nil) }

// WriteVerify writes VERIFY: the memory that follows is for verification.
func (w *Writer) WriteVerify() error { return w.WriteRecord(RecVerify, nil) }

// WriteCheckpoint writes the libxc CHECKPOINT record that ends one
// consistent checkpoint, and flushes. In a libxl stream, libxl records
// (emulator state, then WriteCheckpointEnd) follow.
func (w *Writer) WriteCheckpoint() error { return w.WriteRecord(RecCheckpoint, nil) }

// WriteCheckpointDirtyPFNList writes the libxc CHECKPOINT_DIRTY_PFN_LIST
// record a COLO secondary sends back after each checkpoint (only with
// WriterOptions.BackChannel), and flushes.
func (w *Writer) WriteCheckpointDirtyPFNList(pfns []uint64) error {
	b := make([]byte, 0, 8*len(pfns))
	for _, p := range pfns {
		b = le.AppendUint64(b, p)
	}
	return w.WriteRecord(RecCheckpointDirtyPFNList, b)
}

// WriteEnd writes the libxc END record. In a libxc-only stream it ends the
// stream and flushes; in a libxl stream, libxl records follow.
func (w *Writer) WriteEnd() error { return w.WriteRecord(RecEnd, nil) }

// WritePageData writes pages as PAGE_DATA records of at most
// MaxPagesPerRecord entries each. entries are pfn entries (PFNEntry: type
// nibble in bits 63-60, pfn in bits 51-0); pages holds one PageSize slice
// for each entry whose type HasData, in order. The page slices are written
// as they are, without copying when the destination takes vectored writes;
// they must not change until WritePageData returns.
func (w *Writer) WritePageData(entries []uint64, pages [][]byte) error {
	for i, p := range pages {
		if len(p) != PageSize {
			return w.fail(LayerLibxc, RecPageData.String(), errf(ErrBadLength, "page %d has %d bytes", i, len(p)))
		}
	}
	return w.writePages(entries, pages, nil)
}

// WritePageDataContiguous is WritePageData for pages that lie back to back
// in data (for example a foreign mapping of the batch): data holds
// PageSize bytes for each entry whose type HasData.
func (w *Writer) WritePageDataContiguous(entries []uint64, data []byte) error {
	return w.writePages(entries, nil, data)
}

func (w *Writer) writePages(entries []uint64, pages [][]byte, data []byte) error {
	if w.err != nil {
		return w.err
	}
	fail := func(err error) error { return w.fail(LayerLibxc, RecPageData.String(), err) }
	if len(entries) == 0 {
		return fail(errf(ErrBadValue, "PAGE_DATA with no pfns"))
	}
	if err := w.chk.libxcBefore(RecPageData); err != nil {
		return fail(err)
	}
	ndata, err := w.chk.pageEntries(entries)
	if err != nil {
		return fail(err)
	}
	if pages != nil || data == nil {
		if len(pages) != ndata {
			return fail(errf(ErrBadValue, "%d pages for %d data-carrying entries", len(pages), ndata))
		}
	} else if len(data) != ndata*PageSize {
		return fail(errf(ErrBadValue, "%d bytes of pages for %d data-carrying entries", len(data), ndata))
	}
	for len(entries) > 0 {
		batch := entries[:min(len(entries), MaxPagesPerRecord)]
		entries = entries[len(batch):]
		nd := 0
		for _, e := range batch {
			if EntryType(e).HasData() {
				nd++
			}
		}
		var bp [][]byte
		var bd []byte
		if pages != nil {
			bp, pages = pages[:nd], pages[nd:]
		} else {
			bd, data = data[:nd*PageSize], data[nd*PageSize:]
		}
		w.pageRecord(batch, nd, bp, bd)
		if w.err != nil {
			return w.err
		}
	}
	return nil
}

// pageRecord writes one PAGE_DATA record.
func (w *Writer) pageRecord(entries []uint64, nd int, pages [][]byte, data []byte) {
	length := 8 + 8*len(entries) + PageSize*nd
	w.recordHeader(uint32(RecPageData), length)
	if d := w.reserve(8 + 8*len(entries)); d != nil {
		le.PutUint32(d, uint32(len(entries)))
		le.PutUint32(d[4:], 0)
		for i, e := range entries {
			le.PutUint64(d[8+8*i:], e)
		}
	}
	if nd == 0 || w.err != nil {
		return
	}
	if w.vec != nil {
		w.vbf = append(w.vbf[:0], w.buf)
		if pages != nil {
			// One iovec per run of pages back to back in memory: a
			// mapped batch is one, not 1,024.
			for p := pages; len(p) > 0; {
				n := contiguousRun(p)
				w.vbf = append(w.vbf, p[0][:n*PageSize])
				p = p[n:]
			}
		} else {
			w.vbf = append(w.vbf, data)
		}
		want := int64(len(w.buf)) + int64(nd)*PageSize
		n, err := w.vec(w.vbf)
		w.off += n
		w.buf = w.buf[:0]
		clear(w.vbf) // drop references to caller memory
		if err == nil && n != want {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.err = fmt.Errorf("stream: writing: %w", err)
		}
		return
	}
	if pages != nil {
		// Pages that lie back to back in memory (slices of one mapping)
		// are written as one run.
		for len(pages) > 0 && w.err == nil {
			n := contiguousRun(pages)
			w.writeData(pages[0][:n*PageSize])
			pages = pages[n:]
		}
		return
	}
	w.writeData(data)
}

// contiguousRun returns how many leading pages follow each other in the
// memory of the first one.
func contiguousRun(pages [][]byte) int {
	first := pages[0]
	n := 1
	for n < len(pages) && cap(first) >= (n+1)*PageSize && &first[:(n+1)*PageSize][n*PageSize] == &pages[n][0] {
		n++
	}
	return n
}

// writeData writes page bytes for a destination without vectored writes:
// large runs straight from the caller's memory, small ones through the
// staging buffer.
func (w *Writer) writeData(data []byte) {
	if len(data) >= cap(w.buf)/2 {
		// Large enough to write straight from the caller's memory.
		if w.Flush() != nil {
			return
		}
		n, err := w.w.Write(data)
		w.off += int64(n)
		if err == nil && n != len(data) {
			err = io.ErrShortWrite
		}
		if err != nil {
			w.err = fmt.Errorf("stream: writing: %w", err)
		}
		return
	}
	for len(data) > 0 && w.err == nil {
		room := cap(w.buf) - len(w.buf)
		if room == 0 {
			w.Flush()
			continue
		}
		n := min(room, len(data))
		w.buf = append(w.buf, data[:n]...)
		data = data[n:]
	}
}

// CopyRecord writes rec, which r returned, unchanged: headers, libxl
// records and libxc records, with PAGE_DATA page bytes taken from r. It is
// how a proxy or a re-writer passes a stream through; write→read→CopyRecord
// reproduces the stream byte for byte (PAGE_DATA records of more than
// MaxPagesPerRecord entries are split). r may be nil when rec is not
// PAGE_DATA.
func (w *Writer) CopyRecord(r *Reader, rec Record) error {
	switch rec.Kind {
	case KindXLHeader:
		return w.writeXLHeader(rec.XL)
	case KindLibxlHeader:
		return w.writeLibxlHeader(rec.Libxl)
	case KindImageHeader:
		if w.chk.st == stStart || w.chk.st == stImage {
			w.ver = rec.Image.Version
		}
		return w.WriteImageHeader()
	case KindDomainHeader:
		return w.WriteDomainHeader(rec.Domain)
	case KindLibxl:
		return w.WriteLibxlRecord(rec.LibxlType, rec.Body)
	case KindLibxc:
		if rec.Type != RecPageData {
			return w.WriteRecord(rec.Type, rec.Body)
		}
		data, err := r.Pages()
		if err != nil {
			return err
		}
		return w.WritePageDataContiguous(rec.PFNs, data)
	}
	return w.fail(LayerAuto, rec.Kind.String(), errf(ErrBadValue, "unknown record kind"))
}
