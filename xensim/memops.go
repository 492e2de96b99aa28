package xensim

import (
	"encoding/binary"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/xenckpt/xenckpt/domctl"
)

func munmap(b []byte) error { return unix.Munmap(b) }

// populate implements XENMEM_populate_physmap with order-0 extents: it
// returns how many extents were populated (Xen's nr_done); it stops at the
// first gfn beyond the physmap or once tot_pages would exceed max_pages.
// Populating an already-populated gfn replaces the page with a zeroed one,
// as Xen does after freeing the old page.
//
// For a PV domain with machine frames (PVFramesMachine) the gfns are the
// pfns the new frames get in the M2P, as in Xen for a non-translated
// guest, and frames[i] receives the MFN backing gfns[i] (Xen writes it
// back into extent_start); run gives the frames consecutive MFNs (an
// extent of order > 0). For other domains frames[i] = gfns[i]. frames may
// be nil.
func (x *xen) populate(id domctl.DomID, gfns, frames []uint64, run bool) (int, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return 0, err
	}
	if d.dying {
		return 0, errEINVAL
	}
	// Back new frames with memory now, as Xen allocates at populate time,
	// so that neither the guest nor a snapshot pays for it later.
	var runStart, runLen uint64
	flush := func() {
		if runLen > 0 {
			d.mem.allocate(runStart, runLen)
		}
		runLen = 0
	}
	defer flush()
	runMFN := invalidMFN
	if run && d.machine {
		runMFN = x.allocMFNRun(uint64(len(gfns)))
	}
	back := func(i int, gfn uint64) {
		f := gfn
		if d.machine {
			m := invalidMFN
			if runMFN != invalidMFN {
				m = runMFN + uint64(i)
			}
			f = x.backPFN(d, gfn, m)
		}
		if frames != nil {
			frames[i] = f
		}
	}
	for i, gfn := range gfns {
		if gfn >= d.mem.limit {
			return i, nil
		}
		if d.isPopulated(gfn) {
			clear(d.mem.page(gfn))
			delete(d.ptype, gfn)
			back(i, gfn)
			continue
		}
		if d.maxPages != 0 && d.totPages >= d.maxPages {
			return i, nil
		}
		back(i, gfn)
		d.populated[gfn/64] |= 1 << (gfn % 64)
		d.totPages++
		if gfn > d.maxGPFN {
			d.maxGPFN = gfn
		}
		if runLen > 0 && gfn == runStart+runLen {
			runLen++
		} else {
			flush()
			runStart, runLen = gfn, 1
		}
	}
	return len(gfns), nil
}

func (x *xen) maximumGPFN(id domctl.DomID) (uint64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return 0, err
	}
	return d.maxGPFN, nil
}

// pageTypes implements getpageframeinfo3: each entry (a frame: an MFN of a
// PV domain with machine frames, else a gfn) is replaced by its type:
// L1TAB..L4TAB (| LPINTAB if pinned) for a PV page-table page, NOTAB for
// another page of the domain, XTAB for a hole or a frame it does not own.
func (x *xen) pageTypes(id domctl.DomID, arr []uint64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	for i, f := range arr {
		if pfn, ok := d.framePFN(f); ok {
			arr[i] = pfinfoNOTAB | uint64(d.ptype[pfn])
		} else {
			arr[i] = pfinfoXTAB
		}
	}
	return nil
}

// Log-dirty (paging_log_dirty_op).

func (x *xen) enableLogDirty(id domctl.DomID) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	if id == 0 || d.dying {
		return errEINVAL
	}
	if d.logDirty.Load() {
		return errEINVAL // already in log-dirty mode
	}
	for i := range d.dirty {
		atomic.StoreUint64(&d.dirty[i], 0)
	}
	d.dirtyCount.Store(0)
	d.faultCount.Store(0)
	d.logDirty.Store(true)
	return nil
}

func (x *xen) disableLogDirty(id domctl.DomID) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	if id == 0 {
		return errEINVAL
	}
	d.logDirty.Store(false)
	return nil
}

