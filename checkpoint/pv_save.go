package checkpoint

import (
	"context"
	"errors"
	"fmt"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
)

// openPV reads a PV guest's p2m from its memory (through the shared_info
// frame) before any page is copied, sizes the image by it and writes
// X86_PV_P2M_FRAMES (the pfns of the p2m's own frames), as libxc's
// x86_pv_setup and start_of_stream.
func (s *session) openPV(ctx context.Context, sink *streamSink) error {
	p, err := readPVMemory(ctx, s.c.hv, s.dom, s.info.SharedInfoFrame, s.sh.Width)
	if err != nil {
		return fmt.Errorf("reading the PV guest's p2m: %w", err)
	}
	s.sh.MaxGPFN = p.maxPFN()
	s.mem.pv = p
	err = sink.w.WriteP2MFrames(stream.P2MFrames{StartPFN: 0, EndPFN: uint32(p.maxPFN()), Frames: p.leaves})
	if err != nil {
		return fmt.Errorf("writing p2m frames: %w", err)
	}
	return nil
}

// pvFrames translates the queued pfns into the machine frames to map
// (invalidFrame for pfns the p2m does not back).
func (m *memCopier) pvFrames() []uint64 {
	m.frames = m.frames[:0]
	for _, pfn := range m.gfns {
		f := invalidFrame
		if pfn < uint64(len(m.pv.p2m)) {
			f = m.pv.p2m[pfn]
		}
		m.frames = append(m.frames, f)
	}
	return m.frames
}

// normalisePV returns the batch's pages with every page table normalised
// (libxc's x86_pv_normalise_page): copied into scratch, Xen's slots
// cleared, MFNs turned into PFNs. Other pages stay the mapped ones, so
// only page tables are copied. pages holds the pages of nib's
// data-carrying entries in order, and is reused for the result. A table
// of a running guest that names a frame outside its p2m is sent as XTAB
// and queued for the final round; once the guest is suspended that is
// ErrBadFrame.
func (m *memCopier) normalisePV(nib []uint8, pages [][]byte) ([][]byte, error) {
	tables := 0
	for _, t := range nib {
		if pageHasData(t) && t&7 >= 1 && t&7 <= 4 {
			tables++
		}
	}
	if tables == 0 {
		return pages, nil
	}
	if cap(m.scratch) < tables*pageSize {
		m.scratch = make([]byte, tables*pageSize)
	}
	scratch := m.scratch[:tables*pageSize]
	out := pages[:0] // never ahead of the page being read
	src := 0
	for i, t := range nib {
		if !pageHasData(t) {
			continue
		}
		page := pages[src]
		src++
		lvl := t & 7
		if lvl < 1 || lvl > 4 {
			out = append(out, page)
			continue
		}
		dst := scratch[:pageSize] // consecutive tables stay one run
		err := m.pv.normalise(dst, page, lvl)
		switch {
		case err == nil:
			out = append(out, dst)
			scratch = scratch[pageSize:]
		case errors.Is(err, errRetryPage) && !m.final:
			nib[i] = pfinfoXTAB
			m.retry = append(m.retry, m.gfns[i])
		case errors.Is(err, errRetryPage):
			return nil, fmt.Errorf("%w: page table at pfn %#x: %w", ErrBadFrame, m.gfns[i], err)
		default:
			return nil, fmt.Errorf("page table at pfn %#x: %w", m.gfns[i], err)
		}
	}
	return out, nil
}

// addRetries adds the pfns deferred while the guest ran to bitmap.
func (m *memCopier) addRetries(bitmap []uint64) {
	for _, pfn := range m.retry {
		if pfn/64 < uint64(len(bitmap)) {
			bitmap[pfn/64] |= 1 << (pfn % 64)
		}
	}
	m.retry = m.retry[:0]
}
