package xensim

import (
	"encoding/binary"
	"unsafe"

	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
)

// PVFrames selects how a Host numbers the frames of PV domains.
type PVFrames int

// PV frame models.
const (
	// PVFramesDefault is the Host's default model, PVFramesMachine.
	PVFramesDefault PVFrames = iota
	// PVFramesMachine numbers a PV domain's frames as real Xen does:
	// each populated pfn is backed by a machine frame (MFN) from a
	// host-wide space, MFN != PFN. Foreign mappings and
	// getpageframeinfo3 take MFNs, page tables, cr3, GDT frames and the
	// guest's p2m hold MFNs, and a toolstack must translate through the
	// guest's p2m.
	PVFramesMachine
	// PVFramesIdentity gives every PV frame the MFN equal to its pfn, for
	// toolstacks that do not translate.
	PVFramesIdentity
)

// defaultPVFrames is what PVFramesDefault means: frames as on real Xen.
const defaultPVFrames = PVFramesMachine

func (f PVFrames) String() string {
	switch f {
	case PVFramesDefault:
		return "default"
	case PVFramesMachine:
		return "machine"
	case PVFramesIdentity:
		return "identity"
	}
	return "pvframes(?)"
}

// Machine frame space. Order-0 frames come from mfnBase up, permuted
// within each block of 1024 so that consecutive pfns do not get
// consecutive MFNs; contiguous runs (populate_physmap with an extent order
// above 0) come from mfnRunBase up. Both stay below 2^32 so that 32-bit
// guests' start_info and p2m entries hold them, and above 2^20 so that
// 32-bit PAE cr3 values use their folded encoding.
const (
	mfnBase    = 0x100000
	mfnRunBase = 0x8000000
	mfnPerm    = 389 // odd: i*389 mod 1024 permutes 0..1023

	invalidMFN = ^uint64(0)
)

// allocMFN hands out one machine frame. Call with x.mu held.
func (x *xen) allocMFN() uint64 {
	c := x.nextMFN
	x.nextMFN++
	return mfnBase + c&^1023 | (c&1023)*mfnPerm&1023
}

// allocMFNRun hands out n contiguous machine frames. Call with x.mu held.
func (x *xen) allocMFNRun(n uint64) uint64 {
	m := x.nextRun
	x.nextRun += n
	return m
}

// machineM2P is the host's M2P for the machine frames it hands out: the
// owner and pfn of every MFN, in two dense slices over the compact MFN
// ranges allocMFN and allocMFNRun draw from (MFNs are never reused), so
// that the per-page lookups of foreign mappings, getpageframeinfo3 and
// page-table validation index a slice instead of hashing. Guarded by x.mu.
type machineM2P struct {
	low, run []m2pEntry // MFN - mfnBase, MFN - mfnRunBase
}

// m2pEntry: owner nil = a frame no domain owns.
type m2pEntry struct {
	owner *domain
	pfn   uint64
}

// slot is the entry of mfn, growing the table when grow is set; nil if
// mfn lies outside both ranges (or past the end, without grow).
func (t *machineM2P) slot(mfn uint64, grow bool) *m2pEntry {
	tab, i := &t.low, mfn-mfnBase
	if mfn >= mfnRunBase {
		tab, i = &t.run, mfn-mfnRunBase
	} else if mfn < mfnBase {
		return nil
	}
	if i >= uint64(len(*tab)) {
		if !grow {
			return nil
		}
		*tab = append(*tab, make([]m2pEntry, i+1-uint64(len(*tab)))...)
	}
	return &(*tab)[i]
}

// framePFN resolves a frame number as a toolstack names it (an MFN for a
// PV domain with machine frames, the gfn otherwise) to the domain's pfn;
// false if the domain owns no such frame. Call with x.mu held.
func (d *domain) framePFN(f uint64) (uint64, bool) {
	if d.machine {
		if e := d.m2p.slot(f, false); e != nil && e.owner == d {
			return e.pfn, true
		}
		return 0, false
	}
	return f, d.isPopulated(f)
}

// pfnFrame is the frame number of pfn (its MFN, or the pfn itself), or
// invalidMFN. Call with x.mu held.
func (d *domain) pfnFrame(pfn uint64) uint64 {
	if d.machine {
		if pfn < uint64(len(d.mfnOf)) {
			return d.mfnOf[pfn]
		}
		return invalidMFN
	}
	if d.isPopulated(pfn) {
		return pfn
	}
	return invalidMFN
}

