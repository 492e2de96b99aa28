package xensim

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/xenckpt/xenckpt/domctl"
	"github.com/xenckpt/xenckpt/internal/abi"
	"github.com/xenckpt/xenckpt/magic"
	"github.com/xenckpt/xenckpt/xenstore"
	"github.com/xenckpt/xenckpt/xenstore/xenstoretest"
)

// Config configures a Host. A nil *Config means every default.
type Config struct {
	// Version is the Xen release to simulate; zero is Xen417.
	Version Version
	// PhysmapFrames is the number of guest frames each domain's physmap
	// can hold (the highest populatable gfn + 1). Memory is sparse, so
	// only populated frames cost RAM. Zero means 1<<20 (4 GiB).
	PhysmapFrames uint64
	// PVFrames is how PV domains' frames are numbered: PVFramesMachine
	// as on real Xen (machine frames distinct from the guest's pfns,
	// which a toolstack must translate through the guest's p2m), or
	// PVFramesIdentity (MFN == PFN). PVFramesDefault is PVFramesMachine.
	PVFrames PVFrames
}

// Host is a simulated Xen host: the hypervisor with dom0, an embedded
// xenstored (xenstoretest.Server) that the hypervisor tells about domain
// state changes (VIRQ_DOM_EXC), and simulated guest kernels.
//
// A Host is safe for concurrent use. Close stops every kernel and frees
// all memory; slices returned by its Backend must not be used afterwards.
type Host struct {
	x  *xen
	xs *xenstoretest.Server
	wg sync.WaitGroup

	closeOnce sync.Once
}

// ErrClosed is returned by a Host and its Backend after Close; it wraps
// net.ErrClosed.
var ErrClosed = fmt.Errorf("xensim: host closed: %w", net.ErrClosed)

// NewHost boots a simulated host with dom0 and the embedded xenstored.
func NewHost(cfg *Config) (*Host, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.PhysmapFrames == 0 {
		c.PhysmapFrames = 1 << 20
	}
	switch c.Version {
	case Xen417, Xen418, Xen419:
	default:
		return nil, fmt.Errorf("xensim: unsupported Xen version %d", c.Version)
	}
	if c.PVFrames == PVFramesDefault {
		c.PVFrames = defaultPVFrames
	}
	if c.PVFrames > PVFramesIdentity {
		return nil, fmt.Errorf("xensim: unknown PV frame model %d", c.PVFrames)
	}
	h := &Host{x: newXen(c.Version, c.PhysmapFrames, c.PVFrames)}
	h.xs = xenstoretest.NewServer(&xenstoretest.Config{Domains: domainStates{h.x}})
	h.x.domExc = h.xs.DomainChanged
	h.x.boot = h.boot
	// dom0: a running PV domain with a small physmap of its own.
	mem, err := newGuestMem(16)
	if err != nil {
		return nil, err
	}
	h.x.mu.Lock()
	d0 := h.x.newDomainLocked(0, false, 1, [16]byte{}, mem)
	d0.stateChanged()
	h.x.mu.Unlock()
	return h, nil
}

type domainStates struct{ x *xen }

func (s domainStates) DomainState(dom uint32) (exists, shutdown bool) { return s.x.domainState(dom) }

// Backend returns the hypervisor interface for dom0's toolstack: pass it
// to domctl.NewConn.
func (h *Host) Backend() domctl.Backend { return &backend{x: h.x} }

// XenStore returns the embedded xenstored.
func (h *Host) XenStore() *xenstoretest.Server { return h.xs }

// Store returns a new xenstore client connected as domain dom (0: the
// privileged toolstack). The caller closes it.
func (h *Host) Store(dom uint32) (*xenstore.Client, error) {
	if h.x.closed.Load() {
		return nil, ErrClosed
	}
	return h.xs.Client(dom)
}

// Version returns the simulated Xen release.
func (h *Host) Version() Version { return h.x.version }

// Domains lists the existing domains (dom0 included) in id order.
func (h *Host) Domains() []domctl.DomID {
	h.x.mu.Lock()
	defer h.x.mu.Unlock()
	ids := make([]domctl.DomID, 0, len(h.x.doms))
	for id := range h.x.doms {
		ids = append(ids, id)
	}
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
	return ids
}

