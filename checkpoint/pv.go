package checkpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// ErrBadFrame is returned when a suspended PV guest's p2m, page tables or
// vCPU state name a machine frame outside its pseudo-physical memory (the
// image would not be restorable), or its p2m cannot be read.
var ErrBadFrame = errors.New("PV guest names a frame it does not own")

// errRetryPage: a page table of a running guest names a frame outside its
// p2m (an update in flight); it is sent again once the guest is suspended.
var errRetryPage = errors.New("page table changed while copying")

const invalidFrame = ^uint64(0)

// Offsets in shared_info, by guest width, from the generated structs: the
// fields libxc's handle_shared_info touches on restore and the p2m
// location the save reads.
type sharedInfoLayout struct {
	vcpuInfo, vcpuInfoSize, pendingSel  int
	pending, mask, bitmapSize           int
	arch, archSize, frameListList, word int
	maxPFN, p2mCR3, p2mVA, p2mGen       int
}

var (
	si64 abi.SharedInfoX86_64
	si32 abi.SharedInfoX86_32

	sharedInfo64 = sharedInfoLayout{
		vcpuInfo: int(unsafe.Offsetof(si64.VCPUInfo)), vcpuInfoSize: int(unsafe.Sizeof(si64.VCPUInfo[0])),
		pendingSel: int(unsafe.Offsetof(si64.VCPUInfo[0].EvtchnPendingSel)),
		pending:    int(unsafe.Offsetof(si64.EvtchnPending)), mask: int(unsafe.Offsetof(si64.EvtchnMask)),
		bitmapSize: int(unsafe.Sizeof(si64.EvtchnMask)),
		arch:       int(unsafe.Offsetof(si64.Arch)), archSize: int(unsafe.Sizeof(si64.Arch)),
		frameListList: int(unsafe.Offsetof(si64.Arch) + unsafe.Offsetof(si64.Arch.PFNToMFNFrameListList)),
		word:          8,
		maxPFN:        int(unsafe.Offsetof(si64.Arch) + unsafe.Offsetof(si64.Arch.MaxPFN)),
		p2mCR3:        int(unsafe.Offsetof(si64.Arch) + unsafe.Offsetof(si64.Arch.P2MCr3)),
		p2mVA:         int(unsafe.Offsetof(si64.Arch) + unsafe.Offsetof(si64.Arch.P2MVaddr)),
		p2mGen:        int(unsafe.Offsetof(si64.Arch) + unsafe.Offsetof(si64.Arch.P2MGeneration)),
	}
	sharedInfo32 = sharedInfoLayout{
		vcpuInfo: int(unsafe.Offsetof(si32.VCPUInfo)), vcpuInfoSize: int(unsafe.Sizeof(si32.VCPUInfo[0])),
		pendingSel: int(unsafe.Offsetof(si32.VCPUInfo[0].EvtchnPendingSel)),
		pending:    int(unsafe.Offsetof(si32.EvtchnPending)), mask: int(unsafe.Offsetof(si32.EvtchnMask)),
		bitmapSize: int(unsafe.Sizeof(si32.EvtchnMask)),
		arch:       int(unsafe.Offsetof(si32.Arch)), archSize: int(unsafe.Sizeof(si32.Arch)),
		frameListList: int(unsafe.Offsetof(si32.Arch) + unsafe.Offsetof(si32.Arch.PFNToMFNFrameListList)),
		word:          4,
		maxPFN:        int(unsafe.Offsetof(si32.Arch) + unsafe.Offsetof(si32.Arch.MaxPFN)),
		p2mCR3:        int(unsafe.Offsetof(si32.Arch) + unsafe.Offsetof(si32.Arch.P2MCr3)),
		p2mVA:         int(unsafe.Offsetof(si32.Arch) + unsafe.Offsetof(si32.Arch.P2MVaddr)),
		p2mGen:        int(unsafe.Offsetof(si32.Arch) + unsafe.Offsetof(si32.Arch.P2MGeneration)),
	}
)

// sharedInfoFor returns the shared_info layout of a guest of width 8 or 4.
func sharedInfoFor(width int) *sharedInfoLayout {
	if width == 4 {
		return &sharedInfo32
	}
	return &sharedInfo64
}