// setFrame records that pfn of machine-frame domain d is backed by mfn
// (in both directions). Call with x.mu held.
func (d *domain) setFrame(pfn, mfn uint64) {
	for uint64(len(d.mfnOf)) <= pfn {
		d.mfnOf = append(d.mfnOf, invalidMFN)
	}
	d.mfnOf[pfn] = mfn
	*d.m2p.slot(mfn, true) = m2pEntry{owner: d, pfn: pfn}
}

// clearFrame forgets the MFN backing pfn, if any. Call with x.mu held.
func (d *domain) clearFrame(pfn uint64) {
	if pfn >= uint64(len(d.mfnOf)) || d.mfnOf[pfn] == invalidMFN {
		return
	}
	if e := d.m2p.slot(d.mfnOf[pfn], false); e != nil && e.owner == d {
		*e = m2pEntry{}
	}
	d.mfnOf[pfn] = invalidMFN
}

// releaseFrames drops every M2P entry of a domain leaving the host.
// Call with x.mu held.
func (d *domain) releaseFrames() {
	if !d.machine {
		return
	}
	for pfn := range d.mfnOf {
		d.clearFrame(uint64(pfn))
	}
}

// backPFN gives a newly populated pfn of a machine-frame domain its MFN
// (mfn, or a fresh one if mfn is invalidMFN), dropping any MFN it had.
// Call with x.mu held.
func (x *xen) backPFN(d *domain, pfn, mfn uint64) uint64 {
	d.clearFrame(pfn)
	if mfn == invalidMFN {
		mfn = x.allocMFN()
	}
	d.setFrame(pfn, mfn)
	return mfn
}

// dropPFN releases the MFN of pfn (machine frames). Call with x.mu held.
func (d *domain) dropPFN(pfn uint64) {
	delete(d.ptype, pfn)
	if !d.machine {
		return
	}
	d.clearFrame(pfn)
}

// grantFrameMFN is the machine frame of a domain's grant-table frame 0
// (a Xen page, like shared_info): GNTTABOP_setup_table reports it and a
// foreign mapping of it reaches the grant entries.
func grantFrameMFN(d *domain) uint64 { return 0xFD000 + uint64(d.id)%0x1000 }

// Page-table entries (x86 4-level and PAE: 64-bit entries).
const (
	ptePresent  = 1 << 0
	pteRW       = 1 << 1
	pteAccessed = 1 << 5
	pteDirty    = 1 << 6
	ptePSE      = 1 << 7
	pteNX       = 1 << 63
	pteFrame    = 0x000ffffffffff000

	pteTable = ptePresent | pteRW | pteAccessed | pteDirty
	// The first and last L4 slots Xen reserves in a 64-bit PV guest's
	// top-level table (ROOT_PAGETABLE_{FIRST,LAST}_XEN_SLOT): pinning
	// an L4 fills them with Xen's own mappings.
	xenL4First = 256
	xenL4Last  = 271
	// xenSlotMFN is the first of the (Xen-owned) frames the Xen L4 slots
	// point at: never a guest frame.
	xenSlotMFN = 0x1000

	pfinfoLPINTAB = abi.XEN_DOMCTL_PFINFO_LPINTAB
	pfinfoShift   = abi.XEN_DOMCTL_PFINFO_LTAB_SHIFT
)

func pteMFN(e uint64) uint64 { return (e & pteFrame) >> pageShift }

// xenSlot reports whether entry i of a level-lvl table is one of Xen's L4
// slots, which the guest and its toolstack neither fill nor validate.
func xenSlot(lvl, i int) bool { return lvl == 4 && i >= xenL4First && i <= xenL4Last }

// tableLevels is the number of page-table levels of a PV domain: 4, or 3
// (PAE) for 32-bit guests.
func (d *domain) tableLevels() int {
	if d.width() == 4 {
		return 3
	}
	return 4
}

// entriesChecked is how many entries of a level-lvl table Xen validates:
// all 512, except a PAE top level (4).
func (d *domain) entriesChecked(lvl int) int {
	if lvl == 3 && d.tableLevels() == 3 {
		return 4
	}
	return PageSize / 8
}

