package magic

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// The .xz container is parsed here rather than with github.com/ulikunitz/xz
// because Linux compresses x86 kernels with the x86 BCJ filter
// (scripts/xz_wrap.sh: xz --x86 --lzma2), which that package does not
// implement. Its raw LZMA2 decoder does the heavy lifting; this file adds
// the container (xz-file-format.txt, version 1.1.0) and the BCJ decoder.

const (
	xzFilterX86   = 0x04
	xzFilterLZMA2 = 0x21
)

var errXZ = errors.New("malformed xz stream")

// xzVarint reads an xz multibyte integer (at most 9 bytes).
func xzVarint(b []byte) (v uint64, n int, err error) {
	for n < len(b) && n < 9 {
		c := b[n]
		v |= uint64(c&0x7f) << (7 * n)
		n++
		if c&0x80 == 0 {
			if c == 0 && n > 1 {
				return 0, 0, errXZ
			}
			return v, n, nil
		}
	}
	return 0, 0, errXZ
}

func xzCheckSize(t byte) int {
	switch {
	case t == 0:
		return 0
	case t <= 3:
		return 4
	case t <= 6:
		return 8
	case t <= 9:
		return 16
	case t <= 12:
		return 32
	}
	return 64
}

func xzHash(t byte) hash.Hash {
	switch t {
	case 1:
		return crc32.NewIEEE()
	case 4:
		return crc64.New(crc64.MakeTable(crc64.ECMA))
	case 10:
		return sha256.New()
	}
	return nil // unknown check types are skipped, as the spec permits
}

// xzReader streams the first stream of an .xz file. Bytes after that
// stream's blocks are ignored.
type xzReader struct {
	b      []byte
	pos    int // next block header in b
	check  byte
	limit  int64
	cur    io.Reader     // current block's decoded output
	comp   *bytes.Reader // current block's compressed data
	h      hash.Hash     // current block's check, nil if not verified
	cstart int           // offset in b of the current compressed data
	done   bool
}

func newXZReader(b []byte, limit int64) (*xzReader, error) {
	if len(b) < 12 || string(b[:6]) != "\xfd7zXZ\x00" {
		return nil, fmt.Errorf("stream header: %w", errXZ)
	}
	if b[6] != 0 || b[7] > 0x0f || crc32.ChecksumIEEE(b[6:8]) != binary.LittleEndian.Uint32(b[8:12]) {
		return nil, fmt.Errorf("stream flags: %w", errXZ)
	}
	return &xzReader{b: b, pos: 12, check: b[7], limit: limit}, nil
}

func (x *xzReader) Read(p []byte) (int, error) {
	for {
		if x.cur == nil {
			if x.done {
				return 0, io.EOF
			}
			if err := x.nextBlock(); err != nil {
				return 0, err
			}
			continue
		}
		n, err := x.cur.Read(p)
		if n > 0 {
			if x.h != nil {
				x.h.Write(p[:n])
			}
			return n, nil
		}
		if err != io.EOF {
			if err == nil {
				err = io.ErrNoProgress
			}
			return 0, fmt.Errorf("lzma2: %w: %w", errXZ, err)
		}
		if err := x.endBlock(); err != nil {
			return 0, err
		}
	}
}

// nextBlock parses a block header and sets up its decoder, or marks the
// end at the index indicator.
func (x *xzReader) nextBlock() error {
	b, pos := x.b, x.pos
	if pos >= len(b) {
		return fmt.Errorf("block header: %w", io.ErrUnexpectedEOF)
	}
	if b[pos] == 0 { // index indicator: no more blocks
		x.done = true
		return nil
	}
	hsize := (int(b[pos]) + 1) * 4
	if pos+hsize > len(b) {
		return fmt.Errorf("block header: %w", io.ErrUnexpectedEOF)
	}
	h := b[pos : pos+hsize]
	if crc32.ChecksumIEEE(h[:hsize-4]) != binary.LittleEndian.Uint32(h[hsize-4:]) {
		return fmt.Errorf("block header CRC: %w", errXZ)
	}
	filters, err := xzBlockFilters(h[:hsize-4])
	if err != nil {
		return err
	}
	pos += hsize
	lz := filters[len(filters)-1]
	if lz.id != xzFilterLZMA2 || len(lz.props) != 1 || lz.props[0] > 40 {
		return fmt.Errorf("xz filter chain ending in %#x: %w", lz.id, ErrUnsupportedCompression)
	}
	p := lz.props[0]
	dict := uint64(0xFFFFFFFF)
	if p < 40 {
		dict = uint64(2|(p&1)) << (p/2 + 11)
	}
	x.cstart = pos
	x.comp = bytes.NewReader(b[pos:])
	zr, err := lzma.Reader2Config{DictCap: dictFor(dict, x.limit)}.NewReader2(x.comp)
	if err != nil {
		return fmt.Errorf("lzma2: %w: %w", errXZ, err)
	}
	var r io.Reader = zr
	for i := len(filters) - 2; i >= 0; i-- { // decode in reverse filter order
		f := filters[i]
		switch {
		case f.id == xzFilterX86 && len(f.props) == 0:
			r = newBCJX86(r, 0)
		case f.id == xzFilterX86 && len(f.props) == 4:
			r = newBCJX86(r, binary.LittleEndian.Uint32(f.props))
		default:
			return fmt.Errorf("xz filter %#x: %w", f.id, ErrUnsupportedCompression)
		}
	}
	x.cur, x.h = r, xzHash(x.check)
	return nil
}