// Page-table entry bits (64-bit and PAE entries alike).
const (
	ptePresent = 1 << 0
	ptePSE     = 1 << 7
	pteFrame   = 0x000ffffffffff000
	// The L4 slots libxc clears in a 64-bit guest's top-level table:
	// HYPERVISOR_VIRT_START_X86_64 to _END (inclusive), Xen's mappings,
	// which the restoring Xen rebuilds.
	xenL4First = 256
	xenL4Last  = 272
	// A 32-bit PAE guest's L2 that maps the compat M2P has Xen's entries
	// from HYPERVISOR_VIRT_START_X86_32 to _END (>> L2 shift, & 511).
	xenPAEL2First = 0xF5800000 >> 21 & 511
	xenPAEL2Last  = 0xFC000000 >> 21 & 511
	// FIRST_RESERVED_GDT_ENTRY: a PV guest's GDT has at most 14 frames.
	maxGDTEntries = 14 * 512
)

// pvMemory is a PV guest's pseudo-physical memory as the save sees it:
// its p2m (pfn -> machine frame), read from guest memory the way libxc
// does, and the inverse: inv, or m2p where inv cannot hold it.
type pvMemory struct {
	width  int // 8 or 4
	levels int // 4, or 3 (PAE)
	p2m    []uint64
	inv    *frameIndex
	m2p    map[uint64]uint64
	// leaves are the pfns of the p2m's frames (X86_PV_P2M_FRAMES).
	leaves []uint64
	// linear: the p2m was read as a virtual linear list, whose
	// generation count (p2m_generation) the guest bumps when it changes.
	linear     bool
	generation uint64
}

// generationOf reads p2m_generation from a shared_info page.
func (p *pvMemory) generationOf(si []byte) uint64 {
	return field(si, sharedInfoFor(p.width).p2mGen, p.width)
}

// checkGeneration fails if a guest whose linear p2m was read changed it
// since (libxc aborts such a live migration: its p2m frames would be
// stale). si is the shared_info page read now; nil skips the check.
func (p *pvMemory) checkGeneration(si []byte) error {
	if !p.linear || len(si) < pageSize {
		return nil
	}
	if g := p.generationOf(si); g != p.generation {
		return fmt.Errorf("%w: the guest changed its p2m while it was copied (generation %d, now %d)", ErrBadFrame, p.generation, g)
	}
	return nil
}

func (p *pvMemory) maxPFN() uint64 { return uint64(len(p.p2m)) - 1 }

// pfn translates a machine frame of the guest; false if it is not one.
func (p *pvMemory) pfn(mfn uint64) (uint64, bool) {
	if p.inv != nil {
		return p.inv.pfn(mfn)
	}
	pfn, ok := p.m2p[mfn]
	return pfn, ok
}

// frameIndex is the inverse of a p2m (machine frame -> pfn) in blocks of
// 1024 MFNs holding pfn+1 (0: not the guest's). Machine frames come from
// the host's compact frame space, so a guest's MFNs fill few blocks: a
// lookup is two slice indexes (a map lookup per block where the blocks are
// too spread out for a slice), and the index takes about 4 bytes per page
// where a Go map took about 45. libxc reads Xen's M2P table instead.
type frameIndex struct {
	first  uint64     // block number of dense[0]
	dense  [][]uint32 // by block number - first, nil: no frame of the guest
	sparse map[uint64][]uint32
}

const (
	frameBlockShift = 10
	frameBlockSize  = 1 << frameBlockShift
)