// typeTable gives the table at frame mfn the page-table type of level lvl
// and, through get_page_type's cascade, every table it references the
// level below, validating each present entry as Xen's
// alloc_l{1,2,3,4}_table do: the frame must belong to the domain, and no
// superpage entries above L1. It returns the pfns to type, leaving the
// domain unchanged. Call with x.mu held.
func (d *domain) typeTable(mfn uint64, lvl int, out map[uint64]uint32) error {
	pfn, ok := d.framePFN(mfn)
	if !ok {
		return errEINVAL
	}
	want := uint32(lvl) << pfinfoShift
	if t, seen := out[pfn]; seen {
		if t != want {
			return errEINVAL
		}
		return nil
	}
	if t := d.ptype[pfn] &^ pfinfoLPINTAB; t != 0 {
		if t != want {
			return errEINVAL
		}
		return nil // already validated with this type
	}
	out[pfn] = want
	page := d.mem.page(pfn)
	for i := range d.entriesChecked(lvl) {
		if xenSlot(lvl, i) {
			continue // Xen writes them
		}
		e := binary.LittleEndian.Uint64(page[i*8:])
		if e&ptePresent == 0 {
			continue
		}
		if lvl == 1 {
			if _, ok := d.framePFN(pteMFN(e)); !ok && pteMFN(e) != sharedInfoFrame(d) {
				return errEINVAL
			}
			continue
		}
		if e&ptePSE != 0 {
			return errEINVAL
		}
		if err := d.typeTable(pteMFN(e), lvl-1, out); err != nil {
			return err
		}
	}
	return nil
}

// typeTables validates the table at frame mfn as level lvl (typeTable)
// and, if it passes, gives it and the tables below it their types. Call
// with x.mu held.
func (d *domain) typeTables(mfn uint64, lvl int) error {
	types := map[uint64]uint32{}
	if err := d.typeTable(mfn, lvl, types); err != nil {
		return err
	}
	for p, t := range types {
		d.ptype[p] = t
	}
	return nil
}

// pinTable is MMUEXT_PIN_L<lvl>_TABLE on frame mfn. Call with x.mu held.
func (d *domain) pinTable(mfn uint64, lvl int) error {
	if d.hvm || lvl < 1 || lvl > d.tableLevels() {
		return errEINVAL
	}
	pfn, ok := d.framePFN(mfn)
	if !ok || d.ptype[pfn]&pfinfoLPINTAB != 0 {
		return errEINVAL // not ours, or already pinned
	}
	if err := d.typeTables(mfn, lvl); err != nil {
		return err
	}
	d.ptype[pfn] |= pfinfoLPINTAB
	if lvl == 4 {
		page := d.mem.page(pfn)
		for i := xenL4First; i <= xenL4Last; i++ {
			binary.LittleEndian.PutUint64(page[i*8:], uint64(xenSlotMFN+i)<<pageShift|pteTable)
		}
	}
	return nil
}

// unpinTable is MMUEXT_UNPIN_TABLE: the table and the tables it
// references lose their types. Call with x.mu held.
func (d *domain) unpinTable(mfn uint64) error {
	pfn, ok := d.framePFN(mfn)
	if !ok || d.ptype[pfn]&pfinfoLPINTAB == 0 {
		return errEINVAL
	}
	d.untype(pfn, int(d.ptype[pfn]&^pfinfoLPINTAB>>pfinfoShift))
	return nil
}

func (d *domain) untype(pfn uint64, lvl int) {
	if d.ptype[pfn] == 0 {
		return
	}
	delete(d.ptype, pfn)
	if lvl <= 1 {
		return
	}
	page := d.mem.page(pfn)
	for i := range d.entriesChecked(lvl) {
		if xenSlot(lvl, i) {
			continue
		}
		e := binary.LittleEndian.Uint64(page[i*8:])
		if e&ptePresent == 0 {
			continue
		}
		if c, ok := d.framePFN(pteMFN(e)); ok {
			d.untype(c, lvl-1)
		}
	}
}

