package magic

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
)

// DefaultMaxSize is the default cap on a kernel image read into memory and
// on its decompressed payload.
const DefaultMaxSize = 256 << 20

// ReadOptions tunes ReadNotes. A nil *ReadOptions means the defaults.
type ReadOptions struct {
	// MaxSize caps both the bytes of a non-ELF image read into memory and
	// the decompressed payload; past it ReadNotes fails with ErrTooLarge.
	// Zero means DefaultMaxSize.
	MaxSize int64
}

func (o *ReadOptions) maxSize() int64 {
	if o == nil || o.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return o.MaxSize
}

// Linux x86 boot protocol (Documentation/arch/x86/boot.rst) offsets.
const (
	bootSetupSects   = 0x1f1
	bootHeaderMagic  = 0x202 // "HdrS"
	bootVersion      = 0x206
	bootPayloadOff   = 0x248 // protocol 2.08+
	bootPayloadLen   = 0x24c
	bootHeaderEnd    = 0x250
	bootMinPayloadV  = 0x0208
	elfMagic         = "\x7fELF"
	bzImageHdrSMagic = "HdrS"
)

// ReadNotes reads the Xen ELF notes of the guest kernel image in r (size
// bytes): a plain ELF (read in place), a compressed ELF such as vmlinux.gz,
// or a Linux x86 bzImage. Non-ELF images are read into memory, and both
// they and any decompressed payload are capped by opts.MaxSize. ctx is
// checked while decompressing.
//
// A kernel without Xen notes yields a Notes with no Raw entries and a nil
// error. Errors are *ImageError wrapping ErrNotKernel, ErrBadImage,
// ErrBadNote, ErrUnsupportedCompression, ErrTooLarge or ctx's error.
func ReadNotes(ctx context.Context, r io.ReaderAt, size int64, opts *ReadOptions) (*Notes, error) {
	if size < 0 {
		return nil, imageErr("reading image", fmt.Errorf("negative size %d: %w", size, ErrBadImage))
	}
	head := make([]byte, min(size, bootHeaderEnd))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, imageErr("reading image header", fmt.Errorf("%w: %w", ErrBadImage, err))
	}
	if bytes.HasPrefix(head, []byte(elfMagic)) {
		n, err := elfNotes(io.NewSectionReader(r, 0, size))
		if err != nil {
			return nil, imageErr("reading ELF notes", err)
		}
		return n, nil
	}
	limit := opts.maxSize()
	if size > limit {
		return nil, imageErr("reading image", fmt.Errorf("%d bytes, limit %d: %w", size, limit, ErrTooLarge))
	}
	b := make([]byte, size)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		return nil, imageErr("reading image", fmt.Errorf("%w: %w", ErrBadImage, err))
	}
	return ReadNotesBytes(ctx, b, opts)
}

// ReadNotesBytes is ReadNotes on an image held in memory.
func ReadNotesBytes(ctx context.Context, b []byte, opts *ReadOptions) (*Notes, error) {
	limit := opts.maxSize()
	switch {
	case bytes.HasPrefix(b, []byte(elfMagic)):
		n, err := elfNotes(bytes.NewReader(b))
		if err != nil {
			return nil, imageErr("reading ELF notes", err)
		}
		return n, nil
	case len(b) >= bootHeaderEnd && string(b[bootHeaderMagic:bootHeaderMagic+4]) == bzImageHdrSMagic:
		payload, err := bzImagePayload(b)
		if err != nil {
			return nil, imageErr("reading bzImage setup header", err)
		}
		return compressedELF(ctx, payload, ImageBzImage, limit)
	case DetectCompression(b) != CompressionNone:
		return compressedELF(ctx, b, ImageCompressedELF, limit)
	}
	return nil, imageErr("identifying image", ErrNotKernel)
}

// bzImagePayload locates the compressed kernel through the setup header.
func bzImagePayload(b []byte) ([]byte, error) {
	ver := binary.LittleEndian.Uint16(b[bootVersion:])
	if ver < bootMinPayloadV {
		return nil, fmt.Errorf("boot protocol %d.%02d has no payload fields (need 2.08): %w", ver>>8, ver&0xff, ErrBadImage)
	}
	sects := uint64(b[bootSetupSects])
	if sects == 0 {
		sects = 4 // boot.rst: "if this field is 0, the real value is 4"
	}
	off := (sects+1)*512 + uint64(binary.LittleEndian.Uint32(b[bootPayloadOff:]))
	n := uint64(binary.LittleEndian.Uint32(b[bootPayloadLen:]))
	if n == 0 || off > uint64(len(b)) || n > uint64(len(b))-off {
		return nil, fmt.Errorf("payload [%d, +%d) outside the %d-byte image: %w", off, n, len(b), ErrBadImage)
	}
	return b[off : off+n], nil
}

// compressedELF decompresses an ELF payload, as far as its notes need,
// and reads its notes.
func compressedELF(ctx context.Context, b []byte, kind ImageKind, limit int64) (*Notes, error) {
	c := DetectCompression(b)
	if c == CompressionNone && bytes.HasPrefix(b, []byte(elfMagic)) { // an uncompressed payload
		n, err := elfNotes(bytes.NewReader(b))
		if err != nil {
			return nil, imageErr("reading ELF notes", err)
		}
		n.Kind = kind
		return n, nil
	}
	if c == CompressionNone {
		return nil, imageErr("identifying payload compression", fmt.Errorf("payload starts % x: %w", b[:min(len(b), 4)], ErrUnsupportedCompression))
	}
	op := fmt.Sprintf("decompressing %s payload", c)
	r, closeFn, err := openDecompressor(c, b, limit)
	if err != nil {
		return nil, imageErr(op, wrapDecodeErr(err))
	}
	defer closeFn()
	s := &streamAt{r: ctxReader{ctx, r}, limit: limit}
	head := make([]byte, len(elfMagic))
	if _, err := s.ReadAt(head, 0); err != nil {
		if derr := s.decodeErr(); derr != nil {
			return nil, imageErr(op, wrapDecodeErr(derr))
		}
		return nil, imageErr("reading decompressed payload", fmt.Errorf("%d bytes, not an ELF file: %w", len(s.buf), ErrNotKernel))
	}
	if string(head) != elfMagic {
		return nil, imageErr("reading decompressed payload", fmt.Errorf("starts % x, not an ELF file: %w", head, ErrNotKernel))
	}
	n, err := elfNotes(s)
	if err != nil {
		// Decoder failures (corrupt data, limit, ctx) explain an ELF
		// failure better than the ELF parser can. A decoder error the ELF
		// reader never reached is tolerated: Linux appends the
		// uncompressed size after the stream, which some decoders read as
		// a truncated next stream.
		if derr := s.decodeErr(); derr != nil {
			return nil, imageErr(op, wrapDecodeErr(derr))
		}
		return nil, imageErr("reading ELF notes", err)
	}
	n.Kind, n.Compression = kind, c
	return n, nil
}

func wrapDecodeErr(err error) error {
	if errIsLimitOrCtx(err) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrBadImage, err)
}
