package checkpoint

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/xenckpt/xenckpt/checkpoint/stream"
	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
)

// A PV guest's frames are machine frames: the image names them by pfn
// (the sender normalised page tables, the p2m frame list, cr3, the GDT
// frames and start_info to pfns), and the restore gives each pfn a new
// machine frame and translates everything back, as libxc's
// xg_sr_restore_x86_pv.c does. On a hypervisor whose PV frames equal their
// pfns (older xensim models) every translation is the identity.

// PVImageError is an inconsistency in a PV image found while restoring it
// (a frame out of range, of the wrong type, or never populated). Err is
// one of the stream sentinels (stream.ErrBadPFN, stream.ErrBadPageType,
// stream.ErrBadValue, stream.ErrMissing).
type PVImageError struct {
	What string // what referred to the frame: "cr3", "start_info", "L2[17]"...
	PFN  uint64
	Err  error
}

func (e *PVImageError) Error() string {
	return fmt.Sprintf("PV image: %s (pfn %#x): %v", e.What, e.PFN, e.Err)
}

func (e *PVImageError) Unwrap() error { return e.Err }

func pvErr(what string, pfn uint64, err error, format string, args ...any) error {
	if format != "" {
		err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, args...))
	}
	return &PVImageError{What: what, PFN: pfn, Err: err}
}

// pvMaxGrowPFN bounds the p2m of an image without X86_PV_P2M_FRAMES
// (64 GiB of guest); with the record its end pfn is the bound.
const pvMaxGrowPFN = 1<<24 - 1

// pendingFrame marks a pfn queued for population within one batch.
const pendingFrame = invalidFrame - 1

// pvRestore is the PV side of a restore: the new pfn -> mfn map and what
// the image said about every pfn.
type pvRestore struct {
	seenInfo  bool
	levels    int
	maxPFN    uint64 // highest pfn of the guest
	boundPFN  uint64 // highest pfn accepted (the p2m frames' end)
	p2m       []uint64
	types     []stream.PageType
	p2mFrames []uint64 // pfns of the guest's own p2m frames, by index
	tables    bool     // the image holds page tables
	// cpuid and msrs are the X86_CPUID_POLICY and X86_MSR_POLICY bodies.
	cpuid, msrs []byte

	storeMFN, consoleMFN   uint64
	storePort, consolePort uint32
}

func newPVRestore() *pvRestore {
	return &pvRestore{levels: 4, boundPFN: pvMaxGrowPFN}
}

// setVCPUExtra applies a vCPU's extended state (its X86_PV_VCPU_EXTENDED,
// _XSAVE and _MSRS blobs), in libxc's order, after its basic context.
func (rs *restorer) setVCPUExtra(ctx context.Context, v vcpuState) error {
	hv, dom := rs.c.hv, rs.dom
	if v.Ext != nil {
		if err := hv.SetExtVCPUContext(ctx, dom, v.Ext); err != nil {
			return fmt.Errorf("setting vCPU %d extended context: %w", v.ID, err)
		}
	}
	if v.XSave != nil {
		if err := hv.SetVCPUExtState(ctx, dom, v.ID, v.XSave); err != nil {
			return fmt.Errorf("setting vCPU %d xsave state: %w", v.ID, err)
		}
	}
	if v.MSRs != nil {
		if err := hv.SetVCPUMSRs(ctx, dom, v.ID, v.MSRs); err != nil {
			return fmt.Errorf("setting vCPU %d MSRs: %w", v.ID, err)
		}
	}
	return nil
}

// pvCPUPolicy gives the new domain the image's CPUID and MSR policy, as
// libxc's x86_static_data_complete does; without the records the domain
// keeps Xen's default policy.
func (rs *restorer) pvCPUPolicy(ctx context.Context) error {
	pv := rs.pv
	if len(pv.cpuid) == 0 && len(pv.msrs) == 0 {
		return nil
	}
	if err := rs.c.hv.SetCPUPolicy(ctx, rs.dom, pv.cpuid, pv.msrs); err != nil {
		return fmt.Errorf("setting the image's CPU policy: %w", err)
	}
	return nil
}