// dirtyOp implements CLEAN (clean=true) and PEEK. bitmap, if not nil,
// receives pages bits (LSB-first bytes, as Xen copies unsigned longs);
// pages is capped at the p2m size (max gpfn + 1) and returned. final adds
// pages currently mapped writable by the toolstack
// (XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL).
func (x *xen) dirtyOp(id domctl.DomID, clean, final bool, bitmap []byte, pages uint64) (uint64, domctl.ShadowStats, error) {
	x.mu.Lock()
	d, err := x.lookupLocked(id)
	if err == nil && (id == 0 || !d.logDirty.Load()) {
		err = errEINVAL
	}
	if err != nil {
		x.mu.Unlock()
		return 0, domctl.ShadowStats{}, err
	}
	if p2m := d.maxGPFN + 1; pages > p2m {
		pages = p2m
	}
	x.mu.Unlock()
	if final {
		x.markWritableMappings(d)
	}
	stats := domctl.ShadowStats{Pages: pages}
	if clean {
		// Take the counts before the bitmap so that pages dirtied during
		// the scan count towards the next round, as their bits do.
		stats.FaultCount = uint32(d.faultCount.Swap(0))
		stats.DirtyCount = uint32(d.dirtyCount.Swap(0))
	} else {
		stats.FaultCount = uint32(d.faultCount.Load())
		stats.DirtyCount = uint32(d.dirtyCount.Load())
	}
	words := (pages + 63) / 64
	for w := uint64(0); w < words; w++ {
		var v uint64
		if clean {
			v = swapWord(&d.dirty[w])
		} else {
			v = loadWord(&d.dirty[w])
		}
		if w == words-1 && pages%64 != 0 {
			v &= (1 << (pages % 64)) - 1
		}
		if bitmap != nil {
			putWordBytes(bitmap[w*8:], v, int(min(8, (pages+7)/8-w*8)))
		}
	}
	return pages, stats, nil
}

func putWordBytes(b []byte, v uint64, n int) {
	for i := 0; i < n; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

func (x *xen) markWritableMappings(d *domain) {
	x.mapMu.Lock()
	defer x.mapMu.Unlock()
	for _, m := range x.mappings {
		if m.dom != d || !m.write {
			continue
		}
		for i, gfn := range m.gfns {
			if m.phys[i] {
				d.markDirty(gfn)
			}
		}
	}
}

// mapForeign maps gfns of domain id into this process: a PROT_NONE
// reservation, with each run of consecutive populated gfns mapped over it
// from the domain's memfd (MAP_SHARED|MAP_FIXED|MAP_POPULATE), so the
// mapping aliases guest memory. A frame that is not populated leaves its
// page inaccessible and gets -EINVAL in errs (MMAPBATCH_V2 reports
// negative errnos). A writable mapping marks its frames dirty when made and
// again when unmapped. A read-only request for consecutive pages of the
// memfd (a snapshot batch) needs no new mapping at all: it gets a slice of
// the domain's read-only alias, already populated, which costs nothing per
// page (mapping 1 GiB page run by page run cost ~60 ms, a third of a
// memmove of the same bytes).
func (x *xen) mapForeign(id domctl.DomID, prot domctl.Prot, gfns []uint64, errs []int32) ([]byte, error) {
	if len(gfns) == 0 || len(errs) != len(gfns) {
		return nil, errEINVAL
	}
	x.mu.Lock()
	d, err := x.lookupLocked(id)
	if err == nil && d.dying {
		err = errESRCH
	}
	if err != nil {
		x.mu.Unlock()
		return nil, err
	}
	// File page of each frame: its pfn, or a page past the physmap for
	// the shared_info frame and (PV) the grant-table frame (Xen pages,
	// not in the physmap). Page-table pages are never mapped writable.
	write := prot&domctl.ProtWrite != 0
	ok := make([]bool, len(gfns))
	phys := make([]bool, len(gfns)) // in the physmap: tracked by log-dirty
	fpage := make([]uint64, len(gfns))
	si := sharedInfoFrame(d)
	for i, f := range gfns {
		if pfn, own := d.framePFN(f); own {
			if !write || d.ptype[pfn] == 0 {
				ok[i], phys[i], fpage[i] = true, true, pfn
			}
			continue
		}
		switch {
		case f == si:
			ok[i], fpage[i] = true, d.mem.sharedInfoPage()
		case !d.hvm && f == grantFrameMFN(d):
			ok[i], fpage[i] = true, d.mem.grantPage()
		}
	}
	d.mappings++ // keeps the memfd alive
	fd := d.mem.fd
	x.mu.Unlock()

	if !write && contiguous(ok, fpage) {
		if mem := d.mem.alias(fpage[0], uint64(len(fpage))); mem != nil {
			clear(errs)
			m := &foreignMapping{dom: d, mem: mem, gfns: fpage, phys: phys, alias: true}
			k := aliasKey{addrOf(mem), len(mem)}
			x.mapMu.Lock()
			x.aliases[k] = append(x.aliases[k], m)
			x.mapMu.Unlock()
			return mem, nil
		}
	}

	undo := func() {
		x.mu.Lock()
		d.mappings--
		gone := x.reapLocked(d)
		x.mu.Unlock()
		if gone {
			d.mem.close()
		}
	}
	n := len(gfns) * PageSize
	mem, err := mmapAnon(n, unix.PROT_NONE)
	if err != nil {
		undo()
		return nil, err
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(mem)))
	uprot := 0
	if prot&domctl.ProtRead != 0 {
		uprot |= unix.PROT_READ
	}
	if write {
		uprot |= unix.PROT_WRITE
	}
	for i := 0; i < len(gfns); {
		if !ok[i] {
			errs[i] = -int32(syscall.EINVAL)
			i++
			continue
		}
		j := i + 1
		for j < len(gfns) && ok[j] && fpage[j] == fpage[j-1]+1 {
			j++
		}
		err := mmapFixed(base+uintptr(i*PageSize), uintptr((j-i)*PageSize), uprot,
			unix.MAP_SHARED|unix.MAP_POPULATE, fd, int64(fpage[i]<<pageShift))
		for k := i; k < j; k++ {
			if err != nil {
				ok[k], phys[k] = false, false
				errs[k] = -int32(syscall.ENOMEM)
			} else {
				errs[k] = 0
			}
		}
		i = j
	}
	m := &foreignMapping{dom: d, mem: mem, gfns: fpage, phys: phys, write: write}
	if write {
		for i, pfn := range fpage {
			if phys[i] {
				d.markDirty(pfn)
			}
		}
	}
	x.mapMu.Lock()
	x.mappings[base] = m
	x.mapMu.Unlock()
	return mem, nil
}

