package checkpoint

import (
	"context"
	"fmt"
	"math/bits"
	"time"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
)

// batchPages is the number of pages mapped and written at once, libxc's
// MAX_BATCH_SIZE.
const batchPages = 1024

// XEN_DOMCTL_PFINFO_* as getpageframeinfo3 returns them (type in bits
// 31-28), as nibbles.
const (
	pfinfoXTAB     = abi.XEN_DOMCTL_PFINFO_XTAB >> abi.XEN_DOMCTL_PFINFO_LTAB_SHIFT
	pfinfoShift    = abi.XEN_DOMCTL_PFINFO_LTAB_SHIFT
	pfinfoPinned   = abi.XEN_DOMCTL_PFINFO_LPINTAB >> pfinfoShift
	pfinfoMaxPlain = abi.XEN_DOMCTL_PFINFO_L4TAB >> pfinfoShift
)

// pageHasData reports whether a page of this PFINFO nibble carries data.
func pageHasData(t uint8) bool {
	return t <= pfinfoMaxPlain || (t >= pfinfoPinned|1 && t <= pfinfoPinned|pfinfoMaxPlain)
}

// imageSink receives the pieces of an image in stream order. The stream
// adapter (image.go) turns them into migration-stream records.
type imageSink interface {
	// pages writes one PAGE_DATA batch: pfns[i] with PFINFO nibble
	// types[i]; data holds one page per entry whose type has data, in
	// order (consecutive pages of one mapping are written as one run).
	pages(pfns []uint64, types []uint8, data [][]byte) error
	// state writes the end-of-checkpoint records.
	state(st *domainState) error
	// checkpoint ends one checkpoint of a checkpointed stream.
	checkpoint() error
	// end ends the stream.
	end() error
}

// memCopier sends guest pages of one domain into a sink in batches.
type memCopier struct {
	hv   Hypervisor
	dom  domctl.DomID
	sink imageSink

	gfns  []uint64
	types []uint32
	nib   []uint8
	data  []uint64

	pages     uint64 // pages sent (with or without data)
	bytes     uint64 // page bytes sent
	dataPages uint64 // pages sent with data

	// PV guests (pv_save.go): the p2m that turns pfns into the machine
	// frames to map, and page-table normalisation. final: the guest is
	// suspended (a bad page table is an error, not a retry).
	pv      *pvMemory
	final   bool
	frames  []uint64
	scratch []byte   // normalised page tables of the batch
	vec     [][]byte // the batch's pages: mapped, or normalised in scratch
	retry   []uint64 // pfns sent as XTAB while running, to send again
}

func newMemCopier(hv Hypervisor, dom domctl.DomID, sink imageSink) *memCopier {
	return &memCopier{
		hv: hv, dom: dom, sink: sink,
		gfns:  make([]uint64, 0, batchPages),
		types: make([]uint32, batchPages),
		nib:   make([]uint8, batchPages),
		data:  make([]uint64, 0, batchPages),
	}
}

// add queues gfn, flushing a full batch.
func (m *memCopier) add(ctx context.Context, gfn uint64) error {
	m.gfns = append(m.gfns, gfn)
	if len(m.gfns) == batchPages {
		return m.flush(ctx)
	}
	return nil
}

