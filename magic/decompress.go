package magic

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz/lzma"
)

// compressionMagics are the stream signatures Linux's decompressors
// recognise (lib/decompress.c).
var compressionMagics = []struct {
	magic string
	c     Compression
}{
	{"\x1f\x8b", CompressionGzip},
	{"\x1f\x9e", CompressionGzip}, // old gzip
	{"BZh", CompressionBzip2},
	{"\x5d\x00\x00", CompressionLZMA},
	{"\xfd7zXZ\x00", CompressionXZ},
	{"\x89LZO", CompressionLZO},
	{"\x02\x21\x4c\x18", CompressionLZ4}, // legacy frame, as Linux writes it
	{"\x04\x22\x4d\x18", CompressionLZ4}, // modern frame
	{"\x28\xb5\x2f\xfd", CompressionZstd},
}

// DetectCompression names the compression b starts with, or
// CompressionNone.
func DetectCompression(b []byte) Compression {
	for _, m := range compressionMagics {
		if bytes.HasPrefix(b, []byte(m.magic)) {
			return m.c
		}
	}
	return CompressionNone
}

// ctxReader stops a decompression when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// dictFor clamps an LZMA dictionary size: a back-reference can never reach
// further than the output limit, so a larger dictionary is never needed.
func dictFor(size uint64, limit int64) int {
	d := min(size, uint64(limit), uint64(lzma.MaxDictCap))
	return int(max(d, lzma.MinDictCap))
}

// nopClose is the close function of decoders that hold no resources.
func nopClose() {}

// openDecompressor returns a stream decoding b, which is compressed with
// c, and a function releasing the decoder. Bytes after the compressed
// stream (Linux appends the uncompressed size) may surface as a decoder
// error at the very end; streamAt only reports it if data past it is
// needed.
func openDecompressor(c Compression, b []byte, limit int64) (io.Reader, func(), error) {
	switch c {
	case CompressionGzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, nil, err
		}
		zr.Multistream(false)
		return zr, nopClose, nil
	case CompressionBzip2:
		return bzip2.NewReader(bytes.NewReader(b)), nopClose, nil
	case CompressionLZMA:
		if len(b) < lzma.HeaderLen {
			return nil, nil, io.ErrUnexpectedEOF
		}
		hdr := bytes.Clone(b[:lzma.HeaderLen])
		dict := dictFor(uint64(binary.LittleEndian.Uint32(hdr[1:])), limit)
		binary.LittleEndian.PutUint32(hdr[1:], uint32(dict))
		zr, err := lzma.ReaderConfig{DictCap: dict}.NewReader(io.MultiReader(bytes.NewReader(hdr), bytes.NewReader(b[lzma.HeaderLen:])))
		if err != nil {
			return nil, nil, err
		}
		return zr, nopClose, nil
	case CompressionXZ:
		zr, err := newXZReader(b, limit)
		if err != nil {
			return nil, nil, err
		}
		return zr, nopClose, nil
	case CompressionLZO:
		zr, err := newLZOPReader(b, limit)
		if err != nil {
			return nil, nil, err
		}
		return zr, nopClose, nil
	case CompressionLZ4:
		return lz4.NewReader(bytes.NewReader(b)), nopClose, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(bytes.NewReader(b),
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(limit)),
			zstd.WithDecoderMaxWindow(uint64(max(limit, zstd.MinWindowSize))))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("%s: %w", c, ErrUnsupportedCompression)
}

// streamAt is an io.ReaderAt over a stream that is read only as far as
// needed, at most limit bytes: the notes of a Linux vmlinux sit about a
// third of the way in, so most of the payload is never decompressed.
type streamAt struct {
	r     io.Reader
	buf   []byte
	err   error // the stream's terminal error (io.EOF at a clean end)
	limit int64
}

func (s *streamAt) fill(need int64) {
	for int64(len(s.buf)) < need && s.err == nil {
		if int64(len(s.buf)) >= s.limit {
			s.err = fmt.Errorf("decompressed output exceeds %d bytes: %w", s.limit, ErrTooLarge)
			return
		}
		if len(s.buf) == cap(s.buf) {
			grow := max(len(s.buf), 1<<20)
			s.buf = append(s.buf, make([]byte, grow)...)[:len(s.buf)]
		}
		room := min(int64(cap(s.buf)), s.limit) - int64(len(s.buf))
		if room == 0 { // at the limit: probe for one more byte
			var one [1]byte
			n, err := s.r.Read(one[:])
			if n > 0 {
				s.err = fmt.Errorf("decompressed output exceeds %d bytes: %w", s.limit, ErrTooLarge)
			} else if err != nil {
				s.err = err
			}
			return
		}
		n, err := s.r.Read(s.buf[len(s.buf) : int64(len(s.buf))+room])
		s.buf = s.buf[:len(s.buf)+n]
		if err != nil {
			s.err = err
		}
	}
}

func (s *streamAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d: %w", off, ErrBadImage)
	}
	end := off + int64(len(p))
	if end < off {
		end = math.MaxInt64
	}
	s.fill(end)
	if off >= int64(len(s.buf)) {
		return 0, s.failure()
	}
	n := copy(p, s.buf[off:])
	if n < len(p) {
		return n, s.failure()
	}
	return n, nil
}

// failure is the error for a read past the available data.
func (s *streamAt) failure() error {
	if s.err == nil || s.err == io.EOF {
		return io.EOF
	}
	return s.err
}

// decodeErr is the terminal decoder error, nil at a clean end.
func (s *streamAt) decodeErr() error {
	if s.err == io.EOF {
		return nil
	}
	return s.err
}

// errIsLimitOrCtx reports errors that must never be tolerated.
func errIsLimitOrCtx(err error) bool {
	return errors.Is(err, ErrTooLarge) || errors.Is(err, ErrUnsupportedCompression) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