// info applies X86_PV_INFO (the stream reader checked the width/levels
// pair).
func (pv *pvRestore) info(pi stream.X86PVInfo) {
	pv.seenInfo = true
	pv.levels = int(pi.PTLevels)
}

// grow makes pfn known.
func (pv *pvRestore) grow(pfn uint64) error {
	if pfn > pv.boundPFN {
		return pvErr("PAGE_DATA", pfn, stream.ErrBadPFN, "above the guest's last pfn %#x", pv.boundPFN)
	}
	if pfn < uint64(len(pv.p2m)) {
		return nil
	}
	n := pfn + 1
	for i := uint64(len(pv.p2m)); i < n; i++ {
		pv.p2m = append(pv.p2m, invalidFrame)
		pv.types = append(pv.types, stream.PageXTab)
	}
	pv.maxPFN = max(pv.maxPFN, pfn)
	return nil
}

// frames applies X86_PV_P2M_FRAMES: the guest's last pfn and where its
// own p2m lives.
func (pv *pvRestore) frames(p stream.P2MFrames, width int) error {
	fpp := uint64(pageSize / width)
	start := uint64(p.StartPFN) / fpp
	need := start + uint64(len(p.Frames))
	for uint64(len(pv.p2mFrames)) < need {
		pv.p2mFrames = append(pv.p2mFrames, invalidFrame)
	}
	copy(pv.p2mFrames[start:], p.Frames)
	pv.boundPFN = uint64(p.EndPFN)
	if n := uint64(len(pv.p2m)); n > 0 && n-1 > pv.boundPFN {
		pv.boundPFN = n - 1
	}
	return pv.grow(uint64(p.EndPFN))
}

// mfn returns the new machine frame of pfn, which must have been
// populated and (if want is not nil) be of a type want accepts.
func (pv *pvRestore) mfn(what string, pfn uint64, want func(stream.PageType) bool) (uint64, error) {
	if pfn > pv.maxPFN || pfn >= uint64(len(pv.p2m)) {
		return 0, pvErr(what, pfn, stream.ErrBadPFN, "above the guest's last pfn %#x", pv.maxPFN)
	}
	if want != nil && !want(pv.types[pfn]) {
		return 0, pvErr(what, pfn, stream.ErrBadPageType, "type %#x", uint8(pv.types[pfn]))
	}
	m := pv.p2m[pfn]
	if m == invalidFrame {
		return 0, pvErr(what, pfn, stream.ErrMissing, "frame never populated")
	}
	return m, nil
}

func isNoTab(t stream.PageType) bool { return t == stream.PageNoTab }