// contiguous reports whether every frame is mappable and the frames are
// consecutive pages of the memfd.
func contiguous(ok []bool, fpage []uint64) bool {
	for i := range fpage {
		if !ok[i] || fpage[i] != fpage[0]+uint64(i) {
			return false
		}
	}
	return true
}

// aliasKey names a read-only alias mapping: the same frames mapped twice
// give the same slice, so each key holds a stack of mappings.
type aliasKey struct {
	base uintptr
	len  int
}

func (x *xen) unmapForeign(mem []byte) error {
	base := addrOf(mem)
	x.mapMu.Lock()
	m := x.mappings[base]
	if m != nil && len(mem) == len(m.mem) {
		delete(x.mappings, base)
	} else if k := (aliasKey{base, len(mem)}); len(x.aliases[k]) > 0 {
		st := x.aliases[k]
		m = st[len(st)-1]
		if len(st) == 1 {
			delete(x.aliases, k)
		} else {
			x.aliases[k] = st[:len(st)-1]
		}
	} else {
		x.mapMu.Unlock()
		return errEINVAL
	}
	x.mapMu.Unlock()
	if m.write {
		for i, gfn := range m.gfns {
			if m.phys[i] {
				m.dom.markDirty(gfn)
			}
		}
	}
	var err error
	if !m.alias {
		err = unix.Munmap(m.mem)
	}
	x.mu.Lock()
	m.dom.mappings--
	gone := x.reapLocked(m.dom)
	x.mu.Unlock()
	if gone {
		m.dom.mem.close()
		x.fireDomExc()
	}
	return err
}

func swapWord(w *uint64) uint64 { return atomic.SwapUint64(w, 0) }
func loadWord(w *uint64) uint64 { return atomic.LoadUint64(w) }

// mapGrantTable is XENMEM_add_to_physmap(XENMAPSPACE_grant_table): frame
// idx (only 0 is modelled) of the domain's grant table appears at gfn, so
// a foreign mapping of gfn reads and writes the grant entries.
func (x *xen) mapGrantTable(id domctl.DomID, idx, gfn uint64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	if idx != 0 || gfn >= d.mem.limit || d.isPopulated(gfn) || d.grantMapped {
		return errEINVAL
	}
	d.populated[gfn/64] |= 1 << (gfn % 64)
	d.mem.allocate(gfn, 1)
	copy(d.mem.page(gfn), d.mem.page(d.mem.grantPage()))
	d.grantGFN, d.grantMapped = gfn, true
	return nil
}

// removeFromPhysmap is XENMEM_remove_from_physmap: the grant-table frame
// goes back out of the physmap (keeping what was written to it); an
// ordinary frame is released.
func (x *xen) removeFromPhysmap(id domctl.DomID, gfn uint64) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return err
	}
	if !d.isPopulated(gfn) {
		return errEINVAL
	}
	if d.grantMapped && gfn == d.grantGFN {
		copy(d.mem.page(d.mem.grantPage()), d.mem.page(gfn))
		d.grantMapped = false
	} else {
		d.dropPFN(gfn)
		if d.totPages > 0 {
			d.totPages--
		}
	}
	clear(d.mem.page(gfn))
	d.populated[gfn/64] &^= 1 << (gfn % 64)
	return nil
}

// grantEntry returns entry ref of the domain's grant table (v1).
func (x *xen) grantEntry(id domctl.DomID, ref int) (flags, dom uint16, frame uint32, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	d, err := x.lookupLocked(id)
	if err != nil {
		return 0, 0, 0, err
	}
	if ref < 0 || ref >= PageSize/8 {
		return 0, 0, 0, errEINVAL
	}
	e := d.mem.page(d.mem.grantPage())[ref*8:]
	if d.grantMapped {
		e = d.mem.page(d.grantGFN)[ref*8:]
	}
	return binary.LittleEndian.Uint16(e), binary.LittleEndian.Uint16(e[2:]), binary.LittleEndian.Uint32(e[4:]), nil
}