// Offsets into shared_info's arch part and the vCPU contexts, from the
// generated structs.
var (
	si64MaxPFN = int(unsafe.Offsetof(abi.SharedInfoX86_64{}.Arch) + unsafe.Offsetof(abi.ArchSharedInfoX86_64{}.MaxPFN))
	si64FLL    = int(unsafe.Offsetof(abi.SharedInfoX86_64{}.Arch) + unsafe.Offsetof(abi.ArchSharedInfoX86_64{}.PFNToMFNFrameListList))
	si64P2MCR3 = int(unsafe.Offsetof(abi.SharedInfoX86_64{}.Arch) + unsafe.Offsetof(abi.ArchSharedInfoX86_64{}.P2MCr3))
	si64P2MVA  = int(unsafe.Offsetof(abi.SharedInfoX86_64{}.Arch) + unsafe.Offsetof(abi.ArchSharedInfoX86_64{}.P2MVaddr))
	si64P2MGen = int(unsafe.Offsetof(abi.SharedInfoX86_64{}.Arch) + unsafe.Offsetof(abi.ArchSharedInfoX86_64{}.P2MGeneration))
	si32MaxPFN = int(unsafe.Offsetof(abi.SharedInfoX86_32{}.Arch) + unsafe.Offsetof(abi.ArchSharedInfoX86_32{}.MaxPFN))
	si32FLL    = int(unsafe.Offsetof(abi.SharedInfoX86_32{}.Arch) + unsafe.Offsetof(abi.ArchSharedInfoX86_32{}.PFNToMFNFrameListList))

	ctx64Cr3Off    = int(unsafe.Offsetof(abi.VCPUGuestContextX86_64{}.Ctrlreg)) + 3*8
	ctx64GDTOff    = int(unsafe.Offsetof(abi.VCPUGuestContextX86_64{}.GDTFrames))
	ctx64GDTEntOff = int(unsafe.Offsetof(abi.VCPUGuestContextX86_64{}.GDTEnts))
	ctx32Cr3Off    = int(unsafe.Offsetof(abi.VCPUGuestContextX86_32{}.Ctrlreg)) + 3*4
	ctx32GDTOff    = int(unsafe.Offsetof(abi.VCPUGuestContextX86_32{}.GDTFrames))
	ctx32GDTEntOff = int(unsafe.Offsetof(abi.VCPUGuestContextX86_32{}.GDTEnts))
)

// pvLayout is where a simulated PV kernel keeps its page tables, GDT and
// p2m: in the top frames of its memory, below which lie the data pages.
type pvLayout struct {
	pages  uint64 // memory size: pfns [0, pages)
	width  int    // 8 or 4 (p2m entry size)
	base   uint64 // first reserved frame (end of the data pages)
	gdt    uint64
	top    uint64 // the top-level table (cr3): L4, or the PAE L3
	l3     uint64 // first L3 (64-bit)
	nl3    uint64
	l2     uint64 // first L2
	nl2    uint64
	l1     uint64 // first L1
	nl1    uint64
	fll    uint64 // p2m frame-list list
	fl     uint64 // first p2m frame list
	nfl    uint64
	leaf   uint64 // first p2m leaf
	nleaf  uint64
	levels int
}

// pvDirectMapSlot is the L4 slot through which a 64-bit simulated kernel
// maps its memory (Linux's direct map starts at 0xffff888000000000).
const (
	pvDirectMapSlot = 273
	pvDirectMapVA   = 0xffff000000000000 | pvDirectMapSlot<<39
)

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

func newPVLayout(pages uint64, width int) pvLayout {
	l := pvLayout{pages: pages, width: width, levels: 4}
	epp := uint64(PageSize / width)
	l.nleaf = ceilDiv(pages, epp)
	l.nfl = ceilDiv(l.nleaf, epp)
	l.nl1 = ceilDiv(pages, 512)
	l.nl2 = ceilDiv(l.nl1, 512)
	if width == 4 {
		l.levels = 3
	} else {
		l.nl3 = ceilDiv(l.nl2, 512)
	}
	n := 1 + 1 + l.nl3 + l.nl2 + l.nl1 + 1 + l.nfl + l.nleaf
	next := pages - n
	l.base = next
	take := func(k uint64) uint64 { f := next; next += k; return f }
	l.gdt = take(1)
	l.top = take(1)
	l.l3 = take(l.nl3)
	l.l2 = take(l.nl2)
	l.l1 = take(l.nl1)
	l.fll = take(1)
	l.fl = take(l.nfl)
	l.leaf = take(l.nleaf)
	return l
}

// pvReserved is the number of frames newPVLayout reserves for pages.
func pvReserved(pages uint64, width int) uint64 {
	l := newPVLayout(max(pages, 64), width)
	return l.pages - l.base
}

