package stream

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// CheckpointMode says how the Reader treats checkpointed (Remus/COLO)
// streams.
type CheckpointMode uint8

const (
	// CheckpointsRefused reads a plain stream: a CHECKPOINT record is an
	// error, as in libxc's XC_STREAM_PLAIN restore.
	CheckpointsRefused CheckpointMode = iota
	// CheckpointsBuffered reads a checkpointed stream as libxc and libxl
	// restore do: records up to the first checkpoint boundary are returned
	// as they arrive; after that, each checkpoint is buffered in memory and
	// its records are returned only once its boundary record (libxc
	// CHECKPOINT in a libxc-only stream, libxl CHECKPOINT_END when there is
	// a libxl layer) or the final END has been read. A stream that breaks
	// inside a checkpoint yields an error matching ErrIncompleteCheckpoint,
	// and nothing of that checkpoint.
	CheckpointsBuffered
	// CheckpointsUnbuffered accepts checkpoints but returns every record as
	// it arrives (for inspection tools).
	CheckpointsUnbuffered
)

// ReaderOptions configures a Reader. A nil *ReaderOptions means the zero
// value.
type ReaderOptions struct {
	// Layer is the outermost layer of the stream. LayerAuto (zero) detects
	// it from the first bytes: xl's magic, "LibxlFmt", or the libxc marker.
	// LayerBackChannel reads COLO's back channel.
	Layer Layer
	// MaxPFN is the largest pfn accepted in PAGE_DATA and P2M frames
	// (restore's pfn_is_valid for the target domain). Zero means MaxPFN,
	// the format's own limit.
	MaxPFN uint64
	// DomainType, when set, is the type of the domain being restored
	// into; a stream of another type is refused (ErrBadDomainType), as
	// libxc's setup does. Zero accepts either.
	DomainType DomainType
	// Checkpoints selects plain or checkpointed reading; zero refuses
	// CHECKPOINT records.
	Checkpoints CheckpointMode
	// MaxCheckpointBytes bounds the memory one buffered checkpoint may use
	// in CheckpointsBuffered mode. Zero means no bound beyond the input.
	MaxCheckpointBytes int64
}

// Kind says what a Record holds.
type Kind uint8

// Record kinds. Headers are returned as records so a caller sees the
// stream's structure in order (and can copy it with a Writer).
const (
	KindXLHeader Kind = iota + 1
	KindLibxlHeader
	KindImageHeader
	KindDomainHeader
	KindLibxl // a libxl record; see LibxlType
	KindLibxc // a libxc record; see Type
)

