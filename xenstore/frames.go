package xenstore

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/xenckpt/xenckpt/xenstore/internal/wire"
)

// directConn is a connection a caller can use itself, without the reader
// goroutine: a write and a read of its own reply, as libxenstore does,
// made as raw syscalls so that the round trip stays on the caller's
// thread. directRead returns errDirectSlow when no data came within a
// short bound; the caller then hands reading over to the reader
// goroutine. Both are used by one goroutine at a time (the reader role,
// the write mutex).
type directConn interface {
	directRead(p []byte) (int, error)
	directWrite(p []byte) (int, error)
	// readMany is the reader goroutine's read while several calls
	// are in flight (see Client); writeNow writes what the
	// connection takes without waiting (a batch of queued frames).
	readMany(p []byte) (int, error)
	writeNow(p []byte) (int, error)
}

// directReader adapts directConn's read to io.Reader for frameReader.
type directReader struct{ d directConn }

func (r directReader) Read(p []byte) (int, error) { return r.d.directRead(p) }

// manyReader adapts directConn's readMany to io.Reader for frameReader.
type manyReader struct{ d directConn }

func (r manyReader) Read(p []byte) (int, error) { return r.d.readMany(p) }

// frameReader splits a byte stream into frames. It is used by whoever
// holds the reader role, and keeps a partly read frame across a read that
// failed with errDirectSlow, so the next holder continues it.
type frameReader struct {
	buf  []byte
	r, w int // unread bytes are buf[r:w]
}

// buffered reports whether unread bytes are waiting.
func (f *frameReader) buffered() bool { return f.r < f.w }

// next returns the next frame, reading from src as needed. A payload over
// limit is rejected with wire.ErrTooLarge. EOF before a header is io.EOF,
// inside a frame io.ErrUnexpectedEOF.
func (f *frameReader) next(src io.Reader, limit int) (*wire.Msg, error) {
	for {
		if avail := f.w - f.r; avail >= wire.HeaderSize {
			h := f.buf[f.r:]
			n := binary.NativeEndian.Uint32(h[12:16])
			if limit < 0 || uint64(n) > uint64(limit) {
				return nil, fmt.Errorf("%w: %d-byte payload, limit %d", wire.ErrTooLarge, n, limit)
			}
			total := wire.HeaderSize + int(n)
			if avail >= total {
				m := new(wire.Msg)
				if err := m.UnmarshalBinary(h[:total]); err != nil {
					return nil, err // not reached: total is the header's length
				}
				f.r += total
				if f.r == f.w {
					f.r, f.w = 0, 0
					if len(f.buf) > frameBuf {
						f.buf = nil // an oversized reply: do not keep its buffer
					}
				}
				return m, nil
			}
			f.makeRoom(total)
		} else {
			f.makeRoom(wire.HeaderSize)
		}
		k, err := src.Read(f.buf[f.w:])
		f.w += k
		if err != nil {
			if err == io.EOF && f.w > f.r {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}

// frameBuf is the usual read buffer: one read(2) brings header and
// payload, and several pipelined replies at once.
const frameBuf = 16 << 10

// makeRoom makes buf[r:] able to hold a frame of total bytes, with room
// for more.
func (f *frameReader) makeRoom(total int) {
	if f.buf == nil {
		f.buf = make([]byte, max(frameBuf, total))
	}
	if len(f.buf)-f.r >= total && f.w < len(f.buf) {
		return
	}
	if f.r > 0 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	if len(f.buf) < total {
		nb := make([]byte, total)
		copy(nb, f.buf[:f.w])
		f.buf = nb
	}
}