// Guest returns a handle on the simulated kernel of domain dom. It is valid
// even if no kernel runs there yet (State is then GuestNone).
func (h *Host) Guest(dom domctl.DomID) *Guest { return &Guest{h: h, dom: dom} }

// Close stops every kernel, the xenstored and frees all guest memory.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.x.closed.Store(true)
		h.x.mu.Lock()
		var ks []*kernel
		for _, d := range h.x.doms {
			if d.kernel != nil {
				ks = append(ks, d.kernel)
			}
		}
		h.x.mu.Unlock()
		for _, k := range ks {
			close(k.stop)
		}
		h.wg.Wait()
		_ = h.xs.Close()
		h.x.close()
	})
	return nil
}

// PrepareDomain does what a toolstack does for a new domain before its
// kernel connects: it writes /local/domain/<dom> (name, domid, control/,
// device/suspend/event-channel, data/ with libxl's permissions) and
// introduces the domain to xenstored. CreateGuest calls it; a restore
// target needs it before it is unpaused.
func (h *Host) PrepareDomain(ctx context.Context, dom domctl.DomID, name string) error {
	xs, err := h.Store(0)
	if err != nil {
		return fmt.Errorf("preparing domain %d: %w", dom, err)
	}
	defer xs.Close()
	id := uint32(dom)
	nodes := xenstore.DomainNodes("/local/domain/"+strconv.Itoa(int(dom)), id, name)
	err = xs.Transaction(ctx, func(tx *xenstore.Tx) error {
		return tx.WriteNodes(ctx, nodes)
	})
	if err != nil {
		return fmt.Errorf("preparing domain %d: %w", dom, err)
	}
	if err := xs.Introduce(ctx, id, storePFN, 0); err != nil {
		return fmt.Errorf("introducing domain %d: %w", dom, err)
	}
	return nil
}

// CreateGuest builds a domain the way a toolstack would (create, set the
// address size, max memory, populate, load the kernel header and
// start_info, write vCPU0's boot context, xenstore nodes, introduce) and
// unpauses it, which starts its simulated kernel. It returns once the
// kernel has connected to xenstore and advertised control/feature-suspend.
func (h *Host) CreateGuest(ctx context.Context, cfg GuestConfig) (*Guest, error) {
	if h.x.closed.Load() {
		return nil, ErrClosed
	}
	if cfg.Pages == 0 {
		cfg.Pages = 1024
	}
	if cfg.Pages < 8 || cfg.Pages > h.x.limit {
		return nil, fmt.Errorf("xensim: guest of %d pages: %w", cfg.Pages, errEINVAL)
	}
	if cfg.Kind > PVH || cfg.Convention > ConventionLegacy || cfg.Behaviour > CorruptReturn {
		return nil, fmt.Errorf("xensim: invalid guest config: %w", errEINVAL)
	}
	kid := nextKernelID.Add(1)
	if cfg.Handle == ([16]byte{}) {
		cfg.Handle = [16]byte{0x5e, 0x1f, 0, 0, 0, 0, 0x40, 0, 0x80}
		for i := range 8 {
			cfg.Handle[8+i] |= byte(kid >> (8 * i))
		}
	}
	d, err := h.x.createDomain(0, cfg.Kind == PVH, cfg.VCPUs, cfg.Handle)
	if err != nil {
		return nil, fmt.Errorf("creating guest domain: %w", err)
	}
	fail := func(err error) (*Guest, error) {
		_ = h.x.destroy(d.id)
		return nil, err
	}
	if cfg.Name == "" {
		cfg.Name = "guest" + strconv.Itoa(int(d.id))
	}
	if cfg.Kind != PVH {
		// Room for the page tables and p2m above at least 4 data pages.
		cfg.Pages = max(cfg.Pages, firstDataPFN+4+pvReserved(cfg.Pages, cfg.Kind.width()))
	}
	h.x.mu.Lock()
	if cfg.Kind == PV32 {
		d.addrBits = 32
	}
	d.maxPages = cfg.Pages
	h.x.mu.Unlock()
	gfns := make([]uint64, cfg.Pages)
	for i := range gfns {
		gfns[i] = uint64(i)
	}
	if n, err := h.x.populate(d.id, gfns, nil, false); err != nil || n != len(gfns) {
		return fail(fmt.Errorf("populating guest memory: %d of %d pages: %v", n, len(gfns), err))
	}
	if err := h.loadKernel(d, cfg, kid); err != nil {
		return fail(err)
	}
	if err := h.PrepareDomain(ctx, d.id, cfg.Name); err != nil {
		return fail(err)
	}
	if err := h.x.unpause(d.id); err != nil {
		return fail(fmt.Errorf("unpausing guest: %w", err))
	}
	g := h.Guest(d.id)
	if err := g.WaitConnected(ctx); err != nil {
		return fail(err)
	}
	return g, nil
}