func (k Kind) String() string {
	switch k {
	case KindXLHeader:
		return "xl header"
	case KindLibxlHeader:
		return "libxl header"
	case KindImageHeader:
		return "image header"
	case KindDomainHeader:
		return "domain header"
	case KindLibxl:
		return "libxl record"
	case KindLibxc:
		return "libxc record"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Record is one header or record of a stream. Slices in it point into the
// Reader's buffers and are valid until the next call to Next, except in
// CheckpointsBuffered mode after the first checkpoint, where each record
// owns its memory.
type Record struct {
	Kind Kind
	// Type is the record type of a KindLibxc record.
	Type RecordType
	// LibxlType is the record type of a KindLibxl record.
	LibxlType LibxlRecordType
	// Offset is the stream offset of the header or record header.
	Offset int64
	// Body is the record body without padding. For PAGE_DATA it holds only
	// the 8-byte header and the pfn entries; the page data is read with
	// Reader.ReadPages, Reader.ReadPagesContiguous or Reader.Pages. Nil for
	// headers.
	Body []byte
	// PFNs are the pfn entries of a PAGE_DATA record (see EntryPFN and
	// EntryType).
	PFNs []uint64
	// DataPages is the number of pages of data of a PAGE_DATA record.
	DataPages int

	// The header of a header kind.
	XL     XLHeader
	Libxl  LibxlHeader
	Image  ImageHeader
	Domain DomainHeader
}

// Reader reads and validates a migration stream, scanner style:
//
//	for {
//		rec, err := r.Next()
//		if err == io.EOF { break } // the outermost END was read
//		...
//	}
//
// It enforces what libxc and libxl restore enforce (see the package doc);
// every violation is a *FormatError. It never allocates from a length it
// has not checked, and grows buffers only as bytes arrive. It stops at the
// outermost END and reads nothing after it.
//
// A Reader is not safe for concurrent use.
type Reader struct {
	br   *bufio.Reader
	off  int64
	opts ReaderOptions
	chk  checker
	err  error

	body  []byte
	pfns  []uint64
	cur   Record
	pages struct {
		left  int64  // page bytes of the current record still in the stream
		total int64  // page bytes of the current record
		mem   []byte // the page bytes, once read (or buffered)
		buf   []byte // reusable backing for mem
	}

	// CheckpointsBuffered state.
	buffering   bool
	pending     []bufRec
	pendingSize int64
	queue       []bufRec
	complete    int
}

type bufRec struct {
	rec   Record
	pages []byte
}

// NewReader returns a Reader of r. It does no I/O until Next.
func NewReader(r io.Reader, opts *ReaderOptions) *Reader {
	var o ReaderOptions
	if opts != nil {
		o = *opts
	}
	rd := &Reader{
		br:   bufio.NewReaderSize(r, 64<<10),
		opts: o,
		chk:  newChecker(o.MaxPFN, o.Checkpoints != CheckpointsRefused),
	}
	rd.chk.wantDom = o.DomainType
	return rd
}

// Offset returns the number of stream bytes consumed.
func (r *Reader) Offset() int64 { return r.off }

// Checkpoints returns how many checkpoint boundaries (libxc CHECKPOINT, or
// libxl CHECKPOINT_END when there is a libxl layer) Next has returned.
func (r *Reader) Checkpoints() int { return r.complete }

// Buffered returns the bytes the Reader has read from the underlying reader
// but not consumed. After Next has returned io.EOF these are the bytes that
// followed the stream (xl migrate's handshake, for example), which the
// caller must read from here before reading the underlying reader again.
func (r *Reader) Buffered() io.Reader {
	b, _ := r.br.Peek(r.br.Buffered())
	return bytes.NewReader(b)
}

// DomainType returns the domain type from the domain header, or zero before
// it has been read.
func (r *Reader) DomainType() DomainType { return r.chk.dom }

// Next returns the next header or record. It returns io.EOF after the
// outermost END record, and a *FormatError (or an I/O error from the
// underlying reader, wrapped) when the stream is bad; errors are sticky.
// Unread page data of the previous record is skipped.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	if err := r.skipPages(); err != nil {
		r.err = err
		return Record{}, err
	}
	if r.opts.Checkpoints != CheckpointsBuffered {
		rec, err := r.scan(false)
		if err != nil {
			r.err = err
			return Record{}, err
		}
		r.noteBoundary(&rec)
		return rec, nil
	}
	return r.nextBuffered()
}