// populate gives each pfn of pfns that has none a machine frame.
func (rs *restorer) pvPopulate(ctx context.Context, pfns []uint64) error {
	pv := rs.pv
	var fresh []uint64
	for _, p := range pfns {
		if pv.p2m[p] == invalidFrame {
			pv.p2m[p] = pendingFrame // once, however often p is listed
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	mfns, err := rs.c.hv.PopulatePhysmapFrames(ctx, rs.dom, fresh)
	if err != nil {
		for _, p := range fresh {
			pv.p2m[p] = invalidFrame
		}
		return fmt.Errorf("populating %d frames: %w", len(fresh), err)
	}
	for i, p := range fresh {
		pv.p2m[p] = mfns[i]
	}
	return nil
}

// loadPVPages is loadPages for a PV guest: populate, localise page tables
// (pfn -> new mfn in every present entry), write the pages by mfn.
func (rs *restorer) loadPVPages(ctx context.Context, rec stream.Record) error {
	pv := rs.pv
	var need, data []uint64
	var kinds []stream.PageType
	for _, e := range rec.PFNs {
		t, pfn := stream.EntryType(e), stream.EntryPFN(e)
		if err := pv.grow(pfn); err != nil {
			return err
		}
		pv.types[pfn] = t
		if t == stream.PageXTab || t == stream.PageBroken {
			continue
		}
		need = append(need, pfn)
		if t.HasData() {
			data = append(data, pfn)
			kinds = append(kinds, t)
		}
	}
	if err := rs.pvPopulate(ctx, need); err != nil {
		return err
	}
	rs.pages += uint64(len(rec.PFNs))
	if len(data) == 0 {
		return nil
	}
	n := len(data) * pageSize
	mfns := make([]uint64, len(data))
	for i, pfn := range data {
		mfns[i] = pv.p2m[pfn]
	}
	// Straight from the stream into the guest; page tables are localised
	// in place (no frame is typed before the pinning at the end).
	mp, err := mapFrames(ctx, rs.c.hv, rs.dom, domctl.ProtReadWrite, mfns)
	if err != nil {
		return fmt.Errorf("mapping %d frames for writing: %w", len(mfns), err)
	}
	mem := mp.Bytes()[:n]
	err = rs.r.ReadPagesContiguous(mem)
	if err != nil {
		err = fmt.Errorf("reading page data: %w", err)
	}
	for i := 0; err == nil && i < len(data); i++ {
		if lvl := int(kinds[i] &^ stream.PagePinned); lvl >= 1 && lvl <= 4 {
			pv.tables = true
			err = rs.localise(ctx, mem[i*pageSize:(i+1)*pageSize], lvl, data[i])
		}
	}
	if cerr := mp.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("unmapping restored frames: %w", cerr)
	}
	if err != nil {
		return err
	}
	rs.bytes += uint64(n)
	if rs.o.Progress != nil {
		rs.o.Progress(Progress{Domain: rs.dom, Phase: PhaseRestore, Pages: rs.pages, Bytes: rs.bytes})
	}
	return nil
}

// localise rewrites the page-table page of pfn (level 1 to 4) from pfns to
// the new machine frames, populating frames it refers to that no
// PAGE_DATA has brought yet (libxc's x86_pv_localise_page).
func (rs *restorer) localise(ctx context.Context, page []byte, level int, pfn uint64) error {
	pv := rs.pv
	xenSlots := level == 4 && rs.width == 8
	var refs []uint64
	for i := range pageSize / 8 {
		pte := binary.LittleEndian.Uint64(page[i*8:])
		if pte&ptePresent == 0 {
			continue
		}
		if xenSlots && i >= xenL4First && i <= xenL4Last {
			binary.LittleEndian.PutUint64(page[i*8:], 0)
			continue
		}
		if (level == 2 || level == 3) && pte&ptePSE != 0 {
			return pvErr(fmt.Sprintf("L%d[%d]", level, i), pfn, stream.ErrBadValue, "superpage entry %#x", pte)
		}
		ref := (pte & pteFrame) >> 12
		if err := pv.grow(ref); err != nil {
			return pvErr(fmt.Sprintf("L%d[%d]", level, i), pfn, stream.ErrBadPFN, "entry %#x", pte)
		}
		refs = append(refs, ref)
	}
	if err := rs.pvPopulate(ctx, refs); err != nil {
		return err
	}
	for i := range pageSize / 8 {
		pte := binary.LittleEndian.Uint64(page[i*8:])
		if pte&ptePresent == 0 {
			continue
		}
		m := pv.p2m[(pte&pteFrame)>>12]
		binary.LittleEndian.PutUint64(page[i*8:], pte&^pteFrame|m<<12)
	}
	return nil
}

// loadPVState is libxc's x86_pv_stream_complete plus the shared_info and
// TSC records: fix shared_info, give the guest its store and console
// event channels, set each vCPU's context with its frames translated
// (vCPU 0's start_info fixed up first), pin the page tables, rewrite the
// guest's p2m and seed its grant table.
func (rs *restorer) loadPVState(ctx context.Context) error {
	hv, dom, pv := rs.c.hv, rs.dom, rs.pv
	if !pv.seenInfo {
		return fmt.Errorf("%w: PV image has no X86_PV_INFO", stream.ErrMissing)
	}
	if err := hv.SetTSCInfo(ctx, dom, rs.st.TSC); err != nil {
		return fmt.Errorf("setting TSC info: %w", err)
	}
	info, err := hv.DomainInfo(ctx, dom)
	if err != nil {
		return fmt.Errorf("getting domain info: %w", err)
	}
	if len(rs.st.SharedInfo) > 0 {
		if err := rs.pvSharedInfo(ctx, info.SharedInfoFrame); err != nil {
			return err
		}
	}
	if pv.storePort, err = hv.AllocUnboundEvtchn(ctx, dom, 0); err != nil {
		return fmt.Errorf("allocating store event channel: %w", err)
	}
	if pv.consolePort, err = hv.AllocUnboundEvtchn(ctx, dom, 0); err != nil {
		return fmt.Errorf("allocating console event channel: %w", err)
	}
	// As libxc, a vCPU with extended records but no basic context is
	// skipped.
	vcpus := slices.DeleteFunc(slices.Clone(rs.st.VCPUs), func(v vcpuState) bool { return v.Ctx == nil })
	slices.SortFunc(vcpus, func(a, b vcpuState) int { return int(a.ID) - int(b.ID) })
	if len(vcpus) == 0 || vcpus[0].ID != 0 {
		return fmt.Errorf("%w: image has no vCPU 0 state", stream.ErrMissing)
	}
	for _, v := range vcpus {
		vc, err := domctl.NewVCPUContext(rs.width, slices.Clone(v.Ctx))
		if err != nil {
			return fmt.Errorf("vCPU %d context: %w", v.ID, err)
		}
		if v.ID == 0 {
			if err := rs.pvStartInfo(ctx, vc, info.SharedInfoFrame); err != nil {
				return err
			}
		}
		if err := rs.pvVCPUFrames(v.ID, vc); err != nil {
			return err
		}
		if err := hv.SetVCPUContext(ctx, dom, v.ID, vc); err != nil {
			return fmt.Errorf("setting vCPU %d context: %w", v.ID, err)
		}
		if err := rs.setVCPUExtra(ctx, v); err != nil {
			return err
		}
	}
	if err := rs.pvPin(ctx); err != nil {
		return err
	}
	if err := rs.pvGuestP2M(ctx); err != nil {
		return err
	}
	if err := rs.pvSeedGrants(ctx); err != nil {
		return err
	}
	rs.console = consoleRing{frame: pv.consoleMFN, port: pv.consolePort}
	return nil
}

// fixSharedInfo copies into dst (the new domain's shared_info page) what
// libxc copies from the image's page old: every vcpu_info and the arch
// part, with the p2m frame-list-list cleared (the guest rebuilds it), no
// event pending and every event masked.
func fixSharedInfo(dst, old []byte, width int) {
	l := sharedInfoFor(width)
	n := len(si64.VCPUInfo)
	copy(dst[l.vcpuInfo:l.vcpuInfo+n*l.vcpuInfoSize], old[l.vcpuInfo:])
	copy(dst[l.arch:l.arch+l.archSize], old[l.arch:])
	clear(dst[l.frameListList : l.frameListList+l.word])
	clear(dst[l.pending : l.pending+l.bitmapSize])
	for i := range n {
		off := l.vcpuInfo + i*l.vcpuInfoSize + l.pendingSel
		clear(dst[off : off+l.word])
	}
	for i := l.mask; i < l.mask+l.bitmapSize; i++ {
		dst[i] = 0xff
	}
}

func (rs *restorer) pvSharedInfo(ctx context.Context, frame uint64) error {
	if len(rs.st.SharedInfo) != pageSize {
		return fmt.Errorf("%w: SHARED_INFO is %d bytes, want %d", stream.ErrBadLength, len(rs.st.SharedInfo), pageSize)
	}
	mp, err := mapFrames(ctx, rs.c.hv, rs.dom, domctl.ProtReadWrite, []uint64{frame})
	if err != nil {
		return fmt.Errorf("mapping shared info: %w", err)
	}
	fixSharedInfo(mp.Bytes(), rs.st.SharedInfo, rs.width)
	if err := mp.Close(); err != nil {
		return fmt.Errorf("unmapping shared info: %w", err)
	}
	return nil
}

// pvStartInfo is libxc's process_start_info: vCPU 0's edx names the
// start_info pfn; it becomes the frame's mfn, and start_info's store and
// console frames, their event channels, nr_pages, shared_info and flags
// are rewritten for the new domain.
func (rs *restorer) pvStartInfo(ctx context.Context, vc *domctl.VCPUContext, sharedFrame uint64) error {
	pv := rs.pv
	mfn, err := pv.mfn("start_info", vc.RDX(), isNoTab)
	if err != nil {
		return err
	}
	vc.SetRDX(mfn)
	mp, err := mapFrames(ctx, rs.c.hv, rs.dom, domctl.ProtReadWrite, []uint64{mfn})
	if err != nil {
		return fmt.Errorf("mapping start_info frame %#x: %w", mfn, err)
	}
	defer mp.Close()
	si, err := magic.DecodeStartInfo(mp.Bytes(), rs.width)
	if err != nil {
		return fmt.Errorf("decoding start_info: %w", err)
	}
	if pv.storeMFN, err = pv.mfn("start_info.store_mfn", si.StoreMFN, nil); err != nil {
		return err
	}
	if pv.consoleMFN, err = pv.mfn("start_info.console.domU.mfn", si.ConsoleMFN, nil); err != nil {
		return err
	}
	si.StoreMFN, si.StoreEvtchn = pv.storeMFN, pv.storePort
	si.ConsoleMFN, si.ConsoleEvtchn = pv.consoleMFN, pv.consolePort
	si.NrPages = pv.maxPFN + 1
	si.SharedInfo = sharedFrame << 12
	si.Flags = 0
	if err := si.EncodeTo(mp.Bytes(), rs.width); err != nil {
		return fmt.Errorf("encoding start_info: %w", err)
	}
	return nil
}

// pvVCPUFrames is the rest of libxc's process_vcpu_basic: mark the vCPU
// online and translate its GDT frames, cr3 and (64-bit) user cr3.
func (rs *restorer) pvVCPUFrames(id uint32, vc *domctl.VCPUContext) error {
	pv := rs.pv
	vc.SetFlags(vc.Flags() | abi.VGCF_online)
	ents := vc.GDTEnts()
	if ents > maxGDTEntries {
		return pvErr(fmt.Sprintf("vCPU %d gdt_ents", id), 0, stream.ErrBadValue, "%d entries, at most %d", ents, maxGDTEntries)
	}
	for i := range int((ents + 511) / 512) {
		m, err := pv.mfn(fmt.Sprintf("vCPU %d gdt_frames[%d]", id, i), vc.GDTFrame(i), isNoTab)
		if err != nil {
			return err
		}
		vc.SetGDTFrame(i, m)
	}
	top := stream.PageType(pv.levels)
	isTop := func(t stream.PageType) bool { return t&^stream.PagePinned == top }
	cr3 := vc.CtrlReg(3)
	if cr3 == 0 && !pv.tables {
		// An image without page tables (a paging-less simulated guest):
		// nothing to translate. Xen refuses such a context itself.
		return nil
	}
	m, err := pv.mfn(fmt.Sprintf("vCPU %d cr3", id), cr3ToPFN(cr3, rs.width), isTop)
	if err != nil {
		return err
	}
	vc.SetCtrlReg(3, pfnToCR3(m, rs.width))
	if rs.width == 8 && pv.levels == 4 {
		if cr1 := vc.CtrlReg(1); cr1&1 != 0 {
			m, err := pv.mfn(fmt.Sprintf("vCPU %d user cr3", id), cr1>>12, isTop)
			if err != nil {
				return err
			}
			vc.SetCtrlReg(1, m<<12|cr1&(pageSize-1))
		}
	}
	return nil
}

// cr3ToPFN and pfnToCR3 are xen_cr3_to_pfn and xen_pfn_to_cr3: 32-bit PAE
// guests keep the frame's high bits in cr3's low 12.
func cr3ToPFN(cr3 uint64, width int) uint64 {
	if width == 4 {
		c := uint32(cr3)
		return uint64(c>>12 | c<<20)
	}
	return cr3 >> 12
}

func pfnToCR3(pfn uint64, width int) uint64 {
	if width == 4 {
		p := uint32(pfn)
		return uint64(p<<12 | p>>20)
	}
	return pfn << 12
}

// pvPin pins every page table the image marks pinned, by level.
func (rs *restorer) pvPin(ctx context.Context) error {
	pv := rs.pv
	var byLevel [5][]uint64
	for pfn, t := range pv.types {
		if t&stream.PagePinned == 0 || !t.HasData() {
			continue
		}
		lvl := int(t &^ stream.PagePinned)
		byLevel[lvl] = append(byLevel[lvl], pv.p2m[pfn])
	}
	// Lower levels first, as libxc's pfn order usually has it; Xen
	// validates a table's children when it first types it either way.
	for lvl := 1; lvl <= 4; lvl++ {
		if len(byLevel[lvl]) == 0 {
			continue
		}
		if err := rs.c.hv.PinTable(ctx, rs.dom, lvl, byLevel[lvl]); err != nil {
			return fmt.Errorf("pinning %d L%d page tables: %w", len(byLevel[lvl]), lvl, err)
		}
	}
	return nil
}

// pvGuestP2M writes the new pfn -> mfn map into the guest's own p2m
// frames (libxc's update_guest_p2m), so the guest finds its memory.
func (rs *restorer) pvGuestP2M(ctx context.Context) error {
	pv := rs.pv
	if len(pv.p2mFrames) == 0 {
		return nil // the image carries no p2m (a guest without one)
	}
	fpp := uint64(pageSize / rs.width)
	nframes := pv.maxPFN/fpp + 1
	if uint64(len(pv.p2mFrames)) < nframes {
		return pvErr("X86_PV_P2M_FRAMES", pv.maxPFN, stream.ErrMissing, "%d frames for %d needed", len(pv.p2mFrames), nframes)
	}
	mfns := make([]uint64, nframes)
	for i := range mfns {
		m, err := pv.mfn(fmt.Sprintf("p2m frame %d", i), pv.p2mFrames[i], isNoTab)
		if err != nil {
			return err
		}
		mfns[i] = m
	}
	mp, err := mapFrames(ctx, rs.c.hv, rs.dom, domctl.ProtWrite, mfns)
	if err != nil {
		return fmt.Errorf("mapping the guest's p2m: %w", err)
	}
	b := mp.Bytes()
	for pfn := uint64(0); pfn <= pv.maxPFN; pfn++ {
		if rs.width == 4 {
			binary.LittleEndian.PutUint32(b[pfn*4:], uint32(pv.p2m[pfn]))
		} else {
			binary.LittleEndian.PutUint64(b[pfn*8:], pv.p2m[pfn])
		}
	}
	if err := mp.Close(); err != nil {
		return fmt.Errorf("unmapping the guest's p2m: %w", err)
	}
	return nil
}

// pvSeedGrants writes the reserved grant entries for xenconsoled and
// xenstored into the new PV domain's grant table, found with
// GNTTABOP_setup_table (libxc's compat_gnttab_seed).
func (rs *restorer) pvSeedGrants(ctx context.Context) error {
	frames, err := rs.c.hv.GrantTableFrames(ctx, rs.dom, 1)
	if err != nil {
		return fmt.Errorf("finding the grant table: %w", err)
	}
	if len(frames) != 1 {
		return fmt.Errorf("finding the grant table: %d frames for 1: %w", len(frames), errors.ErrUnsupported)
	}
	mp, err := mapFrames(ctx, rs.c.hv, rs.dom, domctl.ProtReadWrite, frames)
	if err != nil {
		return fmt.Errorf("mapping grant table: %w", err)
	}
	writeReservedGrants(mp.Bytes(), rs.pv.storeMFN, rs.pv.consoleMFN)
	if err := mp.Close(); err != nil {
		return fmt.Errorf("unmapping grant table: %w", err)
	}
	return nil
}