// endBlock skips the block padding and verifies the block's check.
func (x *xzReader) endBlock() error {
	consumed := len(x.b) - x.cstart - x.comp.Len()
	pos := x.cstart + consumed + (4-consumed%4)%4
	cs := xzCheckSize(x.check)
	if pos+cs > len(x.b) {
		return fmt.Errorf("block check: %w", io.ErrUnexpectedEOF)
	}
	if x.h != nil {
		sum := x.h.Sum(nil)
		if x.check != 10 { // CRCs are stored little-endian
			for i, j := 0, len(sum)-1; i < j; i, j = i+1, j-1 {
				sum[i], sum[j] = sum[j], sum[i]
			}
		}
		if !bytes.Equal(sum, x.b[pos:pos+cs]) {
			return fmt.Errorf("block check mismatch: %w", errXZ)
		}
	}
	x.pos = pos + cs
	x.cur, x.comp, x.h = nil, nil, nil
	return nil
}

type xzFilter struct {
	id    uint64
	props []byte
}

// xzBlockFilters parses a block header (without its CRC).
func xzBlockFilters(h []byte) ([]xzFilter, error) {
	flags := h[1]
	if flags&0x3c != 0 {
		return nil, fmt.Errorf("block flags %#x: %w", flags, errXZ)
	}
	pos := 2
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} { // compressed, uncompressed size
		if present {
			_, n, err := xzVarint(h[pos:])
			if err != nil {
				return nil, fmt.Errorf("block sizes: %w", err)
			}
			pos += n
		}
	}
	nf := int(flags&3) + 1
	filters := make([]xzFilter, 0, nf)
	for range nf {
		id, n, err := xzVarint(h[pos:])
		if err != nil {
			return nil, fmt.Errorf("filter id: %w", err)
		}
		pos += n
		sz, n, err := xzVarint(h[pos:])
		if err != nil || sz > uint64(len(h)-pos-n) {
			return nil, fmt.Errorf("filter properties: %w", errXZ)
		}
		pos += n
		filters = append(filters, xzFilter{id: id, props: h[pos : pos+int(sz)]})
		pos += int(sz)
	}
	for _, c := range h[pos:] {
		if c != 0 {
			return nil, fmt.Errorf("block header padding: %w", errXZ)
		}
	}
	return filters, nil
}

// bcjX86 undoes the x86 branch-call-jump filter on a stream. The encoder
// rewrote the 32-bit operand of CALL (E8) and JMP (E9) from relative to
// absolute when its top byte was 0x00 or 0xFF, tracking in mask which of
// the preceding bytes were themselves E8/E9 candidates so that overlapping
// candidates are handled the same way in both directions.
type bcjX86 struct {
	r       io.Reader
	mask    uint32
	prevPos uint32 // stream position of the last E8/E9 seen
	pos     uint32 // stream position of buf[0]
	buf     []byte // [0:ready) decoded, [ready:) not yet examined
	ready   int
	eof     error // the underlying reader's final error
}

func newBCJX86(r io.Reader, start uint32) *bcjX86 {
	return &bcjX86{r: r, pos: start, prevPos: start - 5, buf: make([]byte, 0, 64<<10)}
}

func (f *bcjX86) Read(p []byte) (int, error) {
	for f.ready == 0 {
		if f.eof != nil {
			if len(f.buf) == 0 {
				return 0, f.eof
			}
			f.ready = len(f.buf) // the last < 5 bytes pass through
			break
		}
		if len(f.buf) == cap(f.buf) {
			return 0, io.ErrShortBuffer // unreachable: code consumes all but 4
		}
		n, err := f.r.Read(f.buf[len(f.buf):cap(f.buf)])
		f.buf = f.buf[:len(f.buf)+n]
		if err != nil {
			f.eof = err
		}
		f.ready = f.code(f.buf)
	}
	n := copy(p, f.buf[:f.ready])
	f.ready -= n
	f.pos += uint32(n)
	f.buf = f.buf[:copy(f.buf, f.buf[n:])]
	return n, nil
}

// code decodes candidates in b (b[0] is at stream position f.pos) and
// returns how many leading bytes are final.
func (f *bcjX86) code(b []byte) int {
	msByte := func(c byte) bool { return c == 0x00 || c == 0xFF }
	// Indexed by recent-candidate history: may a conversion happen, and
	// which operand byte gets the extra test.
	allowed := [8]bool{true, true, true, false, true, false, false, false}
	bitNum := [8]uint32{0, 1, 2, 2, 3, 3, 3, 3}
	i := f.ready
	for i+5 <= len(b) {
		if b[i] != 0xE8 && b[i] != 0xE9 {
			i++
			continue
		}
		pos := f.pos + uint32(i)
		dist := pos - f.prevPos
		f.prevPos = pos
		if dist > 5 {
			f.mask = 0
		} else {
			for range dist {
				f.mask = (f.mask & 0x77) << 1
			}
		}
		top := b[i+4]
		if msByte(top) && allowed[(f.mask>>1)&7] && f.mask>>1 < 0x10 {
			src := binary.LittleEndian.Uint32(b[i+1:])
			var dest uint32
			for {
				dest = src - (pos + 5)
				if f.mask == 0 {
					break
				}
				n := bitNum[f.mask>>1]
				if !msByte(byte(dest >> (24 - n*8))) {
					break
				}
				src = dest ^ (1<<(32-n*8) - 1)
			}
			// Keep 25 bits and sign-extend bit 24 into the top byte.
			dest = dest&0x01FFFFFF | -(dest>>24&1)<<25
			binary.LittleEndian.PutUint32(b[i+1:], dest)
			i += 5
			f.mask = 0
		} else {
			i++
			f.mask |= 1
			if msByte(top) {
				f.mask |= 0x10
			}
		}
	}
	return i
}