func (r *Reader) nextBuffered() (Record, error) {
	for len(r.queue) == 0 {
		rec, err := r.scan(r.buffering)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				err = fmt.Errorf("%w after %d complete checkpoints: %w", ErrIncompleteCheckpoint, r.complete, err)
			}
			r.pending = nil
			r.err = err
			return Record{}, err
		}
		if !r.buffering {
			if r.boundary(&rec) {
				r.buffering = true
			}
			r.noteBoundary(&rec)
			return rec, nil
		}
		// Own the memory: the scratch buffers are reused.
		rec.Body = slices.Clone(rec.Body)
		rec.PFNs = slices.Clone(rec.PFNs)
		rec.XL.Config = slices.Clone(rec.XL.Config)
		br := bufRec{rec: rec, pages: r.pages.mem}
		r.pages.mem = nil
		r.pendingSize += int64(len(rec.Body)) + int64(len(br.pages)) + 64
		if m := r.opts.MaxCheckpointBytes; m > 0 && r.pendingSize > m {
			err := &FormatError{Layer: r.layerOf(&rec), Record: recName(&rec), Offset: rec.Offset,
				Err: fmt.Errorf("%w: %w", ErrIncompleteCheckpoint,
					errf(ErrCheckpointTooLarge, "%d bytes buffered, limit %d", r.pendingSize, m))}
			r.pending, r.err = nil, err
			return Record{}, err
		}
		r.pending = append(r.pending, br)
		if r.boundary(&rec) || r.chk.st == stDone {
			r.queue, r.pending, r.pendingSize = r.pending, nil, 0
		}
	}
	br := r.queue[0]
	r.queue[0] = bufRec{}
	r.queue = r.queue[1:]
	r.cur = br.rec
	r.pages.mem = br.pages
	r.pages.left = 0
	r.pages.total = int64(len(br.pages))
	r.noteBoundary(&br.rec)
	return br.rec, nil
}

// boundary reports whether rec ends a checkpoint.
func (r *Reader) boundary(rec *Record) bool {
	if r.chk.outer == LayerLibxc {
		return rec.Kind == KindLibxc && rec.Type == RecCheckpoint
	}
	return rec.Kind == KindLibxl && rec.LibxlType == LibxlCheckpointEnd
}

func (r *Reader) noteBoundary(rec *Record) {
	if r.boundary(rec) {
		r.complete++
	}
}

func (r *Reader) layerOf(rec *Record) Layer {
	switch rec.Kind {
	case KindXLHeader:
		return LayerXL
	case KindLibxlHeader, KindLibxl:
		return LayerLibxl
	}
	return LayerLibxc
}

func recName(rec *Record) string {
	switch rec.Kind {
	case KindLibxc:
		return rec.Type.String()
	case KindLibxl:
		return rec.LibxlType.String()
	}
	return rec.Kind.String()
}

// read fills p from the stream.
func (r *Reader) read(p []byte) error {
	n, err := io.ReadFull(r.br, p)
	r.off += int64(n)
	return err
}

// readGrow appends bytes from the stream to buf until it holds n bytes,
// growing it in steps of at most 1 MiB as bytes arrive, so a large claimed
// length costs memory only when the bytes are really there.
func (r *Reader) readGrow(buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		step := min(n-len(buf), 1<<20)
		l := len(buf)
		buf = slices.Grow(buf, step)[:l+step]
		if err := r.read(buf[l:]); err != nil {
			return buf[:l], err
		}
	}
	return buf, nil
}

// ioErr turns a read error into the error Next returns.
func (r *Reader) ioErr(layer Layer, what string, off int64, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FormatError{Layer: layer, Record: what, Offset: off,
			Err: fmt.Errorf("%w: %w", ErrTruncated, io.ErrUnexpectedEOF)}
	}
	return fmt.Errorf("stream: reading %s %s at offset %d: %w", layer, what, off, err)
}

// scan reads the next element. With ownPages, PAGE_DATA page bytes are read
// into fresh memory (r.pages.mem) instead of being left in the stream.
func (r *Reader) scan(ownPages bool) (Record, error) {
	r.cur = Record{}
	r.pages.mem, r.pages.left, r.pages.total = nil, 0, 0
	switch r.chk.st {
	case stStart:
		l := r.opts.Layer
		if l == LayerAuto {
			var err error
			if l, err = r.detect(); err != nil {
				return Record{}, err
			}
		}
		switch l {
		case LayerBackChannel:
			r.chk.st, r.chk.outer = stBack, LayerBackChannel
			return r.backRecord()
		case LayerXL:
			return r.xlHeader()
		case LayerLibxl:
			return r.libxlHeader()
		case LayerLibxc:
			return r.imageHeader()
		}
		return Record{}, fmt.Errorf("stream: invalid ReaderOptions.Layer %d", l)
	case stXLDone:
		return r.libxlHeader()
	case stImage:
		return r.imageHeader()
	case stDomain:
		return r.domainHeader()
	case stLibxl, stLibxlCkpt:
		return r.libxlRecord()
	case stLibxc:
		return r.libxcRecord(ownPages)
	case stBack:
		return r.backRecord()
	}
	return Record{}, io.EOF
}