// flush sends the queued batch: page types, one foreign mapping of the
// pages with data, one PAGE_DATA record.
func (m *memCopier) flush(ctx context.Context) error {
	n := len(m.gfns)
	if n == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	types := m.types[:n]
	frames := m.gfns
	if m.pv != nil {
		frames = m.pvFrames()
	}
	if err := m.hv.PageFrameTypes(ctx, m.dom, frames, types); err != nil {
		return fmt.Errorf("getting page types of %d frames from %#x: %w", n, frames[0], err)
	}
	m.data = m.data[:0]
	nib := m.nib[:n]
	for i, t := range types {
		nib[i] = uint8(t >> pfinfoShift)
		if frames[i] == invalidFrame {
			nib[i] = pfinfoXTAB
		}
		if pageHasData(nib[i]) {
			m.data = append(m.data, frames[i])
		}
	}
	m.vec = m.vec[:0]
	if len(m.data) > 0 {
		mp, err := mapFrames(ctx, m.hv, m.dom, domctl.ProtRead, m.data)
		if err != nil {
			return fmt.Errorf("mapping %d frames from %#x: %w", len(m.data), m.data[0], err)
		}
		defer mp.Close()
		mem := mp.Bytes()
		// Each page keeps the mapping's capacity beyond it, by which the
		// writer sees consecutive pages as one run to write in one go.
		for off := 0; off < len(mem); off += pageSize {
			m.vec = append(m.vec, mem[off:off+pageSize])
		}
		if m.pv != nil {
			if m.vec, err = m.normalisePV(nib, m.vec); err != nil {
				return err
			}
		}
	}
	if err := m.sink.pages(m.gfns, nib, m.vec); err != nil {
		return fmt.Errorf("writing page data: %w", err)
	}
	m.pages += uint64(n)
	m.dataPages += uint64(len(m.vec))
	m.bytes += uint64(len(m.vec)) * pageSize
	clear(m.vec) // drop references to the mapping
	m.gfns = m.gfns[:0]
	return nil
}

const pageSize = 4096

// sendRange sends gfns [0, end).
func (m *memCopier) sendRange(ctx context.Context, end uint64) error {
	for g := uint64(0); g < end; g++ {
		if err := m.add(ctx, g); err != nil {
			return err
		}
	}
	return m.flush(ctx)
}

// sendBitmap sends every gfn whose bit is set.
func (m *memCopier) sendBitmap(ctx context.Context, bitmap []uint64) error {
	for w, word := range bitmap {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			word &^= 1 << b
			if err := m.add(ctx, uint64(w)*64+uint64(b)); err != nil {
				return err
			}
		}
	}
	return m.flush(ctx)
}

func popcount(bitmap []uint64) uint64 {
	var n int
	for _, w := range bitmap {
		n += bits.OnesCount64(w)
	}
	return uint64(n)
}

// HVM_PARAM_* indexes (hvm/params.h) saved in HVM_PARAMS when non-zero, as
// xg_sr_save_x86_hvm.c does. Those the generated ABI lacks are numbered
// from the header.
var savedHVMParams = []uint32{
	abi.HVM_PARAM_STORE_PFN,
	abi.HVM_PARAM_IOREQ_PFN,
	abi.HVM_PARAM_BUFIOREQ_PFN,
	27, // HVM_PARAM_PAGING_RING_PFN
	28, // HVM_PARAM_MONITOR_RING_PFN
	29, // HVM_PARAM_SHARING_RING_PFN
	37, // HVM_PARAM_VM86_TSS_SIZED
	abi.HVM_PARAM_CONSOLE_PFN,
	19, // HVM_PARAM_ACPI_IOPORTS_LOCATION
	abi.HVM_PARAM_VIRIDIAN,
	12, // HVM_PARAM_IDENT_PT
	34, // HVM_PARAM_VM_GENERATION_ID_ADDR
	32, // HVM_PARAM_IOREQ_SERVER_PFN
	33, // HVM_PARAM_NR_IOREQ_SERVER_PAGES
	36, // HVM_PARAM_X87_FIP_WIDTH
	38, // HVM_PARAM_MCA_CAP
}

// vcpuState is one vCPU's saved context. For PV, Ext, XSave and MSRs
// are the blobs of its X86_PV_VCPU_EXTENDED, _XSAVE and _MSRS records
// (nil: no record).
type vcpuState struct {
	ID    uint32
	Ctx   []byte
	Ext   []byte
	XSave []byte
	MSRs  []byte
}

// hvmParam is one saved HVM parameter.
type hvmParam struct {
	Index uint64
	Value uint64
}

// domainState is everything an image holds besides memory.
type domainState struct {
	HVM        bool
	Width      int // guest width in bytes (PV); 8 for HVM
	MaxVCPUID  uint32
	VCPUs      []vcpuState
	HVMContext []byte
	HVMParams  []hvmParam
	TSC        domctl.TSCInfo
	SharedInfo []byte // PV: the shared_info page
}