// isTable reports whether pfn is one of the layout's page-table frames.
func (l pvLayout) isTable(pfn uint64) bool { return pfn >= l.top && pfn < l.fll }

// buildPV lays out a new PV guest like a PV kernel's early boot (and
// Xen's domain builder): page tables mapping all of memory (entries hold
// frame numbers: MFNs), the top level pinned; a GDT frame; the p2m as a
// 3-level tree (leaves, frame lists, frame-list list) announced in
// shared_info (max_pfn, pfn_to_mfn_frame_list_list; p2m_cr3 = 0, so
// toolstacks walk the tree); every vCPU's cr3 and GDT frames; and
// start_info's store and console frames as MFNs. Call with x.mu held and
// the domain paused.
func (d *domain) buildPV(l pvLayout) error {
	frame := d.pfnFrame
	put := func(pfn uint64, i int, v uint64) {
		binary.LittleEndian.PutUint64(d.mem.page(pfn)[i*8:], v)
	}
	// Page tables. Memory is mapped read-write and no-execute, except
	// the page-table frames, which a PV guest may map read-only only.
	for p := range l.pages {
		flags := uint64(pteNX | pteTable)
		if l.isTable(p) {
			flags &^= pteRW
		}
		put(l.l1+p/512, int(p%512), frame(p)<<pageShift|flags)
	}
	for i := range l.nl1 {
		put(l.l2+i/512, int(i%512), frame(l.l1+i)<<pageShift|pteTable)
	}
	if l.levels == 4 {
		for i := range l.nl2 {
			put(l.l3+i/512, int(i%512), frame(l.l2+i)<<pageShift|pteTable)
		}
		for i := range l.nl3 {
			put(l.top, pvDirectMapSlot+int(i), frame(l.l3+i)<<pageShift|pteTable)
		}
	} else {
		for i := range l.nl2 {
			put(l.top, int(i), frame(l.l2+i)<<pageShift|ptePresent)
		}
	}
	if err := d.pinTable(frame(l.top), l.levels); err != nil {
		return err
	}
	// p2m tree.
	epp := uint64(PageSize / l.width)
	for p := range l.nleaf * epp {
		v := invalidMFN
		if p < l.pages {
			v = frame(p)
		}
		l.putP2M(d.mem.page(l.leaf+p/epp), p%epp, v)
	}
	for i := range l.nleaf {
		l.putP2M(d.mem.page(l.fl+i/epp), i%epp, frame(l.leaf+i))
	}
	for i := range l.nfl {
		l.putP2M(d.mem.page(l.fll), i, frame(l.fl+i))
	}
	d.setP2MRoot(l)
	// vCPU state: cr3 and one GDT frame on every vCPU.
	for v := range d.vcpus {
		c := d.vcpuCtx(v)
		if l.width == 4 {
			binary.LittleEndian.PutUint32(c[ctx32Cr3Off:], pfnToCR3x32(frame(l.top)))
			binary.LittleEndian.PutUint32(c[ctx32GDTOff:], uint32(frame(l.gdt)))
			binary.LittleEndian.PutUint32(c[ctx32GDTEntOff:], 32)
		} else {
			binary.LittleEndian.PutUint64(c[ctx64Cr3Off:], frame(l.top)<<pageShift)
			binary.LittleEndian.PutUint64(c[ctx64GDTOff:], frame(l.gdt))
			binary.LittleEndian.PutUint64(c[ctx64GDTEntOff:], 32)
		}
	}
	return nil
}

// setP2MRoot publishes the p2m in shared_info (what a PV kernel does at
// boot). Call with x.mu held.
func (d *domain) setP2MRoot(l pvLayout) {
	l.writeP2MRoot(d.mem.page(d.mem.sharedInfoPage()), d.pfnFrame(l.fll), d.pfnFrame(l.top))
}