func (r *Reader) detect() (Layer, error) {
	b, err := r.br.Peek(8)
	if err != nil {
		return 0, r.ioErr(LayerAuto, "stream start", 0, err)
	}
	switch {
	case bytes.Equal(b, xlMagic[:8]):
		return LayerXL, nil
	case binary.BigEndian.Uint64(b) == libxlIdent:
		return LayerLibxl, nil
	case binary.BigEndian.Uint64(b) == imageMarker:
		return LayerLibxc, nil
	}
	return 0, &FormatError{Layer: LayerAuto, Record: "stream start", Err: errf(ErrBadMagic, "% x is no known header", b)}
}

func (r *Reader) xlHeader() (Record, error) {
	off := r.off
	fail := func(err error) (Record, error) {
		return Record{}, &FormatError{Layer: LayerXL, Record: "xl header", Offset: off, Err: err}
	}
	var b [XLHeaderSize]byte
	if err := r.read(b[:]); err != nil {
		return Record{}, r.ioErr(LayerXL, "xl header", off, err)
	}
	if !bytes.Equal(b[:32], xlMagic[:]) {
		return fail(errf(ErrBadMagic, "%q", b[:32]))
	}
	switch bo := le.Uint32(b[32:]); bo {
	case xlByteOrder:
	case 0x04030201:
		return fail(ErrBigEndian)
	default:
		return fail(errf(ErrBadMagic, "byte-order word %#x", bo))
	}
	h := XLHeader{MandatoryFlags: le.Uint32(b[36:]), OptionalFlags: le.Uint32(b[40:])}
	if err := r.chk.xlHeader(&h); err != nil {
		return fail(err)
	}
	optLen := le.Uint32(b[44:])
	if optLen > 0 {
		if optLen > MaxRecordLength {
			return fail(errf(ErrRecordTooLarge, "optional data of %d bytes", optLen))
		}
		if optLen < 4 {
			return fail(errf(ErrBadLength, "optional data of %d bytes", optLen))
		}
		var lb [4]byte
		if err := r.read(lb[:]); err != nil {
			return Record{}, r.ioErr(LayerXL, "xl header", off, err)
		}
		if cl := le.Uint32(lb[:]); uint64(cl)+4 != uint64(optLen) || cl == 0 {
			return fail(errf(ErrBadLength, "config of %d bytes in %d bytes of optional data", cl, optLen))
		}
		cfg, err := r.readGrow(r.body[:0], int(optLen-4))
		r.body = cfg
		if err != nil {
			return Record{}, r.ioErr(LayerXL, "xl header", off, err)
		}
		if cfg[len(cfg)-1] != 0 {
			return fail(errf(ErrBadValue, "config not NUL-terminated"))
		}
		h.Config = cfg[:len(cfg)-1]
	}
	return Record{Kind: KindXLHeader, Offset: off, XL: h}, nil
}

func (r *Reader) libxlHeader() (Record, error) {
	off := r.off
	var b [LibxlHeaderSize]byte
	if err := r.read(b[:]); err != nil {
		return Record{}, r.ioErr(LayerLibxl, "libxl header", off, err)
	}
	fail := func(err error) (Record, error) {
		return Record{}, &FormatError{Layer: LayerLibxl, Record: "libxl header", Offset: off, Err: err}
	}
	if id := binary.BigEndian.Uint64(b[:]); id != libxlIdent {
		return fail(errf(ErrBadMagic, "ident %#x", id))
	}
	h := LibxlHeader{Version: binary.BigEndian.Uint32(b[8:]), Options: binary.BigEndian.Uint32(b[12:])}
	if err := r.chk.libxlHeader(&h); err != nil {
		return fail(err)
	}
	return Record{Kind: KindLibxlHeader, Offset: off, Libxl: h}, nil
}