// guestShape is what the image header needs about a domain.
type guestShape struct {
	HVM      bool
	Type     string // libxl's domain type: "pv", "hvm" or "pvh"
	Width    int    // bytes: 8 or 4
	MaxGPFN  uint64
	MaxVCPUs uint32
	MaxMemKB uint64
	// OfflineVCPUs are the vCPUs down when the operation began: left out
	// of the config's avail_vcpus, as libxl_retrieve_domain_configuration
	// does.
	OfflineVCPUs []uint32
}

func (c *Controller) shape(ctx context.Context, dom domctl.DomID) (guestShape, error) {
	info, err := c.hv.DomainInfo(ctx, dom)
	if err != nil {
		if isGone(err) {
			return guestShape{}, fmt.Errorf("%w: %w", ErrDomainGone, err)
		}
		return guestShape{}, fmt.Errorf("getting domain info: %w", err)
	}
	// The hypervisor calls PVH and HVM alike; libxl records which.
	sh := guestShape{HVM: info.HVM(), Type: c.domainType(ctx, dom, info), Width: 8, MaxVCPUs: info.MaxVCPUID + 1, MaxMemKB: info.MaxPages * 4}
	if !sh.HVM {
		bits, err := c.hv.AddressSize(ctx, dom)
		if err != nil {
			return sh, fmt.Errorf("getting address size: %w", err)
		}
		sh.Width = bits / 8
	}
	// Xen sets VGCF_online in any vCPU's context unless it is down (PV
	// and HVM alike), where libxl asks getvcpuinfo.
	for v := range sh.MaxVCPUs {
		vc, err := c.hv.VCPUContext(ctx, dom, v, sh.Width)
		if err != nil {
			return sh, fmt.Errorf("getting vCPU %d context: %w", v, err)
		}
		if !vcpuOnline(vc) {
			sh.OfflineVCPUs = append(sh.OfflineVCPUs, v)
		}
	}
	if sh.MaxGPFN, err = c.hv.MaxGPFN(ctx, dom); err != nil {
		return sh, fmt.Errorf("getting maximum gpfn: %w", err)
	}
	return sh, nil
}

// captureState reads the register and platform state of a suspended domain.
func (c *Controller) captureState(ctx context.Context, dom domctl.DomID, sh guestShape) (*domainState, error) {
	info, err := c.hv.DomainInfo(ctx, dom)
	if err != nil {
		return nil, fmt.Errorf("getting domain info: %w", err)
	}
	st := &domainState{HVM: sh.HVM, Width: sh.Width, MaxVCPUID: info.MaxVCPUID}
	if st.TSC, err = c.hv.TSCInfo(ctx, dom); err != nil {
		return nil, fmt.Errorf("getting TSC info: %w", err)
	}
	if sh.HVM {
		if st.HVMContext, err = c.hv.HVMContext(ctx, dom); err != nil {
			return nil, fmt.Errorf("getting HVM context: %w", err)
		}
		for _, idx := range savedHVMParams {
			v, err := c.hv.HVMParam(ctx, dom, idx)
			if err != nil {
				return nil, fmt.Errorf("getting HVM param %d: %w", idx, err)
			}
			if v != 0 {
				st.HVMParams = append(st.HVMParams, hvmParam{Index: uint64(idx), Value: v})
			}
		}
		return st, nil
	}
	for v := uint32(0); v <= info.MaxVCPUID; v++ {
		vc, err := c.hv.VCPUContext(ctx, dom, v, sh.Width)
		if err != nil {
			return nil, fmt.Errorf("getting vCPU %d context: %w", v, err)
		}
		// As libxc, only online vCPUs are saved: restore leaves a vCPU
		// without a record down. Xen flags a vCPU that is up (not
		// VPF_down) with VGCF_online in the context it returns.
		if !vcpuOnline(vc) {
			c.log.DebugContext(ctx, "vCPU offline, not saved", "domain", dom, "vcpu", v)
			continue
		}
		vs, err := c.pvVCPUExtra(ctx, dom, v)
		if err != nil {
			return nil, err
		}
		vs.Ctx = vc.Raw
		st.VCPUs = append(st.VCPUs, vs)
	}
	// The shared info page is Xen's, not the guest's: a hypervisor that
	// cannot map it (the simulator) gets no SHARED_INFO record, which
	// restore tolerates.
	mp, err := mapFrames(ctx, c.hv, dom, domctl.ProtRead, []uint64{info.SharedInfoFrame})
	if err != nil {
		c.log.DebugContext(ctx, "shared info frame not mappable", "domain", dom, "error", err)
		return st, nil
	}
	st.SharedInfo = append([]byte(nil), mp.Bytes()[:pageSize]...)
	if err := mp.Close(); err != nil {
		return nil, fmt.Errorf("unmapping shared info: %w", err)
	}
	return st, nil
}