// writeP2MRoot writes shared_info's p2m fields: max_pfn and the
// frame-list list's MFN (fll) and, for 64-bit guests, the virtual linear
// p2m Linux publishes: p2m_cr3 (the top-level table, MFN top) and
// p2m_vaddr (the leaves through the direct map), generation 0. 32-bit
// guests leave p2m_cr3 0, so tools walk the tree.
func (l pvLayout) writeP2MRoot(si []byte, fll, top uint64) {
	if l.width == 4 {
		binary.LittleEndian.PutUint32(si[si32MaxPFN:], uint32(l.pages))
		binary.LittleEndian.PutUint32(si[si32FLL:], uint32(fll))
		return
	}
	binary.LittleEndian.PutUint64(si[si64MaxPFN:], l.pages)
	binary.LittleEndian.PutUint64(si[si64FLL:], fll)
	binary.LittleEndian.PutUint64(si[si64P2MCR3:], top<<pageShift)
	binary.LittleEndian.PutUint64(si[si64P2MVA:], pvDirectMapVA+l.leaf<<pageShift)
	binary.LittleEndian.PutUint64(si[si64P2MGen:], 0)
}

// pfnToCR3x32 is xen_pfn_to_cr3 for 32-bit (PAE) guests: the frame
// number rotated so that frames above 2^20 fit in 32 bits.
func pfnToCR3x32(pfn uint64) uint32 { return uint32(pfn)<<12 | uint32(pfn)>>20 }

// The simulated PV kernel's side: it reads its own p2m from its memory,
// as Linux's pfn_to_mfn does.

// pvLayout returns the kernel's PV layout; false for PVH guests and for
// images without one.
func (k *kernel) pvLayout() (pvLayout, bool) {
	if k.d.hvm {
		return pvLayout{}, false
	}
	n, ok := k.d.headerLE64(hPVPages)
	if !ok || n == 0 {
		return pvLayout{}, false
	}
	return newPVLayout(n, k.width()), true
}

// putP2M writes v as entry i of pg, a page of the p2m tree (a leaf, a
// frame list or the frame-list list): l.width bytes, so that invalidMFN
// becomes a 32-bit guest's ~0.
func (l pvLayout) putP2M(pg []byte, i, v uint64) {
	if l.width == 4 {
		binary.LittleEndian.PutUint32(pg[i*4:], uint32(v))
	} else {
		binary.LittleEndian.PutUint64(pg[i*8:], v)
	}
}

// p2mEntry reads p2m[pfn] from guest memory all; invalidMFN if absent.
func (l pvLayout) p2mEntry(all []byte, pfn uint64) uint64 {
	if pfn >= l.pages {
		return invalidMFN
	}
	epp := uint64(PageSize / l.width)
	off := (l.leaf+pfn/epp)*PageSize + pfn%epp*uint64(l.width)
	if l.width == 4 {
		v := binary.LittleEndian.Uint32(all[off:])
		if v == 0xffffffff {
			return invalidMFN
		}
		return uint64(v)
	}
	return binary.LittleEndian.Uint64(all[off:])
}

// rebuildP2MRoot rewrites the frame lists and shared_info's p2m fields
// from the p2m leaves, as Linux's xen_build_mfn_list_list does after a
// restore (the new domain's frames differ and its shared_info is new).
// sip is the shared_info page of all.
func (l pvLayout) rebuildP2MRoot(all []byte, sip uint64) {
	epp := uint64(PageSize / l.width)
	page := func(pfn uint64) []byte { return all[pfn*PageSize : (pfn+1)*PageSize] }
	for i := range l.nleaf {
		l.putP2M(page(l.fl+i/epp), i%epp, l.p2mEntry(all, l.leaf+i))
	}
	for i := range l.nfl {
		l.putP2M(page(l.fll), i, l.p2mEntry(all, l.fl+i))
	}
	l.writeP2MRoot(all[sip*PageSize:(sip+1)*PageSize], l.p2mEntry(all, l.fll), l.p2mEntry(all, l.top))
}

// canonicalise turns start_info's store and console frames into pfns
// (toMFN false, before suspending) or back into MFNs through the p2m
// (toMFN true, after a cancelled suspend). Called with d.exec held.
func (k *kernel) canonicalise(l pvLayout, toMFN bool) {
	d := k.d
	w := k.width()
	d.mem.with(func(all []byte) {
		b := all[startInfoPFN*PageSize : (startInfoPFN+1)*PageSize]
		si, err := magic.DecodeStartInfo(b, w)
		if err != nil {
			return
		}
		si.StoreMFN, si.ConsoleMFN = storePFN, consolePFN
		if toMFN {
			si.StoreMFN, si.ConsoleMFN = l.p2mEntry(all, storePFN), l.p2mEntry(all, consolePFN)
		}
		_ = si.EncodeTo(b, w)
	})
	d.markDirty(startInfoPFN)
}