func (r *Reader) imageHeader() (Record, error) {
	off := r.off
	var b [ImageHeaderSize]byte
	if err := r.read(b[:]); err != nil {
		return Record{}, r.ioErr(LayerLibxc, "image header", off, err)
	}
	fail := func(err error) (Record, error) {
		return Record{}, &FormatError{Layer: LayerLibxc, Record: "image header", Offset: off, Err: err}
	}
	be := binary.BigEndian
	if m, id := be.Uint64(b[:]), be.Uint32(b[8:]); m != imageMarker || id != imageID {
		return fail(errf(ErrBadMagic, "marker %#x id %#x", m, id))
	}
	h := ImageHeader{Version: be.Uint32(b[12:])}
	if err := r.chk.imageHeader(&h); err != nil {
		return fail(err)
	}
	opts := be.Uint16(b[16:])
	if opts&1 != 0 {
		return fail(ErrBigEndian)
	}
	if opts != 0 || be.Uint16(b[18:]) != 0 || be.Uint32(b[20:]) != 0 {
		return fail(errf(ErrReserved, "image header options %#x", opts))
	}
	return Record{Kind: KindImageHeader, Offset: off, Image: h}, nil
}

func (r *Reader) domainHeader() (Record, error) {
	off := r.off
	var b [DomainHeaderSize]byte
	if err := r.read(b[:]); err != nil {
		return Record{}, r.ioErr(LayerLibxc, "domain header", off, err)
	}
	fail := func(err error) (Record, error) {
		return Record{}, &FormatError{Layer: LayerLibxc, Record: "domain header", Offset: off, Err: err}
	}
	h := DomainHeader{Type: DomainType(le.Uint32(b[:])), PageShift: le.Uint16(b[4:]),
		XenMajor: le.Uint32(b[8:]), XenMinor: le.Uint32(b[12:])}
	if err := r.chk.domainHeader(&h); err != nil {
		return fail(err)
	}
	if le.Uint16(b[6:]) != 0 {
		return fail(errf(ErrReserved, "domain header"))
	}
	return Record{Kind: KindDomainHeader, Offset: off, Domain: h}, nil
}

// recordHeader reads a record header and checks the length limit.
func (r *Reader) recordHeader(layer Layer) (typ, length uint32, off int64, err error) {
	off = r.off
	var b [RecordHeaderSize]byte
	if err := r.read(b[:]); err != nil {
		return 0, 0, off, r.ioErr(layer, "record header", off, err)
	}
	return le.Uint32(b[:]), le.Uint32(b[4:]), off, nil
}

// readBody reads a body of length bytes and its padding.
func (r *Reader) readBody(layer Layer, name string, off int64, length uint32) error {
	body, err := r.readGrow(r.body[:0], int(length))
	r.body = body
	if err != nil {
		return r.ioErr(layer, name, off, err)
	}
	var pad [8]byte
	p := pad[:padLen(length)]
	if err := r.read(p); err != nil {
		return r.ioErr(layer, name, off, err)
	}
	for _, c := range p {
		if c != 0 {
			return &FormatError{Layer: layer, Record: name, Offset: off, Err: errf(ErrBadPadding, "% x", p)}
		}
	}
	return nil
}

// backRecord reads a COLO back-channel record; the channel's clean end
// between records is io.EOF.
func (r *Reader) backRecord() (Record, error) {
	if _, err := r.br.Peek(1); errors.Is(err, io.EOF) {
		r.chk.st = stDone
		return Record{}, io.EOF
	}
	typ, length, off, err := r.recordHeader(LayerBackChannel)
	if err != nil {
		return Record{}, err
	}
	if LibxlRecordType(typ) == LibxlCheckpointState {
		return r.libxlRecordBody(typ, length, off)
	}
	return r.libxcRecordBody(typ, length, off, false)
}