// pvVCPUExtra reads the state libxc's write_all_vcpu_information saves
// after a PV vCPU's basic context: the extended context, the xsave state
// (none on a host without xsave) and the MSRs Xen sends (none when all
// are zero). As in libxc, any failure fails the save.
func (c *Controller) pvVCPUExtra(ctx context.Context, dom domctl.DomID, v uint32) (vcpuState, error) {
	vs := vcpuState{ID: v}
	var err error
	if vs.Ext, err = c.hv.ExtVCPUContext(ctx, dom, v); err != nil {
		return vs, fmt.Errorf("getting vCPU %d extended context: %w", v, err)
	}
	if vs.XSave, err = c.hv.VCPUExtState(ctx, dom, v); err != nil {
		return vs, fmt.Errorf("getting vCPU %d xsave state: %w", v, err)
	}
	if vs.MSRs, err = c.hv.VCPUMSRs(ctx, dom, v); err != nil {
		return vs, fmt.Errorf("getting vCPU %d MSRs: %w", v, err)
	}
	return vs, nil
}

// SaveOptions is the policy of a save, checkpoint or migration. The zero
// value (or nil) is a non-live save.
type SaveOptions struct {
	// Live copies memory while the guest runs (log-dirty precopy rounds)
	// and suspends it only for the last round.
	Live bool
	// MaxIterations bounds the precopy rounds after the first full pass.
	// Zero means 5 (libxc's SPP_MAX_ITERATIONS).
	MaxIterations int
	// DirtyPageThreshold stops precopy once a round leaves at most this
	// many dirty pages. Zero means 50 (libxc's SPP_TARGET_DIRTY_COUNT).
	DirtyPageThreshold uint64
	// MaxDowntime stops precopy once the dirty set is expected to be sent
	// within this time at the measured bandwidth (the downtime target), or
	// as soon as the measured dirty rate reaches the bandwidth, when more
	// rounds cannot converge. Zero means 10 ms; negative disables both
	// rules.
	MaxDowntime time.Duration
	// Resume says how to cancel the suspend when the guest must keep
	// running (a checkpoint, or any failure).
	Resume ResumeOptions
	// XLConfig is the domain's libxl_domain_config as JSON (what `xl save`
	// stores, e.g. from `xl list -l`), written into the image's xl header
	// so that `xl restore` can recreate the domain with its devices. It
	// must parse as JSON (else ErrBadConfig). Nil writes a minimal config
	// holding what Restore needs: type, name, uuid, vCPUs and memory.
	XLConfig []byte
	// Progress, if set, receives progress events synchronously; it must
	// not block for long.
	Progress func(Progress)
}

func (o *SaveOptions) withDefaults() SaveOptions {
	var out SaveOptions
	if o != nil {
		out = *o
	}
	if out.MaxIterations <= 0 {
		out.MaxIterations = 5
	}
	if out.DirtyPageThreshold == 0 {
		out.DirtyPageThreshold = 50
	}
	if out.MaxDowntime == 0 {
		out.MaxDowntime = 10 * time.Millisecond
	}
	return out
}