// newFrameIndex inverts p2m (invalidFrame entries skipped; of two pfns
// with one MFN the higher wins); nil if a pfn does not fit an entry.
func newFrameIndex(p2m []uint64) *frameIndex {
	if uint64(len(p2m)) >= 1<<32-1 {
		return nil
	}
	lo, hi, n := ^uint64(0), uint64(0), 0
	for _, m := range p2m {
		if m != invalidFrame {
			lo, hi, n = min(lo, m>>frameBlockShift), max(hi, m>>frameBlockShift), n+1
		}
	}
	x := &frameIndex{}
	if n == 0 {
		return x
	}
	// A directory slice while it costs at most a few pointers per block
	// the guest needs, else a map of blocks.
	if span := hi - lo + 1; span <= 4*uint64(n/frameBlockSize+1)+64 {
		x.first, x.dense = lo, make([][]uint32, span)
	} else {
		x.sparse = map[uint64][]uint32{}
	}
	lastB, last := ^uint64(0), []uint32(nil)
	for pfn, m := range p2m {
		if m == invalidFrame {
			continue
		}
		if b := m >> frameBlockShift; b != lastB {
			lastB, last = b, x.block(b)
			if last == nil {
				last = make([]uint32, frameBlockSize)
				if x.sparse != nil {
					x.sparse[b] = last
				} else {
					x.dense[b-x.first] = last
				}
			}
		}
		last[m&(frameBlockSize-1)] = uint32(pfn) + 1
	}
	return x
}

func (x *frameIndex) block(b uint64) []uint32 {
	if x.sparse != nil {
		return x.sparse[b]
	}
	if b-x.first < uint64(len(x.dense)) {
		return x.dense[b-x.first]
	}
	return nil
}

func (x *frameIndex) pfn(mfn uint64) (uint64, bool) {
	blk := x.block(mfn >> frameBlockShift)
	if blk == nil {
		return 0, false
	}
	v := blk[mfn&(frameBlockSize-1)]
	return uint64(v) - 1, v != 0
}

// field reads a width-sized little-endian field.
func field(b []byte, off, width int) uint64 {
	if width == 4 {
		return uint64(binary.LittleEndian.Uint32(b[off:]))
	}
	return binary.LittleEndian.Uint64(b[off:])
}

// validMFN: Linux marks p2m entries of holes ~0 and of identity or
// foreign frames with the top two bits of the word.
func validMFN(v uint64, width int) bool {
	if width == 4 {
		return v&0xC0000000 == 0
	}
	return v&(3<<62) == 0
}

// readPVMemory maps the guest's shared_info and its p2m: the virtual
// linear list through the guest's page tables when shared_info names one
// (p2m_cr3 != 0, what Linux publishes), else the 3-level frame-list tree.
func readPVMemory(ctx context.Context, hv Hypervisor, dom domctl.DomID, sharedInfo uint64, width int) (*pvMemory, error) {
	si, err := readFrames(ctx, hv, dom, []uint64{sharedInfo})
	if err != nil {
		return nil, fmt.Errorf("%w: reading shared info frame %#x: %w", ErrBadFrame, sharedInfo, err)
	}
	p := &pvMemory{width: width, levels: 4}
	if width == 4 {
		p.levels = 3
	}
	l := sharedInfoFor(width)
	maxPFN := field(si, l.maxPFN, width)
	if maxPFN == 0 || maxPFN > 1<<36 {
		return nil, fmt.Errorf("%w: shared_info max_pfn %#x", ErrBadFrame, maxPFN)
	}
	fpp := uint64(pageSize / width)
	nLeaves := (maxPFN-1)/fpp + 1
	var leafMFNs []uint64
	if cr3 := field(si, l.p2mCR3, width); cr3 != 0 {
		p.linear, p.generation = true, p.generationOf(si)
		leafMFNs, err = p.walkLinear(ctx, hv, dom, cr3ToPFN(cr3, width), field(si, l.p2mVA, width), nLeaves)
	} else {
		leafMFNs, err = p.walkTree(ctx, hv, dom, field(si, l.frameListList, width), nLeaves)
	}
	if err != nil {
		return nil, err
	}
	leaves, err := readFrames(ctx, hv, dom, leafMFNs)
	if err != nil {
		return nil, fmt.Errorf("%w: mapping p2m leaves: %w", ErrBadFrame, err)
	}
	p.p2m = make([]uint64, maxPFN)
	for pfn := range p.p2m {
		v := field(leaves, pfn*width, width)
		if !validMFN(v, width) {
			v = invalidFrame
		}
		p.p2m[pfn] = v
	}
	if p.inv = newFrameIndex(p.p2m); p.inv == nil {
		p.m2p = make(map[uint64]uint64, maxPFN)
		for pfn, v := range p.p2m {
			if v != invalidFrame {
				p.m2p[v] = uint64(pfn)
			}
		}
	}
	for i, m := range leafMFNs {
		pfn, ok := p.pfn(m)
		if !ok {
			return nil, fmt.Errorf("%w: p2m frame %d is mfn %#x, not in the p2m", ErrBadFrame, i, m)
		}
		p.leaves = append(p.leaves, pfn)
	}
	return p, nil
}