func (r *Reader) libxlRecord() (Record, error) {
	typ, length, off, err := r.recordHeader(LayerLibxl)
	if err != nil {
		return Record{}, err
	}
	return r.libxlRecordBody(typ, length, off)
}

func (r *Reader) libxlRecordBody(typ, length uint32, off int64) (Record, error) {
	t := LibxlRecordType(typ)
	fail := func(err error) (Record, error) {
		return Record{}, &FormatError{Layer: LayerLibxl, Record: t.String(), Offset: off, Err: err}
	}
	if length > MaxRecordLength {
		return fail(errf(ErrRecordTooLarge, "length %d", length))
	}
	if err := r.chk.libxlBefore(t); err != nil {
		return fail(err)
	}
	if err := r.readBody(LayerLibxl, t.String(), off, length); err != nil {
		return Record{}, err
	}
	if err := r.chk.libxlBody(t, r.body); err != nil {
		return fail(err)
	}
	r.cur = Record{Kind: KindLibxl, LibxlType: t, Offset: off, Body: r.body}
	return r.cur, nil
}

func (r *Reader) libxcRecord(ownPages bool) (Record, error) {
	typ, length, off, err := r.recordHeader(LayerLibxc)
	if err != nil {
		return Record{}, err
	}
	return r.libxcRecordBody(typ, length, off, ownPages)
}

func (r *Reader) libxcRecordBody(typ, length uint32, off int64, ownPages bool) (Record, error) {
	t := RecordType(typ)
	fail := func(err error) (Record, error) {
		return Record{}, &FormatError{Layer: LayerLibxc, Record: t.String(), Offset: off, Err: err}
	}
	if length > MaxRecordLength {
		return fail(errf(ErrRecordTooLarge, "length %d", length))
	}
	if err := r.chk.libxcBefore(t); err != nil {
		return fail(err)
	}
	if t != RecPageData {
		if err := r.readBody(LayerLibxc, t.String(), off, length); err != nil {
			return Record{}, err
		}
		if err := r.chk.libxcBody(t, r.body); err != nil {
			return fail(err)
		}
		r.cur = Record{Kind: KindLibxc, Type: t, Offset: off, Body: r.body}
		return r.cur, nil
	}

	var h [8]byte
	if length >= 8 {
		if err := r.read(h[:]); err != nil {
			return Record{}, r.ioErr(LayerLibxc, t.String(), off, err)
		}
	}
	count := le.Uint32(h[:])
	if err := r.chk.pageHeader(length, count, le.Uint32(h[4:])); err != nil {
		return fail(err)
	}
	body, err := r.readGrow(append(r.body[:0], h[:]...), 8+8*int(count))
	r.body = body
	if err != nil {
		return Record{}, r.ioErr(LayerLibxc, t.String(), off, err)
	}
	r.pfns = r.pfns[:0]
	for i := 8; i < len(body); i += 8 {
		r.pfns = append(r.pfns, le.Uint64(body[i:]))
	}
	ndata, err := r.chk.pageEntries(r.pfns)
	if err != nil {
		return fail(err)
	}
	if err := pageLength(length, int(count), ndata); err != nil {
		return fail(err)
	}
	r.cur = Record{Kind: KindLibxc, Type: t, Offset: off, Body: body, PFNs: r.pfns, DataPages: ndata}
	r.pages.total = int64(ndata) * PageSize
	r.pages.left = r.pages.total
	if ownPages && ndata > 0 {
		mem, err := r.readGrow(nil, int(r.pages.total))
		if err != nil {
			return Record{}, r.ioErr(LayerLibxc, t.String(), off, err)
		}
		r.pages.mem, r.pages.left = mem, 0
	}
	return r.cur, nil
}
