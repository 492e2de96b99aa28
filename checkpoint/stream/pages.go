package stream

import (
	"fmt"
)

// pageErr reports misuse of the page accessors.
func (r *Reader) pageErr(format string, args ...any) error {
	return &FormatError{Layer: LayerLibxc, Record: RecPageData.String(), Offset: r.cur.Offset,
		Err: errf(ErrOrder, format, args...)}
}

// pagesReady checks that the current record is PAGE_DATA whose pages have
// not been consumed into caller buffers yet.
func (r *Reader) pagesReady() error {
	if r.err != nil {
		return r.err
	}
	if r.cur.Kind != KindLibxc || r.cur.Type != RecPageData {
		return r.pageErr("no current PAGE_DATA record")
	}
	if r.pages.mem == nil && r.pages.left != r.pages.total {
		return r.pageErr("page data already read")
	}
	return nil
}

// ReadPages reads the page data of the current PAGE_DATA record into dst,
// one PageSize slice per data page (len(dst) == Record.DataPages), in
// stream order. Restore passes the pages of a foreign mapping here, so the
// bytes go from the stream into the guest without an intermediate copy
// (beyond the Reader's small read buffer). Page data can be read once.
func (r *Reader) ReadPages(dst [][]byte) error {
	if err := r.pagesReady(); err != nil {
		return err
	}
	if len(dst) != r.cur.DataPages {
		return r.pageErr("%d buffers for %d pages", len(dst), r.cur.DataPages)
	}
	for i, d := range dst {
		if len(d) != PageSize {
			return r.pageErr("buffer %d has %d bytes, want %d", i, len(d), PageSize)
		}
	}
	for i, d := range dst {
		if err := r.fillPage(d, i); err != nil {
			return err
		}
	}
	return nil
}

// ReadPagesContiguous reads the page data of the current PAGE_DATA record
// into dst, which must hold exactly DataPages*PageSize bytes.
func (r *Reader) ReadPagesContiguous(dst []byte) error {
	if err := r.pagesReady(); err != nil {
		return err
	}
	if int64(len(dst)) != r.pages.total {
		return r.pageErr("buffer of %d bytes for %d pages", len(dst), r.cur.DataPages)
	}
	if r.pages.mem != nil {
		copy(dst, r.pages.mem)
		return nil
	}
	if err := r.read(dst); err != nil {
		r.pages.left = -1
		r.err = r.ioErr(LayerLibxc, RecPageData.String(), r.cur.Offset, err)
		return r.err
	}
	r.pages.left = 0
	return nil
}

// fillPage fills d with data page i.
func (r *Reader) fillPage(d []byte, i int) error {
	if r.pages.mem != nil {
		copy(d, r.pages.mem[i*PageSize:])
		return nil
	}
	if err := r.read(d); err != nil {
		r.pages.left = -1
		r.err = r.ioErr(LayerLibxc, RecPageData.String(), r.cur.Offset, err)
		return r.err
	}
	r.pages.left -= PageSize
	return nil
}

// Pages returns the page data of the current PAGE_DATA record, DataPages
// pages back to back, in memory owned by the Reader and valid until the
// next call to Next. It may be called more than once.
func (r *Reader) Pages() ([]byte, error) {
	if r.cur.Kind != KindLibxc || r.cur.Type != RecPageData {
		return nil, r.pageErr("no current PAGE_DATA record")
	}
	if r.pages.mem != nil || r.pages.total == 0 {
		return r.pages.mem, nil
	}
	if err := r.pagesReady(); err != nil {
		return nil, err
	}
	mem, err := r.readGrow(r.pages.buf[:0], int(r.pages.total))
	r.pages.buf = mem
	if err != nil {
		r.pages.left = -1
		r.err = r.ioErr(LayerLibxc, RecPageData.String(), r.cur.Offset, err)
		return nil, r.err
	}
	r.pages.mem, r.pages.left = mem, 0
	return mem, nil
}

// skipPages discards page data the caller did not read.
func (r *Reader) skipPages() error {
	if r.pages.left <= 0 {
		return nil
	}
	n, err := r.br.Discard(int(r.pages.left))
	r.off += int64(n)
	r.pages.left -= int64(n)
	if err != nil {
		return r.ioErr(LayerLibxc, RecPageData.String(), r.cur.Offset, err)
	}
	return nil
}

// String describes the record in one line, for logs and tools.
func (rec Record) String() string {
	switch rec.Kind {
	case KindXLHeader:
		return fmt.Sprintf("@%d xl header: mandatory %#x, %d bytes of config", rec.Offset, rec.XL.MandatoryFlags, len(rec.XL.Config))
	case KindLibxlHeader:
		return fmt.Sprintf("@%d libxl header: version %d, options %#x", rec.Offset, rec.Libxl.Version, rec.Libxl.Options)
	case KindImageHeader:
		return fmt.Sprintf("@%d image header: version %d", rec.Offset, rec.Image.Version)
	case KindDomainHeader:
		return fmt.Sprintf("@%d domain header: %v, page shift %d, Xen %d.%d", rec.Offset, rec.Domain.Type,
			rec.Domain.PageShift, rec.Domain.XenMajor, rec.Domain.XenMinor)
	case KindLibxl:
		return fmt.Sprintf("@%d libxl %v: %d bytes", rec.Offset, rec.LibxlType, len(rec.Body))
	case KindLibxc:
		if rec.Type == RecPageData {
			return fmt.Sprintf("@%d %v: %d pfns, %d pages", rec.Offset, rec.Type, len(rec.PFNs), rec.DataPages)
		}
		return fmt.Sprintf("@%d %v: %d bytes", rec.Offset, rec.Type, len(rec.Body))
	}
	return fmt.Sprintf("@%d %v", rec.Offset, rec.Kind)
}