// readFrames copies frames (machine frame numbers) out of the guest.
func readFrames(ctx context.Context, hv Hypervisor, dom domctl.DomID, mfns []uint64) ([]byte, error) {
	if len(mfns) == 0 {
		return nil, nil
	}
	mp, err := mapFrames(ctx, hv, dom, domctl.ProtRead, mfns)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), mp.Bytes()[:len(mfns)*pageSize]...)
	return out, mp.Close()
}

// walkTree reads the frame-list list and frame lists: the MFNs of the
// first n p2m leaves.
func (p *pvMemory) walkTree(ctx context.Context, hv Hypervisor, dom domctl.DomID, fll, n uint64) ([]uint64, error) {
	fpp := uint64(pageSize / p.width)
	if fll == 0 || !validMFN(fll, p.width) {
		return nil, fmt.Errorf("%w: p2m frame-list list mfn %#x", ErrBadFrame, fll)
	}
	nfl := (n-1)/fpp + 1
	if nfl > fpp {
		return nil, fmt.Errorf("%w: p2m of %d frames too large for its tree", ErrBadFrame, n)
	}
	top, err := readFrames(ctx, hv, dom, []uint64{fll})
	if err != nil {
		return nil, fmt.Errorf("%w: mapping p2m frame-list list %#x: %w", ErrBadFrame, fll, err)
	}
	fls := make([]uint64, nfl)
	for i := range fls {
		if fls[i] = field(top, i*p.width, p.width); fls[i] == 0 || !validMFN(fls[i], p.width) {
			return nil, fmt.Errorf("%w: p2m frame list %d is mfn %#x", ErrBadFrame, i, fls[i])
		}
	}
	mid, err := readFrames(ctx, hv, dom, fls)
	if err != nil {
		return nil, fmt.Errorf("%w: mapping p2m frame lists: %w", ErrBadFrame, err)
	}
	leaves := make([]uint64, n)
	for i := range leaves {
		if leaves[i] = field(mid, i*p.width, p.width); leaves[i] == 0 || !validMFN(leaves[i], p.width) {
			return nil, fmt.Errorf("%w: p2m leaf %d is mfn %#x", ErrBadFrame, i, leaves[i])
		}
	}
	return leaves, nil
}

// walkLinear walks the guest's page tables from the p2m's own cr3 for
// the virtual range [va, va + n pages): the MFNs of the n p2m leaves.
func (p *pvMemory) walkLinear(ctx context.Context, hv Hypervisor, dom domctl.DomID, root, va, n uint64) ([]uint64, error) {
	mask := uint64(1)<<48 - 1
	if p.width == 4 {
		mask = 1<<32 - 1
	}
	end := va + n*pageSize - 1
	if end < va || end&^mask != 0 && end&^mask != ^mask {
		return nil, fmt.Errorf("%w: p2m virtual range %#x+%d pages", ErrBadFrame, va, n)
	}
	tables := []uint64{root}
	var off uint64 // virtual address the first table's first entry maps
	for level := p.levels; level > 0; level-- {
		data, err := readFrames(ctx, hv, dom, tables)
		if err != nil {
			return nil, fmt.Errorf("%w: mapping level-%d page tables of the p2m list: %w", ErrBadFrame, level, err)
		}
		shift := uint(9*level + 3)
		first := ((va - off) & mask) >> shift
		last := ((end - off) & mask) >> shift
		if (last+1)*8 > uint64(len(data)) {
			return nil, fmt.Errorf("%w: p2m list walk out of range at level %d", ErrBadFrame, level)
		}
		next := make([]uint64, 0, last-first+1)
		for i := first; i <= last; i++ {
			e := binary.LittleEndian.Uint64(data[i*8:])
			if e&ptePresent == 0 || (level > 1 && e&ptePSE != 0) {
				return nil, fmt.Errorf("%w: p2m list not mapped by 4 KiB pages at level %d", ErrBadFrame, level)
			}
			next = append(next, (e&pteFrame)>>12)
		}
		tables = next
		off = va & ((mask >> shift) << shift)
	}
	return tables, nil
}

