package magic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"hash/crc32"
	"io"
)

// The lzop container (what Linux's build writes with lzop -9) around
// LZO1X blocks. No maintained Go library decodes LZO, so both live here;
// the LZO1X stream format is described in Linux's
// Documentation/staging/lzo.rst.

var errLZO = errors.New("malformed lzo stream")

const (
	lzopMagic       = "\x89LZO\x00\r\n\x1a\n"
	lzopAdler32D    = 0x0001
	lzopAdler32C    = 0x0002
	lzopExtraField  = 0x0040
	lzopCRC32D      = 0x0100
	lzopCRC32C      = 0x0200
	lzopMultipart   = 0x0400
	lzopFilter      = 0x0800
	lzopHeaderCRC32 = 0x1000
	lzopMaxBlock    = 64 << 20 // lzop's MAX_BLOCK_SIZE
)

type lzopReader struct {
	b     []byte
	pos   int
	flags uint32
	limit int64
	cur   []byte // decoded, not yet returned
	done  bool
}

func newLZOPReader(b []byte, limit int64) (*lzopReader, error) {
	r := &lzopReader{b: b, limit: limit}
	if err := r.header(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *lzopReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.pos {
		return nil, fmt.Errorf("lzop: %w", io.ErrUnexpectedEOF)
	}
	p := r.b[r.pos : r.pos+n]
	r.pos += n
	return p, nil
}

func (r *lzopReader) u8() (uint32, error) {
	p, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return uint32(p[0]), nil
}

func (r *lzopReader) u16() (uint32, error) {
	p, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return uint32(binary.BigEndian.Uint16(p)), nil
}

func (r *lzopReader) u32() (uint32, error) {
	p, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(p), nil
}

// header parses the lzop file header (lzop's p_header / Linux's
// lib/decompress_unlzo.c parse_header).
func (r *lzopReader) header() error {
	if _, err := r.take(len(lzopMagic)); err != nil || string(r.b[:len(lzopMagic)]) != lzopMagic {
		return fmt.Errorf("lzop magic: %w", errLZO)
	}
	start := r.pos
	version, err := r.u16()
	if err != nil {
		return err
	}
	if _, err := r.u16(); err != nil { // library version
		return err
	}
	if version >= 0x0940 {
		if _, err := r.u16(); err != nil { // version needed to extract
			return err
		}
	}
	method, err := r.u8()
	if err != nil {
		return err
	}
	if method < 1 || method > 3 { // M_LZO1X_1, M_LZO1X_1_15, M_LZO1X_999
		return fmt.Errorf("lzop method %d: %w", method, ErrUnsupportedCompression)
	}
	if version >= 0x0940 {
		if _, err := r.u8(); err != nil { // level
			return err
		}
	}
	if r.flags, err = r.u32(); err != nil {
		return err
	}
	if r.flags&(lzopMultipart|lzopFilter) != 0 {
		return fmt.Errorf("lzop flags %#x (multipart/filter): %w", r.flags, ErrUnsupportedCompression)
	}
	skip := 8 // mode, mtime low
	if version >= 0x0940 {
		skip += 4 // mtime high
	}
	if _, err := r.take(skip); err != nil {
		return err
	}
	nameLen, err := r.u8()
	if err != nil {
		return err
	}
	if _, err := r.take(int(nameLen)); err != nil {
		return err
	}
	hdr := r.b[start:r.pos]
	sum, err := r.u32()
	if err != nil {
		return err
	}
	want := adler32.Checksum(hdr)
	if r.flags&lzopHeaderCRC32 != 0 {
		want = crc32.ChecksumIEEE(hdr)
	}
	if sum != want {
		return fmt.Errorf("lzop header checksum: %w", errLZO)
	}
	if r.flags&lzopExtraField != 0 {
		n, err := r.u32()
		if err != nil {
			return err
		}
		if _, err := r.take(int(min(n, 1<<30)) + 4); err != nil { // data + checksum
			return err
		}
	}
	return nil
}

func (r *lzopReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.done {
			return 0, io.EOF
		}
		if err := r.block(); err != nil {
			return 0, err
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *lzopReader) block() error {
	dstLen, err := r.u32()
	if err != nil {
		return err
	}
	if dstLen == 0 {
		r.done = true
		return nil
	}
	if dstLen > lzopMaxBlock || int64(dstLen) > r.limit {
		return fmt.Errorf("lzop block of %d bytes: %w", dstLen, errLZO)
	}
	srcLen, err := r.u32()
	if err != nil {
		return err
	}
	if srcLen > dstLen {
		return fmt.Errorf("lzop block %d > %d bytes: %w", srcLen, dstLen, errLZO)
	}
	var adlerD, crcD uint32
	if r.flags&lzopAdler32D != 0 {
		if adlerD, err = r.u32(); err != nil {
			return err
		}
	}
	if r.flags&lzopCRC32D != 0 {
		if crcD, err = r.u32(); err != nil {
			return err
		}
	}
	if srcLen < dstLen {
		for _, f := range []uint32{lzopAdler32C, lzopCRC32C} {
			if r.flags&f != 0 {
				if _, err := r.u32(); err != nil {
					return err
				}
			}
		}
	}
	src, err := r.take(int(srcLen))
	if err != nil {
		return err
	}
	dst := src
	if srcLen < dstLen {
		dst = make([]byte, dstLen)
		if err := lzo1xDecompress(dst, src); err != nil {
			return err
		}
	}
	if r.flags&lzopAdler32D != 0 && adler32.Checksum(dst) != adlerD {
		return fmt.Errorf("lzop block adler32: %w", errLZO)
	}
	if r.flags&lzopCRC32D != 0 && crc32.ChecksumIEEE(dst) != crcD {
		return fmt.Errorf("lzop block crc32: %w", errLZO)
	}
	r.cur = dst
	return nil
}

// lzo1xDecompress decodes one LZO1X block (bitstream version 0) into dst,
// which must be exactly the decoded size.
func lzo1xDecompress(dst, src []byte) error {
	ip, op := 0, 0
	bad := func(what string) error { return fmt.Errorf("lzo1x %s at input %d output %d: %w", what, ip, op, errLZO) }
	// literals copies n input bytes to the output.
	literals := func(n int) error {
		if n > len(src)-ip {
			return bad("literal run past input")
		}
		if n > len(dst)-op {
			return bad("literal run past output")
		}
		copy(dst[op:], src[ip:ip+n])
		ip, op = ip+n, op+n
		return nil
	}
	// match copies n bytes from dist back in the output (may overlap).
	match := func(dist, n int) error {
		if dist > op || dist <= 0 {
			return bad("match before output start")
		}
		if n > len(dst)-op {
			return bad("match past output")
		}
		for i := range n {
			dst[op+i] = dst[op-dist+i]
		}
		op += n
		return nil
	}
	// length extends a length field whose bits were all zero.
	length := func(base int) (int, error) {
		n := base
		for {
			if ip >= len(src) {
				return 0, bad("length past input")
			}
			c := src[ip]
			ip++
			if c != 0 {
				return n + int(c), nil
			}
			n += 255
			if n > len(dst) {
				return 0, bad("length beyond output")
			}
		}
	}
	byteAt := func() (int, error) {
		if ip >= len(src) {
			return 0, bad("operand past input")
		}
		ip++
		return int(src[ip-1]), nil
	}
	le16 := func() (int, error) {
		if len(src)-ip < 2 {
			return 0, bad("operand past input")
		}
		ip += 2
		return int(binary.LittleEndian.Uint16(src[ip-2:])), nil
	}

	if len(src) == 0 {
		return bad("empty block")
	}
	state := 0
	if src[0] == 17 {
		return fmt.Errorf("lzo1x bitstream version 1 (lzo-rle): %w", ErrUnsupportedCompression)
	}
	if src[0] > 17 {
		ip++
		n := int(src[0]) - 17
		if err := literals(n); err != nil {
			return err
		}
		state = min(n, 4)
	}
	for {
		if ip >= len(src) {
			return bad("missing end marker")
		}
		c := int(src[ip])
		ip++
		var dist, n, s int
		switch {
		case c < 16 && state == 0: // long literal run
			n = c
			if n == 0 {
				var err error
				if n, err = length(15); err != nil {
					return err
				}
			}
			if err := literals(n + 3); err != nil {
				return err
			}
			state = 4
			continue
		case c < 16: // short match right after literals
			h, err := byteAt()
			if err != nil {
				return err
			}
			s = c & 3
			if state == 4 {
				dist, n = h<<2+(c>>2)&3+2049, 3
			} else {
				dist, n = h<<2+(c>>2)&3+1, 2
			}
		case c < 32: // 16..48 KiB distance, or end of stream
			n = c & 7
			if n == 0 {
				var err error
				if n, err = length(7); err != nil {
					return err
				}
			}
			d, err := le16()
			if err != nil {
				return err
			}
			s, dist, n = d&3, 16384+(c&8)<<11+d>>2, n+2
			if dist == 16384 {
				if op != len(dst) {
					return bad("end marker before output is full")
				}
				if ip != len(src) {
					return bad("data after end marker")
				}
				return nil
			}
		case c < 64: // within 16 KiB
			n = c & 31
			if n == 0 {
				var err error
				if n, err = length(31); err != nil {
					return err
				}
			}
			d, err := le16()
			if err != nil {
				return err
			}
			s, dist, n = d&3, d>>2+1, n+2
		default: // within 2 KiB, 3..8 bytes
			h, err := byteAt()
			if err != nil {
				return err
			}
			s, dist = c&3, h<<3+(c>>2)&7+1
			if c < 128 {
				n = 3 + (c>>5)&1
			} else {
				n = 5 + (c>>5)&3
			}
		}
		if err := match(dist, n); err != nil {
			return err
		}
		if err := literals(s); err != nil {
			return err
		}
		state = s
	}
}