func (o *SaveOptions) emit(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// precopy runs the live rounds: a full pass, then dirty rounds until the
// policy says stop. Log-dirty must be on; it stays on for the final round.
// It returns the dirty set of the last CLEAN, which the final (suspended)
// round must send along with what the final CLEAN reports.
func (c *Controller) precopy(ctx context.Context, o *SaveOptions, m *memCopier, sh guestShape, res *Result) ([]uint64, error) {
	bitmap := make([]uint64, (sh.MaxGPFN+1+63)/64)
	// Clear whatever was logged before this pass began.
	if _, err := c.hv.CleanDirty(ctx, m.dom, bitmap, false); err != nil {
		return nil, fmt.Errorf("cleaning dirty bitmap: %w", err)
	}
	start := time.Now()
	if err := m.sendRange(ctx, sh.MaxGPFN+1); err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	bw := rate(float64(m.bytes), elapsed)
	o.emit(Progress{Domain: m.dom, Phase: PhasePrecopy, Pages: m.pages, Bytes: m.bytes, RoundPages: m.pages, Bandwidth: bw})
	for round := 1; ; round++ {
		if _, err := c.hv.CleanDirty(ctx, m.dom, bitmap, false); err != nil {
			return nil, fmt.Errorf("cleaning dirty bitmap: %w", err)
		}
		dirty := popcount(bitmap)
		dirtyRate := rate(float64(dirty), elapsed)
		var downtime time.Duration
		if bw > 0 {
			downtime = time.Duration(float64(dirty*pageSize) / bw * float64(time.Second))
		}
		// The guest dirties memory at least as fast as the link sends it:
		// more rounds cannot shrink the final set (with the downtime rule
		// on; without it MaxIterations alone bounds the rounds).
		diverging := o.MaxDowntime > 0 && bw > 0 && dirtyRate*pageSize >= bw && round > 1
		var stop PrecopyStop
		switch {
		case dirty <= o.DirtyPageThreshold:
			stop = StopDirtyThreshold
		case o.MaxDowntime > 0 && bw > 0 && downtime <= o.MaxDowntime:
			stop = StopDowntime
		case diverging:
			stop = StopDiverging
		case round > o.MaxIterations:
			stop = StopMaxIterations
		}
		c.log.DebugContext(ctx, "precopy round", "domain", m.dom, "round", round, "dirty", dirty,
			"dirty_rate", dirtyRate, "bandwidth", bw, "est_downtime", downtime, "diverging", diverging, "stop", stop)
		if stop != "" {
			res.Rounds, res.PrecopyStop = round-1, stop
			return bitmap, nil
		}
		b0, p0 := m.bytes, m.pages
		start = time.Now()
		if err := m.sendBitmap(ctx, bitmap); err != nil {
			return nil, err
		}
		elapsed = time.Since(start)
		if r := rate(float64(m.bytes-b0), elapsed); r > 0 {
			bw = r
		}
		o.emit(Progress{Domain: m.dom, Phase: PhasePrecopy, Round: round, Pages: m.pages, Bytes: m.bytes,
			RoundPages: m.pages - p0, DirtyRate: dirtyRate, Bandwidth: bw})
	}
}

// PrecopyStop says why live precopy stopped iterating (Result.PrecopyStop).
type PrecopyStop string

// Reasons, checked in this order after every round.
const (
	// StopDirtyThreshold: the dirty set shrank to
	// SaveOptions.DirtyPageThreshold pages or fewer.
	StopDirtyThreshold PrecopyStop = "dirty-threshold"
	// StopDowntime: the dirty set is expected to be sent within
	// SaveOptions.MaxDowntime at the measured bandwidth.
	StopDowntime PrecopyStop = "downtime"
	// StopDiverging: the guest dirties memory at least as fast as it can
	// be sent, so more rounds cannot shrink the final set.
	StopDiverging PrecopyStop = "dirty-rate-exceeds-bandwidth"
	// StopMaxIterations: SaveOptions.MaxIterations rounds were sent.
	StopMaxIterations PrecopyStop = "max-iterations"
)

func rate(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

// vcpuOnline reports VGCF_online in a vCPU context's flags.
func vcpuOnline(vc *domctl.VCPUContext) bool { return vc.Flags()&abi.VGCF_online != 0 }

// mapFrames maps gfns and fails unless every frame mapped.
func mapFrames(ctx context.Context, hv Hypervisor, dom domctl.DomID, prot domctl.Prot, gfns []uint64) (*domctl.Mapping, error) {
	mp, err := hv.MapForeign(ctx, dom, prot, gfns)
	if err != nil {
		return nil, err
	}
	for i := range gfns {
		if err := mp.Err(i); err != nil {
			mp.Close()
			return nil, fmt.Errorf("frame %#x: %w", gfns[i], err)
		}
	}
	return mp, nil
}