// normalise rewrites the page table src (PFINFO level lvl) into dst:
// Xen's slots cleared and every present entry's MFN replaced by its PFN,
// as libxc's normalise_pagetable.
func (p *pvMemory) normalise(dst, src []byte, lvl uint8) error {
	xenFirst, xenLast := -1, -1
	switch {
	case p.levels == 4 && lvl == 4:
		xenFirst, xenLast = xenL4First, xenL4Last
	case p.levels == 3 && lvl == 4:
		return fmt.Errorf("%w: L4 table in a 32-bit guest", ErrBadFrame)
	case p.levels == 3 && lvl == 3:
		xenFirst, xenLast = 4, 511
	case p.levels == 3 && lvl == 2:
		// libxc compares with the compat M2P's first frame; a present
		// entry there that is not the guest's is Xen's.
		e := binary.LittleEndian.Uint64(src[xenPAEL2First*8:])
		if _, own := p.pfn((e & pteFrame) >> 12); e&ptePresent != 0 && !own {
			xenFirst, xenLast = xenPAEL2First, xenPAEL2Last
		}
	}
	for i := range pageSize / 8 {
		e := binary.LittleEndian.Uint64(src[i*8:])
		if i >= xenFirst && i <= xenLast {
			e = 0
		}
		if e&ptePresent != 0 {
			if lvl > 1 && e&ptePSE != 0 {
				return fmt.Errorf("%w: superpage in L%d[%d] (%#x)", ErrUnsupportedGuest, lvl, i, e)
			}
			pfn, ok := p.pfn((e & pteFrame) >> 12)
			if !ok {
				return fmt.Errorf("%w: L%d[%d] = %#x", errRetryPage, lvl, i, e)
			}
			e = e&^pteFrame | pfn<<12
		}
		binary.LittleEndian.PutUint64(dst[i*8:], e)
	}
	return nil
}

// normaliseVCPU turns the machine frames of a suspended PV vCPU's context
// into pfns, as libxc's write_one_vcpu_basic: vCPU0's edx (the start_info
// frame of the suspend hypercall), the GDT frames, cr3 and (64-bit) cr1.
// Frames of a vCPU never started (zero) are left alone.
func (p *pvMemory) normaliseVCPU(id uint32, raw []byte) error {
	vc, err := domctl.NewVCPUContext(p.width, raw)
	if err != nil {
		return fmt.Errorf("%w: vCPU %d: %w", ErrBadFrame, id, err)
	}
	conv := func(what string, mfn uint64) (uint64, error) {
		pfn, ok := p.pfn(mfn)
		if !ok {
			return 0, fmt.Errorf("%w: vCPU %d's %s is mfn %#x", ErrBadFrame, id, what, mfn)
		}
		return pfn, nil
	}
	if id == 0 {
		pfn, err := conv("suspend record (start_info in edx)", vc.RDX())
		if err != nil {
			return err
		}
		vc.SetRDX(pfn)
	}
	n := vc.GDTEnts()
	if n > maxGDTEntries {
		return fmt.Errorf("%w: vCPU %d has %d GDT entries", ErrBadFrame, id, n)
	}
	for i := range int((n + 511) / 512) {
		pfn, err := conv(fmt.Sprintf("GDT frame %d", i), vc.GDTFrame(i))
		if err != nil {
			return err
		}
		vc.SetGDTFrame(i, pfn)
	}
	if cr3 := vc.CtrlReg(3); cr3 != 0 {
		pfn, err := conv("cr3", cr3ToPFN(cr3, p.width))
		if err != nil {
			return err
		}
		vc.SetCtrlReg(3, pfnToCR3(pfn, p.width))
	}
	if cr1 := vc.CtrlReg(1); p.levels == 4 && cr1 != 0 {
		pfn, err := conv("cr1", cr1>>12)
		if err != nil {
			return err
		}
		vc.SetCtrlReg(1, 1|pfn<<12)
	}
	return nil
}