// loadKernel writes the kernel header, start_info and boot registers.
func (h *Host) loadKernel(d *domain, cfg GuestConfig, kid uint64) error {
	tick := cfg.Tick
	if tick <= 0 {
		tick = defaultTick
	}
	var flags uint32
	if cfg.SuspendEventChannel {
		flags |= flagSuspendEvtchn
	}
	platform, width := magic.PlatformX86_64, cfg.Kind.width()
	if width == 4 {
		platform = magic.PlatformX86_32P
	}
	// The builder writes the plain guest type; a seed kernel adds its
	// capability token when it boots (kernel.advertiseSeed).
	mg := magic.Magic{Major: 3, Minor: 0, Platform: platform}
	si := magic.StartInfo{
		Magic:       mg.String(),
		NrPages:     cfg.Pages,
		SharedInfo:  sharedInfoFrame(d) << pageShift,
		StoreMFN:    storePFN,
		ConsoleMFN:  consolePFN,
		NrPTFrames:  0,
		FirstP2MPFN: 0,
	}
	dataEnd, pvPages := cfg.Pages, uint64(0)
	var pvl pvLayout
	if !d.hvm {
		pvl = newPVLayout(cfg.Pages, width)
		dataEnd, pvPages = pvl.base, cfg.Pages
		h.x.mu.Lock()
		si.StoreMFN, si.ConsoleMFN = d.pfnFrame(storePFN), d.pfnFrame(consolePFN)
		h.x.mu.Unlock()
	}
	var err error
	d.mem.with(func(all []byte) {
		hdr := all[headerPFN*PageSize : (headerPFN+1)*PageSize]
		copy(hdr[hMagic:], headerMagic)
		putLE64(hdr[hKernelID:], kid)
		putLE32(hdr[hKind:], uint32(cfg.Kind))
		putLE32(hdr[hConvention:], uint32(cfg.Convention))
		putLE32(hdr[hBehaviour:], uint32(cfg.Behaviour))
		putLE32(hdr[hFlags:], flags)
		putLE64(hdr[hDirtyRate:], uint64(max(cfg.DirtyRate, 0)))
		putLE64(hdr[hPages:], dataEnd)
		putLE64(hdr[hPVPages:], pvPages)
		putLE64(hdr[hCursor:], 0)
		putLE64(hdr[hTickNs:], uint64(tick))
		err = si.EncodeTo(all[startInfoPFN*PageSize:(startInfoPFN+1)*PageSize], width)
	})
	if err != nil {
		return fmt.Errorf("writing start_info: %w", err)
	}
	h.x.mu.Lock()
	defer h.x.mu.Unlock()
	if d.hvm {
		d.hvmParams[abi.HVM_PARAM_CALLBACK_IRQ] = 1 // PV drivers present
		d.hvmParams[abi.HVM_PARAM_STORE_PFN] = storePFN
		d.hvmParams[abi.HVM_PARAM_CONSOLE_PFN] = consolePFN
		return nil
	}
	if err := d.buildPV(pvl); err != nil {
		return fmt.Errorf("building page tables: %w", err)
	}
	return nil
}

const defaultTick = 1_000_000 // 1 ms in ns

// GrantEntry is one v1 grant-table entry (struct grant_entry_v1).
type GrantEntry struct {
	Flags  uint16
	Domain uint16
	Frame  uint32
}

// GrantEntry returns entry ref of dom's grant table, as a toolstack seeded
// it (GNTTAB_RESERVED_CONSOLE = 0, GNTTAB_RESERVED_XENSTORE = 1).
func (h *Host) GrantEntry(dom domctl.DomID, ref int) (GrantEntry, error) {
	f, d, fr, err := h.x.grantEntry(dom, ref)
	return GrantEntry{Flags: f, Domain: d, Frame: fr}, err
}
